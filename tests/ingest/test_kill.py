"""A `kill -9` during a large ingest leaves a sound store holding a consistent prefix;
running the ingest again completes it with no duplicates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import indicator
from threatmesh.node import open_node


def _cli(home: Path, *args: str, **kwargs):  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "threatmesh.cli", "--home", str(home), *args], **kwargs)


def test_kill_during_ingest_then_resume(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert _cli(home, "init", stdout=subprocess.DEVNULL).wait(60) == 0
    count = 60_000
    bundle = tmp_path / "big.json"
    with bundle.open("w") as stream:
        stream.write('{"type":"bundle","id":"bundle--6d3c1f2e-5f74-4287-9642-33f4c354e56d","objects":[')
        stream.write(",".join(json.dumps(indicator(n)) for n in range(count)))
        stream.write("]}")

    db = home / "threatmesh.db"
    proc = _cli(home, "ingest", str(bundle), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until some batches have been committed, then kill without warning
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = _count_indicators(db)
        if stored >= 4_000:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    node = open_node(home, environ={})
    try:
        assert node.store.check_integrity() == []
        partial = node.store.stats().by_type.get("indicator", 0)
        assert 0 < partial < count, partial
        # a consistent prefix: exactly the first `partial` objects, nothing beyond
        for n in (0, partial - 1):
            assert node.store.get_latest(indicator(n)["id"]) is not None
        assert node.store.get_latest(indicator(partial)["id"]) is None
    finally:
        node.close()

    resumed = subprocess.run([sys.executable, "-m", "threatmesh.cli", "--home", str(home), "ingest", str(bundle), "--json"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["new"] == count - partial and summary["unchanged"] == partial
    node = open_node(home, environ={})
    try:
        stats = node.store.stats()
        assert stats.by_type["indicator"] == count
        assert stats.versions == stats.objects  # no version stored twice
        assert node.store.check_integrity() == []
    finally:
        node.close()


def _count_indicators(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            table = "objects" if "objects" in tables else next(iter(tables), None)
            if table is None:
                return 0
            return int(con.execute(f"SELECT count(*) FROM {table} WHERE type = 'indicator'").fetchone()[0])
    except sqlite3.Error:
        return 0
