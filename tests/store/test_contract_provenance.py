"""Store contract: provenance receipts (which peer sent which version, when)."""

from __future__ import annotations

from tests.store.conftest import OpenStore
from threatmesh.store.protocol import ProvenanceRecord, Store


def test_receipts_are_kept_once_per_peer_and_read_back_in_order(store: Store) -> None:
    first = ProvenanceRecord("indicator--1", "v1", "cert-a", 10, signer="identity--a", key_fingerprint="ab",
                             verified=True, path=("hospital-x", "isac"))
    assert store.record_provenance([first, ProvenanceRecord("indicator--1", "v1", "cert-b", 20)]) == 2
    # The same peer sending the same version again keeps its first receipt.
    assert store.record_provenance([ProvenanceRecord("indicator--1", "v1", "cert-a", 30, verified=False)]) == 0
    store.record_provenance([ProvenanceRecord("indicator--1", "v2", "cert-a", 40, derived=True)])
    receipts = store.provenance("indicator--1")
    assert [(r.version, r.peer, r.received) for r in receipts] == [("v1", "cert-a", 10), ("v1", "cert-b", 20),
                                                                   ("v2", "cert-a", 40)]
    assert receipts[0] == first and receipts[2].derived
    assert store.provenance("indicator--2") == []
    assert store.record_provenance([]) == 0


def test_senders_of_names_the_peers_per_version(store: Store) -> None:
    store.record_provenance([ProvenanceRecord("x--1", "v1", "a", 1), ProvenanceRecord("x--1", "v1", "b", 2),
                             ProvenanceRecord("x--1", "v2", "c", 3)])
    store.mark_held("d", [("x--1", "v1")], received=True)  # the sync engine's record counts too
    store.mark_held("e", [("x--1", "v1")], received=False)  # holding is not sending
    many = [(f"y--{n}", "v") for n in range(1000)]
    found = store.senders_of([("x--1", "v1"), ("x--1", "v2"), ("x--1", "v3"), *many])
    assert found == {("x--1", "v1"): {"a", "b", "d"}, ("x--1", "v2"): {"c"}}


def test_receipts_survive_reopening(open_store: OpenStore) -> None:
    s = open_store("p")
    s.record_provenance([ProvenanceRecord("x--1", "v1", "a", 1)])
    s.close()
    assert [r.peer for r in open_store("p").provenance("x--1")] == ["a"]
