"""Store contract: peers, sync cursors, what peers hold, sync state, rejections.

Runs against every backend of tests/store/conftest.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from threatmesh.errors import Conflict, NotFound
from threatmesh.store.protocol import ObjectQuery, Peer, PeerRejection, PeerSyncState, ProvenanceRecord, Store

from .conftest import C1, OpenStore, make_object, ts


def _peer(name: str = "east", **changes: object) -> Peer:
    base = Peer(name=name, url=f"http://127.0.0.1:1/{name}/", account=f"peer:{name}", credential="tm_x",
                role="community", cleared_for=("amber",), groups=("g1", "g2"), pull=("default",), push=("c-1",))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_peer_round_trip_and_listing(store: Store) -> None:
    added = store.add_peer(_peer("west"))
    store.add_peer(_peer("east"))
    assert added.created > 0
    assert store.get_peer("west") == added
    assert [p.name for p in store.list_peers()] == ["east", "west"]
    assert store.peer_for_account("peer:east") == store.get_peer("east")
    assert store.peer_for_account("nobody") is None


def test_peer_names_and_accounts_are_unique(store: Store) -> None:
    store.add_peer(_peer("east"))
    with pytest.raises(Conflict):
        store.add_peer(_peer("east", account="peer:other"))
    with pytest.raises(Conflict):
        store.add_peer(_peer("other", account="peer:east"))


def test_update_and_remove_peer(store: Store) -> None:
    store.add_peer(_peer("east"))
    store.update_peer(replace(store.get_peer("east"), role="partner", cleared_for=(), credential="tm_new"))
    changed = store.get_peer("east")
    assert (changed.role, changed.cleared_for, changed.credential) == ("partner", (), "tm_new")
    store.set_sync_cursor("east", "pull", "default", "2024-01-01T00:00:00.000000Z")
    store.put_sync_state(PeerSyncState("east", last_attempt=5, failures=2))
    store.remove_peer("east")
    with pytest.raises(NotFound):
        store.get_peer("east")
    with pytest.raises(NotFound):
        store.update_peer(_peer("east"))
    with pytest.raises(NotFound):
        store.remove_peer("east")
    # Cursors and state went with it: a peer added again starts from the beginning.
    assert store.get_sync_cursor("east", "pull", "default") is None
    assert store.get_sync_state("east") == PeerSyncState("east")


def test_cursors_are_per_peer_direction_and_collection_and_survive_reopening(open_store: OpenStore) -> None:
    store = open_store("cursors")
    store.set_sync_cursor("east", "pull", "default", "A")
    store.set_sync_cursor("east", "push", "default", "100")
    store.set_sync_cursor("west", "pull", "default", "B")
    store.set_sync_cursor("east", "pull", "default", "C")  # replaces
    store.close()
    again = open_store("cursors")
    assert again.get_sync_cursor("east", "pull", "default") == "C"
    assert again.get_sync_cursor("east", "push", "default") == "100"
    assert again.get_sync_cursor("west", "pull", "default") == "B"
    assert again.get_sync_cursor("west", "push", "default") is None


def test_what_peers_hold(store: Store) -> None:
    pairs = [(f"indicator--{i:08d}-0000-4000-8000-000000000000", ts(i)) for i in range(900)]
    store.put_objects([make_object(i, v) for i, v in pairs], collection_id=C1, source="test")
    store.mark_held("east", pairs[:600], received=True)
    store.mark_held("east", pairs[:10], received=False)  # already known: kept as it was
    store.mark_held("west", pairs[600:], received=False)
    assert store.held_by("east", pairs) == set(pairs[:600])
    assert store.held_by("west", pairs[:700]) == set(pairs[600:700])
    assert store.held_by("east", [(pairs[0][0], ts(999))]) == set()  # another version of a held id
    assert [(p, v) for p, v, _ in store.received_from(pairs[0][0])] == [("east", ts(0))]
    assert store.received_from(pairs[700][0]) == []  # sent to west, not received from it
    store.mark_held("west", [("indicator--never-stored", ts(1))], received=True)  # only stored versions count
    assert store.received_from("indicator--never-stored") == []
    assert store.held_by("west", [("indicator--never-stored", ts(1))]) == set()


def test_a_provenance_receipt_counts_as_held_and_received(store: Store) -> None:
    # The sync engine records what a peer sent as a receipt only (no peer_holds row).
    pairs = [(f"indicator--{i:08d}-0000-4000-8000-000000000000", ts(i)) for i in range(500)]
    # Receipts are kept for stored versions.
    store.put_objects([make_object(i, v) for i, v in pairs], collection_id=C1, source="test")
    store.record_provenance([ProvenanceRecord(i, v, "east", 100 + n) for n, (i, v) in enumerate(pairs[:450])])
    store.mark_held("east", pairs[440:460], received=False)  # overlaps the receipts
    assert store.held_by("east", pairs) == set(pairs[:460])
    assert store.held_by("west", pairs) == set()
    assert store.held_by("east", [(pairs[0][0], ts(999))]) == set()  # another version of a held id
    assert store.received_from(pairs[0][0]) == [("east", ts(0), 100)]
    assert store.received_from(pairs[455][0]) == []  # accepted from here, not sent by east
    # Recorded both ways (a store written before receipts stood for holdings): listed once, first time.
    store.mark_held("west", [pairs[1]], received=True)
    store.record_provenance([ProvenanceRecord(pairs[1][0], pairs[1][1], "west", 5)])
    assert store.received_from(pairs[1][0]) == [("west", ts(1), 5), ("east", ts(1), 101)]


def test_holdings_by_pk_agree_with_holdings_by_version(store: Store, c1: str) -> None:
    pairs = [(f"indicator--{i:08d}-0000-4000-8000-000000000000", ts(i)) for i in range(600)]
    store.put_objects([make_object(i, v) for i, v in pairs], collection_id=c1, source="test")
    rows = store.query_rows(ObjectQuery(c1, versions=("all",))).rows
    pk = {(r.id, r.version): r.pk for r in rows}
    assert len(set(pk.values())) == 600 and 0 not in pk.values()
    store.mark_held_pks("east", [pk[p] for p in pairs[:300]], received=False)
    store.mark_held("east", pairs[250:350], received=False)  # overlaps: each kept once
    store.record_provenance([ProvenanceRecord(i, v, "east", 1) for i, v in pairs[500:520]])
    store.mark_held_pks("west", [pk[pairs[599]]], received=True)
    for peer in ("east", "west", "north"):
        by_version = store.held_by(peer, pairs)
        assert store.held_pks(peer, [pk[p] for p in pairs]) == {pk[p] for p in by_version}
    assert store.held_by("east", pairs) == set(pairs[:350]) | set(pairs[500:520])
    assert [(p, v) for p, v, _ in store.received_from(pairs[599][0])] == [("west", ts(599))]
    assert store.held_pks("east", []) == set()


def test_sync_state_and_rejections(store: Store) -> None:
    assert store.get_sync_state("east") == PeerSyncState("east")
    state = PeerSyncState("east", last_attempt=10, last_success=9, last_error="down", failures=3, sent=4,
                          received=5, refused=6, failed=7, rejected=8)
    store.put_sync_state(state)
    assert store.get_sync_state("east") == state
    for n in range(3):
        store.add_peer_rejection(PeerRejection("east", n, f"indicator--{n}", ts(n), "tampered"))
    store.add_peer_rejection(PeerRejection("west", 9, "indicator--w", ts(0), "invalid"))
    assert [r.object_id for r in store.peer_rejections("east")] == ["indicator--2", "indicator--1", "indicator--0"]
    assert len(store.peer_rejections()) == 4
    assert len(store.peer_rejections("east", limit=1)) == 1


def test_last_date_added_follows_every_write(store: Store) -> None:
    assert store.last_date_added() == 0
    store.put_objects([make_object("indicator--00000000-0000-4000-8000-000000000001")], collection_id=C1,
                      source="test")
    first = store.last_date_added()
    assert first > 0
    store.put_objects([make_object("indicator--00000000-0000-4000-8000-000000000002")], collection_id=C1,
                      source="test")
    assert store.last_date_added() > first
    (latest,) = store.get_versions("indicator--00000000-0000-4000-8000-000000000002")
    assert latest.date_added == store.last_date_added()
