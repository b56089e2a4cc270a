"""The federation part of the SQLite store: peers, sync cursors, what peers hold.

A mixin of `SQLiteStore` (kept apart so that `sqlite.py` stays readable); it
uses the store's one writer and its per-thread readers. Tables are created by
migration `0003_peers_and_sync`.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Sequence

import orjson

from threatmesh.errors import Conflict, NotFound
from threatmesh.store.protocol import Peer, PeerRejection, PeerSyncState

_PEER_COLUMNS = "name, url, credential, account, role, cleared_for, groups, pull, push, public_key, created"
_STATE_COLUMNS = ("peer, last_attempt, last_success, last_error, failures, sent, received, refused, failed, rejected,"
                  " bytes_sent, bytes_received")


# True when the stored version keyed `{pk}` is held by the peer named in the two `?`:
# it sent the version (a receipt) or is known to hold it. The one definition, for
# `held_pks` and for the pages a peer pulls (`SQLiteStore.query_rows(not_held_by=)`).
HELD_BY_PEER = (
    "(EXISTS (SELECT 1 FROM peer_holds h WHERE h.pk = {pk} AND h.peer = ?)"
    " OR EXISTS (SELECT 1 FROM provenance p WHERE p.pk = {pk} AND p.peer = ?))"
)


def _now_us() -> int:
    return time.time_ns() // 1000


def _tuple(text: str) -> tuple[str, ...]:
    return tuple(orjson.loads(text))


def _row_to_peer(row: Sequence[Any]) -> Peer:
    return Peer(
        name=row[0], url=row[1], credential=row[2], account=row[3], role=row[4],
        cleared_for=_tuple(row[5]), groups=_tuple(row[6]), pull=_tuple(row[7]), push=_tuple(row[8]),
        public_key=row[9], created=row[10],
    )


def _peer_values(peer: Peer) -> tuple[Any, ...]:
    return (
        peer.name, peer.url, peer.credential, peer.account, peer.role,
        orjson.dumps(list(peer.cleared_for)).decode(), orjson.dumps(list(peer.groups)).decode(),
        orjson.dumps(list(peer.pull)).decode(), orjson.dumps(list(peer.push)).decode(),
        peer.public_key, peer.created or _now_us(),
    )


class SQLitePeerTables:
    """Peer and sync methods of the Store protocol, for SQLiteStore."""

    # Provided by SQLiteStore (which comes first in the method resolution order).
    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    # -- peers -------------------------------------------------------------------

    def add_peer(self, peer: Peer) -> Peer:
        with self._writing() as conn:
            clash = conn.execute(
                "SELECT name FROM peers WHERE name = ? OR account = ?", (peer.name, peer.account)
            ).fetchone()
            if clash is not None:
                raise Conflict(f"peer {clash[0]!r} already has this name or account")
            values = _peer_values(peer)
            conn.execute(f"INSERT INTO peers ({_PEER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return replace(peer, created=values[-1])

    def get_peer(self, name: str) -> Peer:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {_PEER_COLUMNS} FROM peers WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no peer {name!r}")
        return _row_to_peer(row)

    def list_peers(self) -> list[Peer]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {_PEER_COLUMNS} FROM peers ORDER BY name").fetchall()
        return [_row_to_peer(r) for r in rows]

    def update_peer(self, peer: Peer) -> None:
        values = _peer_values(peer)
        with self._writing() as conn:
            changed = conn.execute(
                "UPDATE peers SET url = ?, credential = ?, account = ?, role = ?, cleared_for = ?, groups = ?,"
                " pull = ?, push = ?, public_key = ? WHERE name = ?",
                (*values[1:10], peer.name),
            ).rowcount
            if changed == 0:
                raise NotFound(f"no peer {peer.name!r}")

    def remove_peer(self, name: str) -> None:
        with self._writing() as conn:
            if conn.execute("DELETE FROM peers WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no peer {name!r}")
            conn.execute("DELETE FROM sync_cursors WHERE peer = ?", (name,))
            conn.execute("DELETE FROM sync_state WHERE peer = ?", (name,))
            # What it holds is kept: the provenance of what it sent stays readable.

    def peer_for_account(self, account: str) -> Peer | None:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {_PEER_COLUMNS} FROM peers WHERE account = ?", (account,)).fetchone()
        return None if row is None else _row_to_peer(row)

    # -- cursors -----------------------------------------------------------------

    def get_sync_cursor(self, peer: str, direction: str, collection: str) -> str | None:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT position FROM sync_cursors WHERE peer = ? AND direction = ? AND collection = ?",
                (peer, direction, collection),
            ).fetchone()
        return None if row is None else str(row[0])

    def set_sync_cursor(self, peer: str, direction: str, collection: str, position: str) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO sync_cursors (peer, direction, collection, position, updated) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (peer, direction, collection) DO UPDATE SET position = excluded.position,"
                " updated = excluded.updated",
                (peer, direction, collection, position, _now_us()),
            )

    # -- what peers hold ---------------------------------------------------------

    # What a peer holds is in two tables: `peer_holds` (what it accepted from this node,
    # and what it sent here before provenance was recorded), and `provenance`, whose
    # receipt of each version a peer sent is also the record that the peer holds it.
    # The sync engine writes a receipt only, not a second row for the same version.
    # Both tables are keyed by the stored version's pk (migrations 0009, 0010), so rows
    # append in the order versions were stored instead of landing at random places in
    # a large b-tree; a version the store does not hold is not recorded.

    def mark_held_pks(self, peer: str, pks: Sequence[int], *, received: bool) -> None:
        if not pks:
            return
        now = _now_us()
        with self._writing() as conn:
            # Keyed by the version's pk (migration 0010): the versions a push delivered, in the
            # order they were stored, append at the end of the table.
            conn.executemany(
                "INSERT INTO peer_holds (pk, peer, time, received) SELECT pk, ?, ?, ? FROM objects WHERE pk = ?"
                " ON CONFLICT (pk, peer) DO NOTHING",
                [(peer, now, int(received), pk) for pk in pks],
            )

    def held_pks(self, peer: str, pks: Sequence[int]) -> set[int]:
        if not pks:
            return set()
        with self._reading() as conn:
            # One JSON array for all of them (a bound parameter, however long).
            rows = conn.execute(
                "SELECT value FROM json_each(?) WHERE " + HELD_BY_PEER.format(pk="value"),
                (orjson.dumps(list(pks)).decode(), peer, peer),
            ).fetchall()
        return {r[0] for r in rows}

    def received_from(self, object_id: str) -> list[tuple[str, str, int]]:
        with self._reading() as conn:
            # A version recorded in both tables (stores written before receipts replaced
            # the sync engine's own row) counts once, at its first record.
            rows = conn.execute(
                "SELECT peer, version, min(time) AS first FROM ("
                " SELECT h.peer, o.version, h.time FROM objects o JOIN peer_holds h ON h.pk = o.pk"
                " WHERE o.id = ? AND h.received = 1"
                " UNION ALL SELECT p.peer, o.version, p.received FROM objects o JOIN provenance p ON p.pk = o.pk"
                " WHERE o.id = ?)"
                " GROUP BY peer, version ORDER BY first, peer",
                (object_id, object_id),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # -- sync health -------------------------------------------------------------

    def get_sync_state(self, peer: str) -> PeerSyncState:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM sync_state WHERE peer = ?", (peer,)).fetchone()
        return PeerSyncState(peer) if row is None else PeerSyncState(*row)

    def put_sync_state(self, state: PeerSyncState) -> None:
        with self._writing() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO sync_state ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (state.peer, state.last_attempt, state.last_success, state.last_error, state.failures,
                 state.sent, state.received, state.refused, state.failed, state.rejected, state.bytes_sent,
                 state.bytes_received),
            )

    def add_peer_rejection(self, rejection: PeerRejection) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO peer_rejections (peer, time, object_id, version, reason) VALUES (?, ?, ?, ?, ?)",
                (rejection.peer, rejection.time, rejection.object_id, rejection.version, rejection.reason),
            )

    def peer_rejections(self, peer: str | None = None, *, limit: int = 100) -> list[PeerRejection]:
        sql = "SELECT peer, time, object_id, version, reason FROM peer_rejections"
        params: list[Any] = []
        if peer is not None:
            sql += " WHERE peer = ?"
            params.append(peer)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [PeerRejection(*r) for r in rows]

    def last_date_added(self) -> int:
        with self._reading() as conn:
            row = conn.execute("SELECT last_date_added FROM clock WHERE singleton = 1").fetchone()
        return int(row[0]) if row else 0
