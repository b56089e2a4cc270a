"""Versions received from peers are stored first and put in the search and match indexes later.

`put_objects(defer_index=True)` leaves a batch's new versions out of the full-text,
observable and match-key tables (the tail above `index_state.indexed_pk`). Held
here: the tail, once indexed, gives exactly the rows an immediate write gives,
over random mixes of new ids, new and older versions, repeats and rewritten SCOs;
the tail never has any of those rows; no read of those tables misses a stored
version; an immediate write indexes the tail first; the tail survives a restart;
the idle-time indexer follows its rules.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.federation.mesh import indicator
from tests.store.test_batch_paths import _TABLES, _attack_objects, _mix, _tables
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Collection, PutOutcome
from threatmesh.store.sqlite import SQLiteStore
from threatmesh.store.sqlite_index import IdleIndexer


def _store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    store.add_collection(Collection(id="c1", title="c1"))
    return store


def _put(store: SQLiteStore, objects: list[dict[str, Any]], *, defer: bool) -> list[PutOutcome]:
    results = store.put_objects([parse_object(o) for o in objects], collection_id="c1", source="peer:x",
                                defer_index=defer)
    return [r.outcome for r in results]


def _derived_counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("observables", "object_fts", "match_keys"))
    finally:
        conn.close()


def _rows_above_watermark(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        (indexed,) = conn.execute("SELECT indexed_pk FROM index_state").fetchone()
        return sum(conn.execute(f"SELECT count(*) FROM {table} WHERE {column} > ?", (indexed,)).fetchone()[0]
                   for table, column in (("observables", "pk"), ("object_fts", "rowid"), ("match_keys", "pk")))
    finally:
        conn.close()


def _both(tmp_path: Path, batches: list[list[dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
    found = {}
    for name, defer in (("deferred", True), ("immediate", False)):
        store = _store(tmp_path / f"{name}.sqlite")
        for batch in batches:
            assert _put(store, batch, defer=defer) == [PutOutcome.NEW] * len(batch)
        if defer:
            assert store.index_lag() == sum(map(len, batches))
            assert _derived_counts(tmp_path / f"{name}.sqlite") == (0, 0, 0)
            assert store.catch_up_index() == sum(map(len, batches))
            assert store.index_lag() == 0
        store.close()
        found[name] = _tables(tmp_path / f"{name}.sqlite")
    return found["deferred"], found["immediate"]


def test_the_tail_indexed_later_is_what_an_immediate_write_indexes(tmp_path: Path) -> None:
    mix = _mix()
    deferred, immediate = _both(tmp_path, [mix[:4], mix[4:]])
    assert all(immediate[name] for name in _TABLES)  # every table has rows to compare
    assert deferred == immediate


def test_the_tail_on_attack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from threatmesh.store import sqlite_index

    monkeypatch.setattr(sqlite_index, "INDEX_CHUNK", 700)  # several transactions, the last one partial
    objects = _attack_objects(3000)
    deferred, immediate = _both(tmp_path, [objects[:1500], objects[1500:]])
    assert immediate["text"] and immediate["refs"]
    assert deferred == immediate


def test_no_read_misses_a_version_of_the_tail(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite")
    objects = [indicator(f"tail-{i}", "clear", description=f"seen near harbour{i}") for i in range(5)]
    _put(store, objects, defer=True)
    assert store.index_lag() == 5
    (hit,) = store.search("harbour3")
    assert hit.id == objects[3]["id"] and store.index_lag() == 0

    more = [indicator(f"more-{i}", "clear") for i in range(3)]
    _put(store, more, defer=True)
    value = more[1]["pattern"].split("'")[1]
    assert [v.id for v in store.find_observable("ipv4-addr", value)] == [more[1]["id"]]

    last = [indicator("last", "clear")]
    _put(store, last, defer=True)
    rows = store.indicator_key_rows()
    assert rows.count == 9 and last[0]["id"] in rows.id
    _put(store, [indicator("named", "clear")], defer=True)
    assert store.indicator_names([indicator("named", "clear")["id"]]) == {
        indicator("named", "clear")["id"]: "indicator named"}
    assert store.check_integrity() == []
    store.close()


def test_a_new_version_of_an_id_in_the_tail_supersedes_it(tmp_path: Path) -> None:
    """Deferred or not, the full-text rows end on the new version only, as if nothing had
    been deferred; deferred, the new version joins the tail."""
    first = [indicator(f"up-{i}", "clear", description=f"first words {i}") for i in range(4)]
    newer = [{**first[1], "modified": "2025-01-01T00:00:00.000Z", "description": "second words"}]
    found = {}
    for name, defer in (("deferred", True), ("immediate", False)):
        store = _store(tmp_path / f"{name}.sqlite")
        _put(store, first, defer=defer)
        assert _put(store, newer, defer=defer) == [PutOutcome.UPDATED]  # the general path
        assert store.index_lag() == (5 if defer else 0)
        assert [v.id for v in store.search("second")] == [first[1]["id"]]
        assert [v.id for v in store.search("first")] == [first[0]["id"], first[2]["id"], first[3]["id"]]
        assert store.check_integrity() == []
        store.close()
        found[name] = _tables(tmp_path / f"{name}.sqlite")
    assert found["deferred"] == found["immediate"]


def _sco(key: str, value: str) -> dict[str, Any]:
    return {"type": "domain-name", "spec_version": "2.1", "value": value,
            "id": f"domain-name--{uuid.uuid5(uuid.NAMESPACE_URL, key)}"}


def _random_batches(rng: random.Random, count: int) -> list[tuple[list[dict[str, Any]], bool]]:
    """Batches as a peer and local users send them: new ids, new and older versions of held
    ids, repeats, SCOs whose content changes (rewritten in place), mixed in any order; each
    with whether a peer sent it (deferred) or not."""
    held: list[dict[str, Any]] = []
    batches = []
    for b in range(count):
        batch: list[dict[str, Any]] = []
        for i in range(rng.randint(1, 12)):
            roll = rng.random()
            if roll < 0.45 or not held:
                obj = indicator(f"r{b}-{i}", rng.choice(["clear", "green", None]),
                                description=rng.choice(["quay", "anchor", "tide"]) + f" {b} {i}")
            elif roll < 0.65:
                base = rng.choice(held)
                if base["type"] != "indicator":
                    continue
                obj = {**base, "modified": f"2025-0{rng.randint(1, 9)}-01T00:00:00.000Z",
                       "description": rng.choice(["quay", "anchor", "tide"]) + " again",
                       "revoked": rng.random() < 0.2}
            elif roll < 0.75:
                obj = rng.choice(held)  # a repeat
            elif roll < 0.85:
                base = rng.choice(held)
                if base["type"] != "indicator":
                    continue
                obj = {**base, "modified": "2023-06-01T00:00:00.000Z"}  # older than its first version
            else:
                key = f"sco{rng.randint(0, 5)}"
                obj = _sco(key, f"{key}-{rng.randint(0, 3)}.example")  # same id; content may change
            if any(o["id"] == obj["id"] for o in batch):
                continue
            batch.append(obj)
            held.append(obj)
        batches.append((batch, rng.random() < 0.7))
    return batches


@pytest.mark.parametrize("seed", range(6))
def test_deferred_and_immediate_writes_leave_the_same_tables(tmp_path: Path, seed: int) -> None:
    """The same random sequence twice: once as sent (peers' batches deferred, tails indexed
    at random moments), once all immediate. After a final catch-up every table is equal."""
    rng = random.Random(seed)
    batches = _random_batches(rng, 30)
    found = {}
    for name in ("deferred", "immediate"):
        store = _store(tmp_path / f"{name}.sqlite")
        for batch, from_peer in batches:
            _put(store, batch, defer=from_peer and name == "deferred")
            assert _rows_above_watermark(tmp_path / f"{name}.sqlite") == 0  # the tail has none of them
            if name == "deferred" and rng.random() < 0.15:
                store.catch_up_index(limit=rng.randint(1, 20))
        store.catch_up_index()
        assert store.check_integrity() == []
        store.close()
        found[name] = _tables(tmp_path / f"{name}.sqlite")
    assert found["deferred"] == found["immediate"]
    assert found["immediate"]["text"] and found["immediate"]["match keys"]


def test_an_immediate_write_after_a_deferred_one_indexes_both(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite")
    _put(store, [indicator("peer-sent", "clear")], defer=True)
    _put(store, [indicator("local", "clear")], defer=False)
    assert store.index_lag() == 0
    assert _derived_counts(tmp_path / "s.sqlite") == (2, 2, 2)
    store.close()


def test_the_tail_survives_a_restart_and_a_read_only_store_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = _store(path)
    _put(store, [indicator(f"kept-{i}", "clear", description="restart") for i in range(6)], defer=True)
    store.close()
    reader = SQLiteStore(path, readonly=True)
    assert reader.index_lag() == 6 and reader.search("restart") == []  # it cannot write the rows
    reader.close()
    store = SQLiteStore(path)
    assert store.index_lag() == 6
    assert len(store.search("restart")) == 6 and store.index_lag() == 0
    store.close()


def test_the_integrity_check_finds_rows_above_the_watermark(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = _store(path)
    _put(store, [indicator("a", "clear"), indicator("b", "clear")], defer=False)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE index_state SET indexed_pk = indexed_pk - 1")
    conn.commit()
    conn.close()
    reader = SQLiteStore(path, readonly=True)
    problems = reader.check_integrity()
    reader.close()
    assert any(p.startswith("observables: 1 rows") for p in problems)
    assert any(p.startswith("object_fts: 1 rows") for p in problems)


def test_the_idle_indexer_waits_for_quiet_or_for_a_long_tail(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite")
    indexer = IdleIndexer(store, idle=60.0, cap=5)
    _put(store, [indicator(f"i{i}", "clear") for i in range(3)], defer=True)
    assert indexer.step() == 0 and store.index_lag() == 3  # busy, and the tail is short
    _put(store, [indicator(f"j{i}", "clear") for i in range(4)], defer=True)
    assert indexer.step() == 7 and store.index_lag() == 0  # 7 >= cap: indexed though busy
    _put(store, [indicator(f"k{i}", "clear") for i in range(2)], defer=True)
    quiet = IdleIndexer(store, idle=0.05, cap=1000)
    assert quiet.step() == 0
    time.sleep(0.1)
    assert quiet.step() == 2 and store.index_lag() == 0
    with pytest.raises(ValueError):
        IdleIndexer(store, poll=0)
    store.close()


def test_the_idle_indexer_indexes_what_waited_too_long_on_a_node_never_quiet(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite")
    indexer = IdleIndexer(store, idle=60.0, cap=1000, max_wait=0.2)
    _put(store, [indicator("first", "clear")], defer=True)
    assert indexer.step() == 0  # the tail is seen: its wait starts now
    time.sleep(0.1)
    _put(store, [indicator("second", "clear")], defer=True)
    assert indexer.step() == 0 and store.index_lag() == 2
    time.sleep(0.15)
    _put(store, [indicator("third", "clear")], defer=True)  # still busy, but the first has waited 0.25 s
    assert indexer.step() == 3 and store.index_lag() == 0
    _put(store, [indicator("fourth", "clear")], defer=True)
    assert indexer.step() == 0  # a new wait starts with a new tail
    store.close()


def test_the_idle_indexer_thread_indexes_and_stops(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite")
    _put(store, [indicator(f"t{i}", "clear") for i in range(10)], defer=True)
    indexer = IdleIndexer(store, idle=0.0, poll=0.02).start()
    deadline = time.monotonic() + 10
    while store.index_lag() and time.monotonic() < deadline:
        time.sleep(0.02)
    indexer.stop()
    assert store.index_lag() == 0
    _put(store, [indicator("after-stop", "clear")], defer=True)
    time.sleep(0.1)
    assert store.index_lag() == 1  # stopped: nothing indexes any more
    store.close()


def test_a_store_from_before_0011_counts_everything_it_holds_as_indexed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = _store(path)
    _put(store, [indicator(f"old-{i}", "clear", description="older store") for i in range(3)], defer=False)
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE index_state; DELETE FROM migrations WHERE name = '0011_index_tail';")
    conn.close()
    store = SQLiteStore(path)
    assert store.index_lag() == 0 and len(store.search("older")) == 3
    assert store.check_integrity() == []
    store.close()
