"""The provenance part of the SQLite store: which peer sent which version, and when.

A receipt is also the record that its peer holds that version (`held_pks`,
`received_from` in sqlite_peers read it). Receipts are keyed by the stored
version's pk (migration 0009), so a receipt is kept for a stored version only.

A mixin of `SQLiteStore`, like `sqlite_peers`; the table is created by
migration `0004_provenance`.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Sequence

import orjson

from threatmesh.store.protocol import ProvenanceRecord

# Bound parameters per statement stay well under SQLite's limit.
_CHUNK = 400


_INSERT_RECEIPT = (
    "INSERT INTO provenance (pk, peer, received, signer, key_fingerprint, verified, derived, path)"
    " SELECT pk, ?, ?, ?, ?, ?, ?, ?"
)
_ONCE = " ON CONFLICT (pk, peer) DO NOTHING"


class SQLiteProvenanceTables:
    """Provenance methods of the Store protocol, for SQLiteStore."""

    # Provided by SQLiteStore.
    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def record_provenance(self, records: Sequence[ProvenanceRecord], pks: Sequence[int] | None = None) -> int:
        if not records:
            return 0
        if pks is not None and len(pks) != len(records):
            raise ValueError(f"{len(pks)} pks for {len(records)} receipts")
        with self._writing() as conn:
            before = conn.total_changes
            # Keyed by the version's pk (migration 0009): in the order the versions were
            # stored, the rows append at the end of the table. Either way a receipt is kept
            # only for a version the store holds.
            if pks is None:
                sql = _INSERT_RECEIPT + " FROM objects WHERE id = ? AND version = ?" + _ONCE
                keys: Sequence[tuple[Any, ...]] = [(r.object_id, r.version) for r in records]
            else:
                sql = _INSERT_RECEIPT + " FROM objects WHERE pk = ?" + _ONCE
                keys = [(pk,) for pk in pks]
            conn.executemany(sql, [
                (r.peer, r.received, r.signer, r.key_fingerprint, int(r.verified), int(r.derived),
                 orjson.dumps(list(r.path)).decode() if r.path else "[]", *key)
                for r, key in zip(records, keys)
            ])
            return conn.total_changes - before

    def provenance(self, object_id: str) -> list[ProvenanceRecord]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT o.id, o.version, p.peer, p.received, p.signer, p.key_fingerprint, p.verified, p.derived,"
                " p.path FROM objects o JOIN provenance p ON p.pk = o.pk WHERE o.id = ?"
                " ORDER BY p.received, o.version, p.peer",
                (object_id,),
            ).fetchall()
        return [
            ProvenanceRecord(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7]), tuple(orjson.loads(r[8])))
            for r in rows
        ]

    def senders_of(self, versions: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        wanted = set(versions)
        found: dict[tuple[str, str], set[str]] = {}
        ids = list(dict.fromkeys(object_id for object_id, _ in versions))
        with self._reading() as conn:
            # peer_holds (received = 1) is where the sync engine notes what a peer sent;
            # provenance adds receipts recorded with their signatures.
            for start in range(0, len(ids), _CHUNK):
                chunk = orjson.dumps(ids[start:start + _CHUNK]).decode()
                rows = conn.execute(
                    "SELECT o.id, o.version, p.peer FROM objects o JOIN provenance p ON p.pk = o.pk"
                    " WHERE o.id IN (SELECT value FROM json_each(?))"
                    " UNION SELECT o.id, o.version, h.peer FROM objects o JOIN peer_holds h ON h.pk = o.pk"
                    " WHERE h.received = 1 AND o.id IN (SELECT value FROM json_each(?))",
                    (chunk, chunk),
                ).fetchall()
                for object_id, version, peer in rows:
                    if (object_id, version) in wanted:
                        found.setdefault((object_id, version), set()).add(peer)
        return found
