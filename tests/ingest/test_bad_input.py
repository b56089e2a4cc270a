"""Bad input gets a clear error with its file and position; the rest of the batch goes in."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import indicator, write_bundle
from threatmesh.ingest.pipeline import ingest_paths
from threatmesh.node import Node, init_node


@pytest.fixture
def node(tmp_path: Path) -> Node:
    created = init_node(tmp_path / "node", "bad-input", environ={})
    yield created.node
    created.node.close()


def _ingest(node: Node, *paths: Path):  # type: ignore[no-untyped-def]
    return ingest_paths([str(p) for p in paths], node.store, collection_id=node.default_collection.id)


def test_truncated_json_keeps_what_came_before(node: Node, tmp_path: Path) -> None:
    good = write_bundle(tmp_path / "good.json", [indicator(1)])
    text = json.dumps({"type": "bundle", "id": "bundle--1d3c1f2e-5f74-4287-9642-33f4c354e56d",
                       "objects": [indicator(2), indicator(3), indicator(4)]}, indent=1)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: int(len(text) * 0.8)])
    report = _ingest(node, truncated, good)
    broken, fine = report.sources
    assert broken.error and str(truncated) in broken.error and "line" in broken.error
    assert broken.new == 2  # the two complete objects before the cut
    assert fine.new == 1 and fine.error is None


def test_not_stix_json(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"name": "not stix", "values": [1, 2]}))
    listing = tmp_path / "numbers.json"
    listing.write_text("[1, 2, 3]")
    report = _ingest(node, path, listing)
    assert "not STIX" in (report.sources[0].error or "")
    assert report.sources[1].new == 0 and len(report.sources[1].rejected) == 3
    assert all("objects[" in r.location for r in report.sources[1].rejected)


def test_not_json_at_all(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("hello, this is prose")
    report = _ingest(node, path)
    assert "unrecognised format" in (report.sources[0].error or "")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_files(node: Node, tmp_path: Path, encoding: str) -> None:
    obj = indicator(10, name="Überwachung ☃ 监视")
    text = json.dumps({"type": "bundle", "id": "bundle--2d3c1f2e-5f74-4287-9642-33f4c354e56d", "objects": [obj]},
                      ensure_ascii=False)
    path = tmp_path / f"{encoding}.json"
    # 'utf-16' writes a BOM; the -le/-be forms have none and are recognised by their zero bytes
    path.write_bytes(text.encode(encoding))
    report = _ingest(node, path)
    assert report.sources[0].error is None, report.sources[0].error
    assert report.total("new") + report.total("unchanged") == 1
    stored = node.store.get_latest(obj["id"])
    assert stored is not None and json.loads(stored.json)["name"] == "Überwachung ☃ 监视"


def test_gzip_and_directories(node: Node, tmp_path: Path) -> None:
    folder = tmp_path / "feeds" / "deep"
    folder.mkdir(parents=True)
    write_bundle(folder / "a.json", [indicator(20)])
    with gzip.open(folder / "b.json.gz", "wt") as stream:
        json.dump({"type": "bundle", "id": "bundle--3d3c1f2e-5f74-4287-9642-33f4c354e56d", "objects": [indicator(21)]}, stream)
    (folder / "ignored.bin").write_bytes(b"\x00\x01 not a format any reader claims")
    report = _ingest(node, tmp_path / "feeds")
    assert sorted(Path(s.source).name for s in report.sources) == ["a.json", "b.json.gz"]
    assert report.total("new") == 2


def test_missing_path_is_reported_and_others_go_in(node: Node, tmp_path: Path) -> None:
    good = write_bundle(tmp_path / "good.json", [indicator(30)])
    report = _ingest(node, tmp_path / "nope.json", good)
    assert "no such file" in (report.sources[0].error or "")
    assert report.total("new") == 1


def test_single_object_and_list(node: Node, tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(indicator(40)))
    many = tmp_path / "list.json"
    many.write_text(json.dumps([indicator(41), indicator(42)]))
    report = _ingest(node, single, many)
    assert [s.new for s in report.sources] == [1, 2]


def test_object_missing_id_names_its_position(node: Node, tmp_path: Path) -> None:
    broken = indicator(50)
    del broken["id"]
    path = write_bundle(tmp_path / "noid.json", [indicator(51), indicator(52), broken])
    report = _ingest(node, path)
    (rejection,) = report.sources[0].rejected
    assert rejection.location == f"{path}, objects[2]"
    assert "id" in rejection.reason
    assert report.total("new") == 2


def test_200_mb_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A 200 MB bundle goes in without holding the file in memory (checked in a child process)."""
    path = tmp_path / "big.json"
    filler = "x" * 1_000_000
    with path.open("w") as stream:
        stream.write('{"type": "bundle", "id": "bundle--4d3c1f2e-5f74-4287-9642-33f4c354e56d", "objects": [')
        for n in range(200):
            if n:
                stream.write(",")
            stream.write(json.dumps(indicator(1000 + n, description=filler)))
        stream.write("]}")
    size = path.stat().st_size
    assert size > 200_000_000
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from threatmesh.ingest.pipeline import ingest_paths\nfrom threatmesh.node import init_node\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) * 1024\n"
        "node = init_node(Path(sys.argv[2]), 'big', environ={}).node\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # reset the peak-RSS mark\n"
        "base = status('VmRSS')\n"
        "r = ingest_paths([sys.argv[1]], node.store, collection_id=node.default_collection.id)\n"
        "import resource\n"
        "# A big file is parsed in a child process: its whole peak counts too.\n"
        "child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(r.total('new'), r.rejected, status('VmHWM') - base + child)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "bignode")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    new, rejected, grown = (int(x) for x in done.stdout.split())
    assert (new, rejected) == (200, 0)
    assert grown < size / 2, f"ingest grew by {grown / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def test_stdin_is_detected_and_named(node: Node, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    payload = json.dumps({"type": "bundle", "id": "bundle--7d3c1f2e-5f74-4287-9642-33f4c354e56d",
                          "objects": [indicator(60), {"type": "indicator"}]}).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    report = ingest_paths(["-"], node.store, collection_id=node.default_collection.id)
    (source,) = report.sources
    assert source.source == "<stdin>" and source.new == 1
    assert source.rejected[0].location.startswith("<stdin>, objects[1]")


def test_unknown_format_name_is_reported(node: Node, tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "x.json", [indicator(61)])
    report = ingest_paths([str(path)], node.store, collection_id=node.default_collection.id, fmt="nonsense")
    assert "unknown format 'nonsense'" in (report.sources[0].error or "")
