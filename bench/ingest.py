"""Ingest benchmark: the enterprise ATT&CK bundle into a fresh node.

In the same run, and on the same file, it times:
  threatmesh   `ingest_paths` into a new SQLite node (parse, validate, index, store); a
               file this big is parsed in a second process while the first stores it,
               and the same ingest in one process is timed too
  floor        json.loads of the file + one executemany of the raw objects into a one-table SQLite file
  stix2.parse  the OASIS reference library parsing every object (no storage at all)
and prints objects/s and the ratios, and the peak memory of a threatmesh ingest
measured in a child process (peak RSS minus the RSS of the same process before ingest).

Goals (issue 2): threatmesh within 3x of the floor, at least 10x faster than
stix2.parse, peak memory under 2x the file size.

    .venv/bin/python bench/ingest.py [--file PATH] [--skip-stix2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "attack" / "enterprise-attack-18.1-stix21-converted.json"


def time_threatmesh(path: Path, parallel: bool = True) -> tuple[float, int]:
    from threatmesh.ingest.pipeline import ingest_paths
    from threatmesh.node import init_node

    with tempfile.TemporaryDirectory() as home:
        node = init_node(Path(home) / "node", "bench", environ={}).node
        try:
            collection = node.default_collection.id
            started = time.perf_counter()
            report = ingest_paths([str(path)], node.store, collection_id=collection, parallel=parallel)
        finally:
            # Closing is timed too: it checkpoints what is still in the WAL into the
            # database file, as the floor's single COMMIT does inside its timing.
            node.close()
            elapsed = time.perf_counter() - started
    if report.failed_sources or report.rejected:
        print(f"  warning: {report.rejected} rejected, {report.failed_sources} unreadable", file=sys.stderr)
    return elapsed, report.total("new")


def time_floor(path: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE objects (id TEXT, json TEXT)")
        started = time.perf_counter()
        objects = json.loads(path.read_bytes())["objects"]
        with db:
            db.executemany("INSERT INTO objects VALUES (?, ?)", ((o["id"], json.dumps(o)) for o in objects))
        elapsed = time.perf_counter() - started
        db.close()
    return elapsed, len(objects)


def time_stix2(path: Path) -> tuple[float, int]:
    import stix2

    objects = json.loads(path.read_bytes())["objects"]
    started = time.perf_counter()
    for obj in objects:
        stix2.parse(obj, allow_custom=True)
    return time.perf_counter() - started, len(objects)


def peak_memory(path: Path) -> tuple[int, int, int]:
    """(peak RSS growth during ingest, baseline RSS, peak RSS of the parsing process) of a child
    process running the ingest, in bytes; the growth includes the parsing process's whole peak."""
    # ru_maxrss survives exec (it would report this parent's peak), so the child
    # resets its own high-water mark through /proc and reads VmHWM afterwards.
    code = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from threatmesh.ingest.pipeline import ingest_paths\n"
        "from threatmesh.node import init_node\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) * 1024\n"
        "home = tempfile.mkdtemp()\n"
        "node = init_node(Path(home) / 'n', 'bench', environ={}).node\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "base = status('VmRSS')\n"
        "ingest_paths([sys.argv[1]], node.store, collection_id=node.default_collection.id)\n"
        "import resource\n"
        "print(base, status('VmHWM'), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    base, peak, child_peak = (int(x) for x in result.stdout.split())
    # A big file is parsed in a child process: all of its memory is the ingest's.
    return peak - base + child_peak, base, child_peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=CORPUS)
    parser.add_argument("--skip-stix2", action="store_true", help="skip the (slow) stix2.parse reference")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of threatmesh and the floor")
    args = parser.parse_args()
    if not args.file.exists():
        print(f"skipped: {args.file} is absent (the shared corpora are not here)")
        return 0
    size = args.file.stat().st_size
    print(f"file: {args.file.name} ({size / 1e6:.1f} MB), {os.cpu_count()} cores")

    # The runs alternate, so that a shared machine's changing load falls on all of
    # them alike; each figure is the best of `--repeat` runs.
    runs: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, timed in (
            ("threatmesh ingest", lambda: time_threatmesh(args.file)),
            ("threatmesh ingest, one process", lambda: time_threatmesh(args.file, parallel=False)),
            ("floor: json.loads + executemany", lambda: time_floor(args.file)),
        ):
            seconds, counts[name] = timed()
            runs.setdefault(name, []).append(seconds)
    if not args.skip_stix2:
        seconds, counts["stix2.parse (no storage)"] = time_stix2(args.file)
        runs["stix2.parse (no storage)"] = [seconds]
    best = {name: min(times) for name, times in runs.items()}
    for name, times in runs.items():
        n = counts[name]
        spread = f" (of {len(times)} runs: {', '.join(f'{t:.2f}' for t in times)} s)" if len(times) > 1 else ""
        print(f"  {name:34s} {n:>7,} objects in {best[name]:7.2f} s = {n / best[name]:>10,.0f} objects/s{spread}")
    tm_s, floor_s = best["threatmesh ingest"], best["floor: json.loads + executemany"]
    print(f"  threatmesh / floor time ratio: {tm_s / floor_s:.2f}x (goal <= 3x); in one process: "
          f"{best['threatmesh ingest, one process'] / floor_s:.2f}x")
    if not args.skip_stix2:
        print(f"  stix2.parse / threatmesh time ratio: {best['stix2.parse (no storage)'] / tm_s:.1f}x (goal >= 10x); "
              f"stix2.parse / floor: {best['stix2.parse (no storage)'] / floor_s:.1f}x")
    grown, base, child = peak_memory(args.file)
    print(f"  peak memory growth during ingest: {grown / 1e6:.1f} MB = {grown / size:.2f}x the file "
          f"(goal < 2x; process baseline {base / 1e6:.0f} MB; of the growth, {child / 1e6:.0f} MB is the "
          "parsing process's whole peak)")
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
