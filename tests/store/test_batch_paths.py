"""A batch of new ids takes the writer's short path; it must write what the general path writes.

`_BatchWriter` writes a batch whose ids the store has never held (each id once)
without the bookkeeping that updates, repeats and older versions need. Here the
same batches go to two stores, one through the short path and one through the
general path, and every table the writer fills is compared row by row (dates
of addition by their order, since they come from the clock).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import corpus_path
from tests.federation.mesh import indicator
from threatmesh.stix.parse import parse_object
from threatmesh.store import sqlite as sqlite_store
from threatmesh.store.protocol import Collection, PutOutcome
from threatmesh.store.sqlite import SQLiteStore

_TABLES = {
    "objects": "SELECT pk, id, version, type, spec_version, json, tlp, source, revoked, upgraded_from,"
               " created_by_ref, is_latest FROM objects ORDER BY pk",
    "added": "SELECT pk FROM objects ORDER BY date_added",
    "memberships": "SELECT collection_id, pk, is_last, is_first FROM memberships ORDER BY collection_id, pk",
    "member order": "SELECT pk FROM memberships ORDER BY date_added",
    "refs": "SELECT pk, path, target FROM refs ORDER BY pk, path, target",
    "markings": "SELECT pk, marking_id FROM markings ORDER BY pk, marking_id",
    "observables": "SELECT pk, kind, value FROM observables ORDER BY pk, kind, value",
    "text": "SELECT rowid, body FROM object_fts ORDER BY rowid",
    "match keys": "SELECT * FROM match_keys ORDER BY pk",
}


def _mix() -> list[dict[str, Any]]:
    """New objects of many shapes: indicators (one with a second marking), a relationship,
    a report with refs, an SCO, an object with granular markings, an unmarked one."""
    objects = [indicator(f"paths-{i}", level, description=f"object {i}")
               for i, level in enumerate(["clear", "green", "amber", "red", "clear"])]
    objects[4]["object_marking_refs"].append("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb")
    objects[4]["x_warninglists"] = ["top sites"]
    base = {"spec_version": "2.1", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z"}
    objects += [
        {**base, "type": "malware", "id": "malware--00000000-0000-4000-8000-000000000001", "name": "Thing",
         "is_family": True, "description": "a family", "aliases": ["thing", "Thingy"]},
        {**base, "type": "relationship", "id": "relationship--00000000-0000-4000-8000-000000000002",
         "relationship_type": "indicates", "source_ref": objects[0]["id"],
         "target_ref": "malware--00000000-0000-4000-8000-000000000001"},
        {**base, "type": "report", "id": "report--00000000-0000-4000-8000-000000000003", "name": "R",
         "published": "2024-01-01T00:00:00Z", "object_refs": [objects[0]["id"], objects[1]["id"], objects[0]["id"]],
         "external_references": [{"source_name": "x", "external_id": "X-1"}],
         "granular_markings": [{"marking_ref": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
                                "selectors": ["name"]}]},
        {"type": "domain-name", "spec_version": "2.1", "id": "domain-name--00000000-0000-5000-8000-000000000004",
         "value": "Paths.Example"},
    ]
    return objects


def _attack_objects(limit: int) -> list[dict[str, Any]]:
    bundle = orjson.loads(corpus_path("attack", "enterprise-attack-18.1-stix21-converted.json").read_bytes())
    seen: set[str] = set()
    objects = []
    for obj in bundle["objects"]:
        if obj["id"] not in seen:
            seen.add(obj["id"])
            objects.append(obj)
        if len(objects) == limit:
            break
    return objects


def _tables(path: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return {name: conn.execute(sql).fetchall() for name, sql in _TABLES.items()}
    finally:
        conn.close()


def _write_both(tmp_path: Path, batches: list[list[dict[str, Any]]], tlp: str | None,
                monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[Any]], dict[str, list[Any]], int]:
    short_calls = []
    short = sqlite_store._BatchWriter._write_all_new

    def counting(self: Any, objects: Any) -> Any:
        short_calls.append(len(objects))
        return short(self, objects)

    found = {}
    for name in ("short", "general"):
        with monkeypatch.context() as patch:
            patch.setattr(sqlite_store._BatchWriter, "_write_all_new",
                          counting if name == "short" else sqlite_store._BatchWriter._write_any)
            store = SQLiteStore(tmp_path / f"{name}.sqlite")
            store.add_collection(Collection(id="c1", title="c1"))
            for batch in batches:
                results = store.put_objects([parse_object(o) for o in batch], collection_id="c1", source="peer:x",
                                            tlp=tlp)
                assert [r.outcome for r in results] == [PutOutcome.NEW] * len(batch)
            store.close()
        found[name] = _tables(tmp_path / f"{name}.sqlite")
    return found["short"], found["general"], len(short_calls)


@pytest.mark.parametrize("tlp", [None, "amber"])
def test_short_path_writes_what_the_general_path_writes(tmp_path: Path, tlp: str | None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    mix = _mix()
    short, general, calls = _write_both(tmp_path, [mix[:4], mix[4:]], tlp, monkeypatch)
    assert calls == 2
    assert all(short[name] for name in _TABLES)  # every table has rows to compare
    assert short == general


def test_short_path_on_attack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = _attack_objects(3000)
    short, general, calls = _write_both(tmp_path, [objects[:1500], objects[1500:]], None, monkeypatch)
    assert calls == 2
    assert len(short["objects"]) == 3000 and short["refs"]
    assert short == general


def test_a_batch_with_a_known_id_or_a_repeated_id_takes_the_general_path(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    short = sqlite_store._BatchWriter._write_all_new
    monkeypatch.setattr(sqlite_store._BatchWriter, "_write_all_new",
                        lambda self, objects: calls.append(len(objects)) or short(self, objects))
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.add_collection(Collection(id="c1", title="c1"))
    first = indicator("known", "clear")
    store.put_objects([parse_object(first)], collection_id="c1", source="test")
    newer = {**first, "modified": "2024-06-01T00:00:00.000Z"}
    other = indicator("other", "clear")
    results = store.put_objects([parse_object(newer), parse_object(other)], collection_id="c1", source="test")
    assert [r.outcome for r in results] == [PutOutcome.UPDATED, PutOutcome.NEW]
    twice = indicator("twice", "clear")
    results = store.put_objects([parse_object(twice), parse_object({**twice, "modified": "2024-06-01T00:00:00.000Z"})],
                                collection_id="c1", source="test")
    assert [r.outcome for r in results] == [PutOutcome.NEW, PutOutcome.UPDATED]
    assert [v.is_latest for v in store.get_versions(twice["id"])] == [False, True]
    store.close()
    assert calls == [1]
