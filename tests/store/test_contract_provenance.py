"""Store contract: provenance receipts (which peer sent which version, when)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.store.conftest import C1, OpenStore, make_object
from threatmesh.store.protocol import Collection, ObjectQuery, ProvenanceRecord, Store
from threatmesh.store.sqlite import SQLiteStore


def _stored(store: Store, *versions: tuple[str, str]) -> None:
    """Receipts are kept for stored versions: store these first."""
    store.put_objects([make_object(i, v) for i, v in versions], collection_id=C1, source="test")


def _pk(store: Store, object_id: str, version: str) -> int:
    """The stored version's pk, as `PageRow.pk` names it."""
    (row,) = [r for r in store.query_rows(ObjectQuery(C1, ids=(object_id,), versions=("all",))).rows
              if r.version == version]
    return row.pk


def _held(store: Store, peer: str, *versions: tuple[str, str]) -> set[tuple[str, str]]:
    pks = {_pk(store, i, v): (i, v) for i, v in versions}
    return {pks[pk] for pk in store.held_pks(peer, list(pks))}


def test_receipts_are_kept_once_per_peer_and_read_back_in_order(store: Store) -> None:
    _stored(store, ("indicator--1", "v1"), ("indicator--1", "v2"))
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
    _stored(store, ("x--1", "v1"), ("x--1", "v2"), ("x--1", "v3"))
    store.record_provenance([ProvenanceRecord("x--1", "v1", "a", 1), ProvenanceRecord("x--1", "v1", "b", 2),
                             ProvenanceRecord("x--1", "v2", "c", 3)])
    store.mark_held_pks("d", [_pk(store, "x--1", "v1")], received=True)  # the sync engine's record counts too
    store.mark_held_pks("e", [_pk(store, "x--1", "v1")], received=False)  # holding is not sending
    many = [(f"y--{n}", "v") for n in range(1000)]
    found = store.senders_of([("x--1", "v1"), ("x--1", "v2"), ("x--1", "v3"), *many])
    assert found == {("x--1", "v1"): {"a", "b", "d"}, ("x--1", "v2"): {"c"}}


def test_receipts_by_the_pks_a_put_returned_equal_receipts_by_version(store: Store) -> None:
    versions = [(f"x--{n}", "v1") for n in range(5)] + [("x--0", "v2")]
    results = store.put_objects([make_object(i, v) for i, v in versions], collection_id=C1, source="test")
    assert [r.pk for r in results] == [_pk(store, i, v) for i, v in versions]
    again = store.put_objects([make_object("x--3", "v1")], collection_id=C1, source="test")  # unchanged
    assert again[0].pk == results[3].pk
    records = [ProvenanceRecord(i, v, "a", 10 + n, signer="identity--a", verified=True, path=("n1",))
               for n, (i, v) in enumerate(versions)]
    assert store.record_provenance(records[:3], pks=[r.pk for r in results[:3]]) == 3
    assert store.record_provenance(records[3:]) == 3
    assert store.record_provenance(records, pks=[r.pk for r in results]) == 0  # each peer's first is kept
    for i, v in versions:
        (kept,) = [r for r in store.provenance(i) if r.version == v]
        assert kept == records[versions.index((i, v))]
    # A pk the store does not hold keeps nothing; pks must match the records one to one.
    unknown = ProvenanceRecord("x--9", "v1", "b", 1)
    assert store.record_provenance([unknown], pks=[max(r.pk for r in results) + 100]) == 0
    with pytest.raises(ValueError):
        store.record_provenance(records[:2], pks=[results[0].pk])


def test_receipts_survive_reopening(open_store: OpenStore) -> None:
    s = open_store("p")
    s.add_collection(Collection(id=C1, title="c1"))
    _stored(s, ("x--1", "v1"))
    s.record_provenance([ProvenanceRecord("x--1", "v1", "a", 1)])
    s.close()
    assert [r.peer for r in open_store("p").provenance("x--1")] == ["a"]


def test_a_receipt_of_a_version_not_stored_is_not_kept(store: Store) -> None:
    _stored(store, ("x--1", "v1"))
    assert store.record_provenance([ProvenanceRecord("x--1", "v2", "a", 1), ProvenanceRecord("x--2", "v1", "a", 2),
                                    ProvenanceRecord("x--1", "v1", "a", 3)]) == 1
    assert [(r.version, r.received) for r in store.provenance("x--1")] == [("v1", 3)]
    assert store.provenance("x--2") == []


def test_receipts_of_a_store_from_before_0009_are_carried_over(tmp_path: Path) -> None:
    """Migration 0009 re-keys receipts by the stored version; every receipt of a stored
    version survives it with all its fields."""
    path = tmp_path / "old.sqlite"
    store = SQLiteStore(path)
    store.add_collection(Collection(id=C1, title="c1"))
    _stored(store, ("x--1", "v1"), ("x--1", "v2"), ("x--2", "v1"))
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE provenance; DELETE FROM migrations WHERE name = '0009_provenance_by_pk';"
        "CREATE TABLE provenance (id TEXT NOT NULL, version TEXT NOT NULL, peer TEXT NOT NULL,"
        " received INTEGER NOT NULL, signer TEXT NOT NULL, key_fingerprint TEXT NOT NULL, verified INTEGER NOT NULL,"
        " derived INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (id, version, peer)) WITHOUT ROWID;"
        "INSERT INTO provenance VALUES ('x--1', 'v1', 'a', 10, 'identity--a', 'ab', 1, 0, '[\"n1\", \"n2\"]'),"
        " ('x--1', 'v1', 'b', 11, '', '', 0, 0, '[]'), ('x--1', 'v2', 'a', 12, 'identity--a', 'ab', 1, 1, '[]'),"
        " ('x--2', 'v1', 'c', 13, '', '', 0, 0, '[]'), ('x--3', 'v1', 'c', 14, '', '', 0, 0, '[]');"
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.provenance("x--1") == [
            ProvenanceRecord("x--1", "v1", "a", 10, "identity--a", "ab", True, False, ("n1", "n2")),
            ProvenanceRecord("x--1", "v1", "b", 11),
            ProvenanceRecord("x--1", "v2", "a", 12, "identity--a", "ab", True, True),
        ]
        assert [r.peer for r in store.provenance("x--2")] == ["c"]
        assert store.provenance("x--3") == []  # never stored here: not carried over
        assert _held(store, "a", ("x--1", "v1"), ("x--1", "v2"), ("x--2", "v1")) == {("x--1", "v1"), ("x--1", "v2")}
    finally:
        store.close()


def test_holdings_of_a_store_from_before_0010_are_carried_over(tmp_path: Path) -> None:
    """Migration 0010 re-keys what peers hold by the stored version, keeping each row's fields."""
    path = tmp_path / "old.sqlite"
    store = SQLiteStore(path)
    store.add_collection(Collection(id=C1, title="c1"))
    _stored(store, ("x--1", "v1"), ("x--1", "v2"))
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE peer_holds; DELETE FROM migrations WHERE name = '0010_peer_holds_by_pk';"
        "CREATE TABLE peer_holds (peer TEXT NOT NULL, id TEXT NOT NULL, version TEXT NOT NULL, time INTEGER NOT NULL,"
        " received INTEGER NOT NULL, PRIMARY KEY (peer, id, version)) WITHOUT ROWID;"
        "INSERT INTO peer_holds VALUES ('a', 'x--1', 'v1', 10, 1), ('b', 'x--1', 'v1', 11, 0),"
        " ('b', 'x--1', 'v2', 12, 0), ('c', 'x--9', 'v1', 13, 1);"
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.received_from("x--1") == [("a", "v1", 10)]
        assert _held(store, "b", ("x--1", "v1"), ("x--1", "v2")) == {("x--1", "v1"), ("x--1", "v2")}
        assert _held(store, "a", ("x--1", "v2")) == set()
        assert store.senders_of([("x--1", "v1")]) == {("x--1", "v1"): {"a"}}
        assert store.received_from("x--9") == []  # never stored here: not carried over
    finally:
        store.close()
