"""Ingest of real third-party STIX from ../shared/corpora, judged against the files themselves."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import corpus_path
from threatmesh.ingest.pipeline import ingest_paths
from threatmesh.node import Node, init_node
from threatmesh.export.select import ExportOptions
from threatmesh.export.stix import export_stix
from threatmesh.share.policy import Recipient


@pytest.fixture
def node(tmp_path: Path) -> Node:
    created = init_node(tmp_path / "node", "corpus", environ={})
    yield created.node
    created.node.close()


def _ingest(node: Node, *paths: Path, strict: bool = False):  # type: ignore[no-untyped-def]
    return ingest_paths([str(p) for p in paths], node.store, collection_id=node.default_collection.id, strict=strict)


def _export(node: Node, tmp_path: Path, all_versions: bool = False) -> list[dict]:  # type: ignore[type-arg]
    out = tmp_path / "export.json"
    with out.open("wb") as stream:
        export_stix(node.store, stream, recipient=Recipient.operator(), default_tlp="amber",
                    options=ExportOptions(all_versions=all_versions))
    return json.loads(out.read_bytes())["objects"]  # type: ignore[no-any-return]


def test_enterprise_attack_counts_and_round_trip(node: Node, tmp_path: Path) -> None:
    path = corpus_path("attack", "enterprise-attack-18.1-stix21-converted.json")
    source = json.loads(path.read_bytes())["objects"]
    report = _ingest(node, path)
    assert report.rejected == 0 and report.failed_sources == 0
    assert report.total("new") == len({o["id"] for o in source}) == 24771
    stats = node.store.stats()
    expected = Counter(o["type"] for o in source)
    expected["identity"] += 1  # the node's own identity
    assert stats.by_type == dict(expected)
    exported = {o["id"]: o for o in _export(node, tmp_path)}
    for obj in source:
        assert exported[obj["id"]] == obj, obj["id"]
    # byte-for-byte equivalent: same keys in the same order, too
    sample = source[:200]
    assert [list(exported[o["id"]]) for o in sample] == [list(o) for o in sample]
    # re-ingesting changes nothing
    again = _ingest(node, path)
    assert again.total("unchanged") == 24771 and again.total("new") == again.total("updated") == 0
    assert node.store.check_integrity() == []


def test_ics_versions_update_and_history(node: Node, tmp_path: Path) -> None:
    v17 = corpus_path("attack", "ics-attack-17.1.json")
    v18 = corpus_path("attack", "ics-attack-18.1.json")
    old = {o["id"]: o for o in json.loads(v17.read_bytes())["objects"]}
    new = {o["id"]: o for o in json.loads(v18.read_bytes())["objects"]}
    _ingest(node, v17)
    report = _ingest(node, v18)
    changed = {i for i in new if i in old and new[i].get("modified") != old[i].get("modified")}
    newer = {i for i in changed if new[i]["modified"] > old[i]["modified"]}
    assert changed, "the two ICS releases should differ"
    assert report.total("updated") == len(newer)
    assert report.total("new") == len(set(new) - set(old))
    for object_id in list(newer)[:300]:
        versions = node.store.get_versions(object_id)
        assert [json.loads(v.json) for v in versions] == [old[object_id], new[object_id]]
        assert json.loads(node.store.get_latest(object_id).json) == new[object_id]  # type: ignore[union-attr]
    before = node.store.stats()
    for path in (v17, v18):
        again = _ingest(node, path)
        assert again.total("new") == again.total("updated") == again.total("older") == 0
    assert node.store.stats().versions == before.versions


def test_ics_stix20_upgrade_equals_native_21(node: Node, tmp_path: Path) -> None:
    v20 = corpus_path("attack", "ics-attack-18.1-stix20-assembled-from-mitre-cti.json")
    v21 = corpus_path("attack", "ics-attack-18.1.json")
    report = _ingest(node, v20)
    assert report.rejected == 0
    assert report.total("upgraded") == report.total("new")
    stored = {o["id"]: o for o in _export(node, tmp_path)}
    native = {o["id"]: o for o in json.loads(v21.read_bytes())["objects"]}
    missing = set(native) - set(stored)
    assert {i.split("--")[0] for i in missing} == {"x-mitre-collection"}
    for object_id, obj in native.items():
        if object_id in missing:
            continue
        assert stored[object_id] == obj, object_id
    latest = node.store.get_latest(next(iter(set(native) - missing)))
    assert latest is not None and latest.upgraded_from == "2.0"


def _stix_files() -> list[Path]:
    root = corpus_path("stix")
    return sorted(root.rglob("*.json"))


def test_every_stix_corpus_file_ingests_leniently(node: Node) -> None:
    files = _stix_files()
    assert len(files) > 50
    report = _ingest(node, *files)
    for source in report.sources:
        for rejection in source.rejected:
            assert rejection.reason and source.source in rejection.location
    readable = [s for s in report.sources if not s.error]
    assert report.total("new") > 10_000
    # the unit42 playbooks (with their invalid list-valued identity_class) all go in leniently
    unit42 = [s for s in report.sources if "unit42-playbooks/playbook_json" in s.source]
    assert unit42 and all(not s.rejected and not s.error for s in unit42)
    # a file that is not STIX (a JSON schema) is named with a reason, not a crash
    for source in report.sources:
        if source.error:
            assert source.source in source.error
    assert len(readable) >= len(unit42)


def test_strict_rejects_invalid_objects(node: Node) -> None:
    """--strict rejects what the spec forbids (list-valued identity_class) and keeps the valid objects.

    The validator costs milliseconds per object, so this uses two playbooks, not all 85.
    """
    folder = corpus_path("stix", "unit42-playbooks", "playbook_json")
    files = [folder / "moneylibra.json", folder / "IcedID_Unit42_Intel.json"]
    strict = _ingest(node, *files, strict=True)
    rejections = [r for s in strict.sources for r in s.rejected]
    assert len(rejections) == 5
    assert all("identity_class" in r.reason and r.object_id and r.object_id in r.location for r in rejections)
    assert all(s.accepted > 300 for s in strict.sources)
    # the same files go in whole in lenient mode
    lenient = _ingest(node, *files)
    assert lenient.rejected == 0 and lenient.total("new") == 5
