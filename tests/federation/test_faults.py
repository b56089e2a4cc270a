"""Faults: a node killed (-9) in the middle of a sync round, a peer that is down, a peer
that sends a tampered object. Real nodes, each its own process, SQLite file and port."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import requests

from tests.federation.mesh import Link, Mesh, indicator
from threatmesh.federation.sync import BATCH_SIZE
from threatmesh.federation.signatures import Signer
from threatmesh.share.keys import load_node_key
from threatmesh.store.sqlite import SQLiteStore


def _clear_batch(prefix: str, n: int) -> list[dict[str, object]]:
    return [indicator(f"{prefix}-{i}", "clear", description="x" * 200) for i in range(n)]


def _keys(objs: list[dict[str, object]]) -> set[tuple[str, str]]:
    return {(str(o["id"]), str(o["modified"])) for o in objs}


def test_killed_node_and_down_peer_converge_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, ["a", "b", "c"], [Link("a", "b"), Link("b", "c")], {})
    a, b, c = (mesh.nodes[n] for n in "abc")
    try:
        own = {n: node.holdings() for n, node in mesh.nodes.items()}  # each node's identity (AMBER: stays)
        # More than two push batches, so that a kill lands between two of them.
        first = _clear_batch("first", 2 * BATCH_SIZE + 1000)
        a.seed(first)
        mesh.start()
        # Kill b as soon as the first objects reach it: in the middle of a's push (and of b's pull).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(b.holdings() & _keys(first)) < 50:
            time.sleep(0.01)
        got_before_kill = len(b.holdings() & _keys(first))
        assert 0 < got_before_kill < len(first), "b must be killed mid-round for this test to mean anything"
        b.kill9()
        b.start()
        b.wait_ready()

        # c goes down; new objects arrive at a meanwhile; c comes back and catches up.
        c.stop()
        second = _clear_batch("second", 300)
        a.seed(second)
        want = {n: own[n] | _keys(first) | _keys(second) for n in mesh.nodes}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _keys(second) <= b.holdings():
            time.sleep(0.2)
        assert _keys(first) | _keys(second) <= b.holdings()
        c.start()
        c.wait_ready()
        seen = mesh.wait_until(want, timeout=60)
        assert seen == want, {n: len(want[n] - seen.get(n, set())) for n in want}
        for node in mesh.nodes.values():
            assert node.duplicates() == 0
            assert SQLiteStore(node.db, readonly=True).check_integrity() == []
        # The down peer was retried, and the errors were recorded then cleared by a good round.
        # (b's retries back off up to LoopTiming.max_backoff, so its next attempt may take that long.)
        deadline = time.monotonic() + 15
        while True:
            with SQLiteStore(b.db, readonly=True) as store:
                state = store.get_sync_state("c")
            if state.last_error is None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state.last_success > 0 and state.last_error is None, state
    finally:
        mesh.close()


def test_tampered_object_from_a_peer_is_refused_and_reported(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, ["a", "b"], [Link("a", "b")], {})
    a, b = mesh.nodes["a"], mesh.nodes["b"]
    try:
        a.start()
        a.wait_ready()
        with SQLiteStore(b.db, readonly=True) as store:
            credential = store.get_peer("a").credential  # what b presents to a
        signer = Signer(load_node_key(b.home), b.identity_id)
        good, bad = indicator("signed-good", "clear"), indicator("signed-bad", "clear")
        objects = [orjson.dumps(good), orjson.dumps(bad)]
        manifest = signer.manifest(objects)
        bad["name"] = "changed on the way"  # after signing: the signature no longer covers it
        body = b'{"objects":[' + b",".join([manifest, objects[0], orjson.dumps(bad)]) + b"]}"
        media = "application/taxii+json;version=2.1"
        response = requests.post(
            f"{a.url}collections/{a.collection_id}/objects/", data=body, timeout=30,
            headers={"Authorization": f"Bearer {credential}", "Accept": media, "Content-Type": media},
        )
        assert response.status_code == 202, response.text
        status = response.json()
        assert status["success_count"] == 1 and status["failure_count"] == 1
        assert status["failures"][0]["id"] == bad["id"]
        assert "signature" in status["failures"][0]["message"]
        held = a.holdings()
        assert (good["id"], good["modified"]) in held
        assert not any(object_id == bad["id"] for object_id, _ in held)
        # The manifest is not stored as intelligence.
        assert not any(object_id.startswith("x-threatmesh-batch-signature--") for object_id, _ in held)
        with SQLiteStore(a.db, readonly=True) as store:
            rejections = store.peer_rejections("b")
            receipts = store.provenance(good["id"])
        assert [r.object_id for r in rejections] == [bad["id"]]
        assert receipts and receipts[0].peer == "b" and receipts[0].verified

        # A manifest signed by some other key: every object is refused.
        impostor = Signer(load_node_key(a.home), "identity--impostor")
        other = indicator("impostor", "clear")
        raw = orjson.dumps(other)
        body = b'{"objects":[' + impostor.manifest([raw]) + b"," + raw + b"]}"
        response = requests.post(
            f"{a.url}collections/{a.collection_id}/objects/", data=body, timeout=30,
            headers={"Authorization": f"Bearer {credential}", "Accept": media, "Content-Type": media},
        )
        assert response.json()["success_count"] == 0
        assert not any(object_id == other["id"] for object_id, _ in a.holdings())
    finally:
        mesh.close()
