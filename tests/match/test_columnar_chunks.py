"""The columnar matcher read in many small chunks, with sightings written between them.

Chunk edges must not move line numbers, and a sighting written after one chunk
must still count the hits of later chunks (and a re-run must count none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from threatmesh.logs import ReadReport, read_logs
from threatmesh.match import columnar, run
from threatmesh.match.engine import Matcher
from threatmesh.match.index import build_index, load_index
from threatmesh.match.run import run_match
from threatmesh.match.sightings import SightingRecorder, sighting_id
from threatmesh.node import init_node
from threatmesh.stix.parse import parse_object

HEADER = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
          "#fields\tts\tid.orig_h\tid.resp_h\thost\turi\tmd5\n#types\ttime\taddr\taddr\tstring\tstring\tstring\n")
A = "indicator--0000000a-0000-4000-8000-000000000000"
B = "indicator--0000000b-0000-4000-8000-000000000000"
C = "indicator--0000000c-0000-4000-8000-000000000000"


def _ind(ind_id: str, pattern: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": ind_id, "created": "2020-01-01T00:00:00.000Z",
            "modified": "2020-01-01T00:00:00.000Z", "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2020-01-01T00:00:00Z"}


INDICATORS = [_ind(A, "[domain-name:value = 'evil.example']"), _ind(B, "[ipv4-addr:value = '203.0.113.0/24']"),
              _ind(C, "[url:value = 'http://bad.example/x']")]


def _log(path: Path) -> dict[int, set[str]]:
    """A 60-line http log; returns the expected hits by line number."""
    lines = HEADER.rstrip("\n").split("\n")
    expected: dict[int, set[str]] = {}
    for i in range(60):
        line_no = len(lines) + 1
        host, resp = f"www{i}.fine.example", f"192.0.2.{i}"
        if i in (3, 4, 5, 41):  # A several times inside one chunk, and again later
            host = f"cdn{i}.evil.example"
            expected.setdefault(line_no, set()).add(A)
        if i in (4, 20):
            resp = f"203.0.113.{i}"
            expected.setdefault(line_no, set()).add(B)
        uri = "/x" if i in (33, 50) else f"/p{i}"
        if i in (33, 50):  # the URL's host in capitals, and with its default port
            host = "BAD.example" if i == 33 else "bad.example:80"
            expected.setdefault(line_no, set()).add(C)
        lines.append(f"{1700000000 + i}.0\t10.0.0.{i}\t{resp}\t{host}\t{uri}\t-")
        if i == 25:
            lines.append("")  # an empty line: later line numbers must not shift
    path.write_text("\n".join(lines) + "\n#close\t2023-11-14-23-13-20\n")
    return expected


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "CHUNK_BYTES", 150)  # two or three lines a chunk
    monkeypatch.setattr(run, "COLUMNAR_FLUSH_EVERY_HITS", 1)  # write sightings after every chunk with a hit


def test_small_chunks_keep_line_numbers(tmp_path: Path, small_chunks: None) -> None:
    log = tmp_path / "http.log"
    expected = _log(log)
    index = build_index(INDICATORS)
    read = ReadReport()
    line_hits = {(h.event.line, h.indicator_id) for h in Matcher(index, now=0).match(read_logs([str(log)], "zeek", read))}
    report = ReadReport()
    hits, lines, _ = columnar.match_zeek_file(str(log), index, report, now=0)
    want = {(line, i) for line, ids in expected.items() for i in ids}
    assert {(h.event.line, h.indicator_id) for h in hits} == line_hits == want
    assert lines == read.lines == 7 + 61 + 1  # header, lines and the empty one, #close


@pytest.mark.parametrize("bulk", [False, True])
def test_sightings_written_between_chunks_count_every_hit_once(tmp_path: Path, small_chunks: None, bulk: bool) -> None:
    log = tmp_path / "http.log"
    expected = _log(log)
    node = init_node(tmp_path / "node", name="t").node
    try:
        node.store.put_objects([parse_object(o) for o in INDICATORS], collection_id=node.default_collection.id,
                               source="test")
        index = load_index(node.store) if bulk else build_index(INDICATORS)
        assert bool(index.hashed) is bulk
        per_indicator = {A: 4, B: 2, C: 2}
        for attempt in range(2):
            recorder = SightingRecorder(node.store, node.identity_id, node.default_collection.id)
            report = run_match([str(log)], index, recorder)
            assert report.columnar_files == [str(log)]
            assert report.hits == sum(len(v) for v in expected.values()) == 8
            assert report.new_hits == (8 if attempt == 0 else 0)
            for ind_id, count in per_indicator.items():
                stored = node.store.get_latest(sighting_id(node.identity_id, ind_id))
                assert stored is not None and orjson.loads(stored.json)["count"] == count, (attempt, ind_id)
    finally:
        node.close()


@pytest.mark.parametrize("evidence", [False, True])
def test_sightings_are_described_for_the_store_as_parse_object_would(tmp_path: Path, small_chunks: None,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      evidence: bool) -> None:
    """The recorder describes its own sightings without `parse_object`: every version it wrote
    (new, then updated between chunks, with evidence refs or without) reads back equal to
    parse_object's description of the same JSON, refs included."""
    from threatmesh.match import sightings

    log = tmp_path / "http.log"
    _log(log)
    node = init_node(tmp_path / "node", name="t").node
    written: list[Any] = []
    real = sightings.own_sighting

    def keep(sighting: dict[str, Any]) -> Any:
        written.append(real(sighting))
        return written[-1]

    monkeypatch.setattr(sightings, "own_sighting", keep)
    try:
        recorder = SightingRecorder(node.store, node.identity_id, node.default_collection.id, evidence=evidence)
        run_match([str(log)], build_index(INDICATORS), recorder)
    finally:
        node.close()
    assert len(written) > 3 and any(orjson.loads(o.json)["count"] > 1 for o in written)
    assert any("observed_data_refs" in o.data for o in written) is evidence
    for own in written:
        assert own == parse_object(orjson.loads(own.json)), own.id


def test_a_columnar_run_collects_less_often_and_restores_the_collector(tmp_path: Path) -> None:
    import gc

    log = tmp_path / "http.log"
    _log(log)
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    report = run_match([str(log)], build_index(INDICATORS), None, on_hit=lambda hit, _new: during.append(gc.get_threshold()))
    assert report.columnar_files == [str(log)] and len(during) == 8
    assert all(t[0] >= 50_000 and t[1:] == before[1:] for t in during)
    assert gc.get_threshold() == before
