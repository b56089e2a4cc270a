"""A writer process killed with SIGKILL mid-ingest leaves a sound SQLite store.

The writer runs in a real subprocess and reports each batch once put_objects
has returned (committed). After the kill the store must open, pass its
integrity check, hold every reported batch whole and no batch in part, and a
second run of the same writes must finish without duplicating anything.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from threatmesh.store.protocol import ObjectQuery
from threatmesh.store.sqlite import SQLiteStore

BATCHES = 40
BATCH_SIZE = 400
COLLECTION = "0b6f2f0e-5a3e-4d0c-9f59-6b1f8f0c8a11"

WRITER = textwrap.dedent(
    f"""
    import sys
    import orjson
    from threatmesh.errors import Conflict
    from threatmesh.stix.model import ObjectIndex, StixObject
    from threatmesh.store.protocol import Collection, PutOutcome
    from threatmesh.store.sqlite import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    try:
        store.add_collection(Collection(id={COLLECTION!r}, title="crash"))
    except Conflict:
        pass  # a second run

    def version(n):
        return f"2024-01-01T00:{{n // 60:02d}}:{{n % 60:02d}}.000000Z"

    def obj(object_id, ver, n):
        body = {{"type": object_id.split("--")[0], "spec_version": "2.1", "id": object_id,
                 "created": ver, "modified": ver, "name": f"object {{n}} " + "x" * 300}}
        return StixObject(
            id=object_id, type=body["type"], spec_version="2.1", version=ver, data=body,
            json=orjson.dumps(body),
            index=ObjectIndex(
                refs=(("x_ref", "identity--00000000-0000-4000-8000-000000000001"),),
                markings=("marking-definition--00000000-0000-4000-8000-000000000002",),
                text=(("name", body["name"]),),
                observables=(("domain-name", f"host{{n}}.example"),),
            ),
        )

    for b in range({BATCHES}):
        batch = [obj(f"indicator--00000000-0000-4000-8000-{{b * {BATCH_SIZE} + j:012d}}", version(1), b * {BATCH_SIZE} + j)
                 for j in range({BATCH_SIZE})]
        # One object gets a new version in every batch: latest flags and FTS rows move.
        batch.append(obj("note--00000000-0000-4000-8000-000000000001", version(b), -1))
        results = store.put_objects(batch, collection_id={COLLECTION!r}, source=f"batch-{{b}}")
        fresh = sum(r.outcome is not PutOutcome.UNCHANGED for r in results)
        print(b, fresh, flush=True)
    store.close()
    print("done", flush=True)
    """
)


def run_writer(script: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def batches_present(db: Path) -> dict[int, int]:
    store = SQLiteStore(db)
    try:
        assert store.check_integrity() == []
        counts = collections.Counter(v.source for v in store.iter_objects(all_versions=True))
    finally:
        store.close()
    return {int(source.removeprefix("batch-")): n for source, n in counts.items()}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_ingest_keeps_store_whole(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "crash.sqlite"
    rng = random.Random(20240101)
    reported: list[int] = []

    for round_ in range(3):
        proc = run_writer(script, db)
        assert proc.stdout is not None
        # Kill at a random moment after a few batches of this round have committed.
        target = 2 + round_ * 3
        seen_this_round = 0
        for line in proc.stdout:
            if line.strip() == "done":
                break
            batch, _ = map(int, line.split())
            reported.append(batch)
            seen_this_round += 1
            if seen_this_round >= target:
                time.sleep(rng.uniform(0.0, 0.05))
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        present = batches_present(db)
        # Each batch is all there (its indicators plus one note version) or not at all.
        assert all(n == BATCH_SIZE + 1 for n in present.values()), present
        assert set(present) == set(range(len(present))), "batches commit in order"
        assert set(reported) <= set(present), "a reported commit was lost"

    # A full re-run completes: stored batches are unchanged, the rest go in once.
    before = set(batches_present(db))
    proc = run_writer(script, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = out.split()
    assert lines[-1] == "done"
    fresh = {int(b): int(n) for b, n in zip(lines[:-1:2], lines[1:-1:2])}
    assert all(fresh[b] == 0 for b in before)
    assert all(fresh[b] == BATCH_SIZE + 1 for b in set(range(BATCHES)) - before)

    present = batches_present(db)
    assert present == {b: BATCH_SIZE + 1 for b in range(BATCHES)}
    store = SQLiteStore(db, readonly=True)
    try:
        everything = store.query(ObjectQuery(COLLECTION, versions=("all",))).items
        pairs = [(v.id, v.version) for v in everything]
        assert len(pairs) == len(set(pairs)) == BATCHES * (BATCH_SIZE + 1)
        stamps = [v.date_added for v in everything]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        latest = store.get_latest("note--00000000-0000-4000-8000-000000000001")
        assert latest is not None and latest.source == f"batch-{BATCHES - 1}"
        assert store.stats().objects == BATCHES * BATCH_SIZE + 1
    finally:
        store.close()
