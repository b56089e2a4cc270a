"""A big STIX file parsed in a second process ends exactly as if parsed in this one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import threatmesh.ingest.parallel as parallel
from tests.conftest import corpus_path
from tests.helpers import indicator, write_bundle
from threatmesh.ingest.pipeline import IngestReport, ingest_paths
from threatmesh.node import Node, init_node


@pytest.fixture
def nodes(tmp_path: Path) -> tuple[Node, Node]:
    a = init_node(tmp_path / "a", "in-process", environ={}).node
    b = init_node(tmp_path / "b", "two-process", environ={}).node
    yield a, b
    a.close()
    b.close()


def _ingest(node: Node, path: Path, *, parallel_parse: bool) -> IngestReport:
    return ingest_paths([str(path)], node.store, collection_id=node.default_collection.id, parallel=parallel_parse)


def _content(node: Node) -> list[tuple[Any, ...]]:
    """Every stored version with what the store indexed about it."""
    with node.store._reading() as conn:  # the index tables are the store's own business
        rows = conn.execute(
            "SELECT o.id, o.version, o.json, o.tlp, o.revoked, o.upgraded_from, o.created_by_ref, o.is_latest,"
            " (SELECT group_concat(path || '=' || target, ' ') FROM (SELECT * FROM refs r WHERE r.pk = o.pk"
            "   ORDER BY path, target)),"
            " (SELECT group_concat(marking_id, ' ') FROM (SELECT * FROM markings k WHERE k.pk = o.pk"
            "   ORDER BY marking_id)),"
            " (SELECT group_concat(kind || '=' || value, ' ') FROM (SELECT * FROM observables v WHERE v.pk = o.pk"
            "   ORDER BY kind, value)),"
            " (SELECT body FROM object_fts WHERE rowid = o.pk)"
            " FROM objects o WHERE o.source LIKE 'file:%' ORDER BY o.id, o.version"  # not the node's own identity
        ).fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def _summary(report: IngestReport) -> dict[str, object]:
    summary = report.as_dict()
    summary.pop("seconds")
    return summary


@pytest.mark.parametrize("corpus", ["ics-attack-18.1.json", "ics-attack-18.1-stix20-assembled-from-mitre-cti.json"])
def test_child_parse_stores_exactly_what_in_process_parse_stores(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, corpus: str
) -> None:
    path = corpus_path("attack", corpus)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    assert parallel.worth_a_child(str(path))
    here, there = nodes
    expected = _ingest(here, path, parallel_parse=False)
    got = _ingest(there, path, parallel_parse=True)
    assert _summary(got) == _summary(expected)
    assert got.total("new") > 1000
    assert _content(there) == _content(here)


def test_child_parse_reports_rejections_with_their_locations(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    missing_id = indicator(3)
    del missing_id["id"]
    path = write_bundle(tmp_path / "mixed.json", [indicator(1), indicator(2), missing_id, indicator(4)])
    here, there = nodes
    expected = _ingest(here, path, parallel_parse=False)
    got = _ingest(there, path, parallel_parse=True)
    assert got.total("new") == 3
    (rejection,) = got.sources[0].rejected
    assert f"{path}, objects[2]" in rejection.location and "id" in rejection.reason
    assert _summary(got) == _summary(expected)


def test_truncated_file_in_child_keeps_what_came_before(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    text = json.dumps({"type": "bundle", "id": "bundle--1d3c1f2e-5f74-4287-9642-33f4c354e56d",
                       "objects": [indicator(n) for n in range(1, 6)]}, indent=1)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: int(len(text) * 0.7)])
    here, there = nodes
    expected = _ingest(here, truncated, parallel_parse=False).sources[0]
    got = _ingest(there, truncated, parallel_parse=True).sources[0]
    assert got.error == expected.error and got.error is not None
    assert str(truncated) in got.error and "line" in got.error
    assert got.new == expected.new >= 2


def test_a_child_that_dies_is_the_sources_error_and_the_run_goes_on(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    path = write_bundle(tmp_path / "fine.json", [indicator(1)])
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the child exits at once, having sent nothing
    _, node = nodes
    report = ingest_paths([str(path), str(path)], node.store, collection_id=node.default_collection.id)
    assert len(report.sources) == 2
    for source in report.sources:
        assert source.error is not None and "stopped unexpectedly (exit code 1)" in source.error
        assert source.new == 0
