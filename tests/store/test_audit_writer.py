"""The audit log is written in batches off the request path; nothing is lost on a normal close."""

from __future__ import annotations

import threading
from pathlib import Path

from threatmesh.store.sqlite import SQLiteStore


def test_queued_audit_entries_are_written_on_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")

    def serve(worker: int) -> None:
        for n in range(700):
            store.audit(f"peer{worker}", "GET", f"/taxii2/default/{n}/", 200, n)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    with SQLiteStore(tmp_path / "store.db") as reopened:
        entries = reopened.audit_log(limit=10_000)
    assert len(entries) == 2800
    assert {(e.account, e.objects) for e in entries} == {(f"peer{w}", n) for w in range(4) for n in range(700)}


def test_audit_log_reads_what_was_just_queued(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "store.db") as store:
        store.audit("peer", "POST", "/taxii2/default/collections/x/objects/", 202, 3)
        [entry] = store.audit_log(account="peer")
        assert (entry.method, entry.status, entry.objects) == ("POST", 202, 3)
