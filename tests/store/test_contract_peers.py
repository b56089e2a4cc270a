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


def _pks(store: Store, pairs: list[tuple[str, str]]) -> list[int]:
    """The stored versions' pks (as `PageRow.pk`), in the order of `pairs`."""
    rows = store.query_rows(ObjectQuery(C1, versions=("all",))).rows
    pk = {(r.id, r.version): r.pk for r in rows}
    return [pk[p] for p in pairs]


def _stored(store: Store, count: int, *, first: int = 0, source: str = "test") -> list[tuple[str, str]]:
    pairs = [(f"indicator--{i:08d}-0000-4000-8000-000000000000", ts(i)) for i in range(first, first + count)]
    store.put_objects([make_object(i, v) for i, v in pairs], collection_id=C1, source=source)
    return pairs


def test_what_peers_hold(store: Store) -> None:
    pairs = _stored(store, 900)
    pks = _pks(store, pairs)
    assert len(set(pks)) == 900 and 0 not in pks
    store.mark_held_pks("east", pks[:600], received=True)
    store.mark_held_pks("east", pks[:10], received=False)  # already known: kept as it was
    store.mark_held_pks("west", pks[600:], received=False)
    assert store.held_pks("east", pks) == set(pks[:600])
    assert store.held_pks("west", pks[:700]) == set(pks[600:700])
    assert store.held_pks("north", pks) == set()
    assert store.held_pks("east", []) == set()
    assert [(p, v) for p, v, _ in store.received_from(pairs[0][0])] == [("east", ts(0))]
    assert store.received_from(pairs[700][0]) == []  # sent to west, not received from it
    store.mark_held_pks("west", [max(pks) + 1000], received=True)  # only stored versions count
    assert store.held_pks("west", [max(pks) + 1000]) == set()


def test_a_provenance_receipt_counts_as_held_and_received(store: Store) -> None:
    # The sync engine records what a peer sent as a receipt only (no peer_holds row).
    pairs = _stored(store, 500)  # receipts are kept for stored versions
    pks = _pks(store, pairs)
    store.record_provenance([ProvenanceRecord(i, v, "east", 100 + n) for n, (i, v) in enumerate(pairs[:450])])
    store.mark_held_pks("east", pks[440:460], received=False)  # overlaps the receipts
    assert store.held_pks("east", pks) == set(pks[:460])
    assert store.held_pks("west", pks) == set()
    assert store.received_from(pairs[0][0]) == [("east", ts(0), 100)]
    assert store.received_from(pairs[455][0]) == []  # accepted from here, not sent by east
    # Recorded both ways (a store written before receipts stood for holdings): listed once, first time.
    store.mark_held_pks("west", [pks[1]], received=True)
    store.record_provenance([ProvenanceRecord(pairs[1][0], pairs[1][1], "west", 5)])
    assert store.received_from(pairs[1][0]) == [("west", ts(1), 5), ("east", ts(1), 101)]


def test_rows_a_peer_holds_are_left_out_of_its_pages(store: Store) -> None:
    """`query_rows(not_held_by=PEER)`: what the peer sent here (first source or receipt) or
    is known to hold is left out; paging on `examined_to` returns the rest exactly once."""
    pairs = _stored(store, 100, source="peer:east") + _stored(store, 300, first=100)
    pks = _pks(store, pairs)
    store.record_provenance([ProvenanceRecord(i, v, "east", 1) for i, v in pairs[100:200]])
    store.mark_held_pks("east", pks[200:300], received=False)
    store.mark_held_pks("west", pks[300:310], received=False)
    every = store.query_rows(ObjectQuery(C1, versions=("all",))).rows
    assert [(r.id, r.version) for r in every] == pairs

    whole = store.query_rows(ObjectQuery(C1, versions=("all",)), not_held_by="east")
    assert [(r.id, r.version) for r in whole.rows] == pairs[300:]
    assert whole.more is False and whole.examined_to == every[-1].date_added
    # A peer that holds nothing gets every row, as without the filter.
    assert store.query_rows(ObjectQuery(C1, versions=("all",)), not_held_by="north").rows == every

    # Paged: a page that ends at its limit says how far it examined.
    seen: list[tuple[str, str]] = []
    after = None
    for _ in range(20):
        page = store.query_rows(ObjectQuery(C1, added_after=after, versions=("all",), limit=30), not_held_by="east")
        assert len(page.rows) <= 30
        seen += [(r.id, r.version) for r in page.rows]
        if page.rows and page.more:
            assert page.examined_to == page.rows[-1].date_added
        if not page.more:
            break
        after = page.examined_to
    assert seen == pairs[300:]

    # Another version of a held id is not held.
    newer = (pairs[250][0], ts(999))
    store.put_objects([make_object(*newer)], collection_id=C1, source="test")
    page = store.query_rows(ObjectQuery(C1, added_after=whole.examined_to, versions=("all",)), not_held_by="east")
    assert [(r.id, r.version) for r in page.rows] == [newer]
    # Past the end: nothing examined.
    empty = store.query_rows(ObjectQuery(C1, added_after=page.examined_to, versions=("all",)), not_held_by="east")
    assert (empty.rows, empty.more, empty.examined_to) == ((), False, None)


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
