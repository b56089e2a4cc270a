"""The SQLite Store: the embedded default, one file per node.

Durability and concurrency: the file is in WAL mode with synchronous=NORMAL,
so a killed process never loses a committed transaction nor leaves a broken
file (only a power cut may lose the last commits). One writer connection,
guarded by a lock, takes `BEGIN IMMEDIATE` for every write; reads use one
read-only connection per thread, so the HTTP server can read from its threads
while another process (the CLI) writes.

`put_objects` is set-based: one query fetches what is already stored for the
whole batch, the outcomes are decided in Python, and the rows go in with
`executemany`. The schema is described in `migrations.py`.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from threatmesh.errors import Conflict, NotFound, StoreError
from threatmesh.stix.model import ObjectIndex, StixObject, stricter_tlp
from threatmesh.store.migrations import apply_migrations, pending_migrations
from threatmesh.store.sqlite_facts import SQLiteFactTables
from threatmesh.store.sqlite_index import SQLiteIndexTail, derived_rows, index_tail
from threatmesh.store.sqlite_match import MATCH_KEY_INSERT, SQLiteMatchKeys, match_key_row
from threatmesh.store.sqlite_peers import HELD_BY_PEER, SQLitePeerTables
from threatmesh.store.sqlite_provenance import SQLiteProvenanceTables
from threatmesh.store.protocol import (
    HELD_WINDOW,
    Account,
    ApiRoot,
    AuditEntry,
    Collection,
    ObjectQuery,
    PutOutcome,
    PageRow,
    PutResult,
    QueryPage,
    RowPage,
    Rights,
    StatusDetail,
    StoredVersion,
    StoreStats,
    TaxiiStatus,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
STREAM_CHUNK = 500
# The audit writer's batching: at most this long, or this many entries, between writes.
AUDIT_FLUSH_S = 0.25
AUDIT_BATCH = 1000

# Columns read into a StoredVersion; `{added}` is the membership's date_added
# when reading through a collection, else the version's first date_added.
_VERSION_COLUMNS = (
    "o.id, o.type, o.version, o.spec_version, o.json, {added}, o.tlp, o.source,"
    " o.revoked, o.upgraded_from, o.is_latest"
)
_OBJECT_COLUMNS = _VERSION_COLUMNS.format(added="o.date_added")
_MEMBER_COLUMNS = _VERSION_COLUMNS.format(added="m.date_added")
# Columns read into a PageRow (query_rows), in its field order.
_ROW_COLUMNS = "m.date_added, o.id, o.type, o.version, o.spec_version, o.tlp, o.source, o.json, o.pk"


def _now_us() -> int:
    return time.time_ns() // 1000


def _row_to_version(row: Sequence[Any]) -> StoredVersion:
    return StoredVersion(
        id=row[0],
        type=row[1],
        version=row[2],
        spec_version=row[3],
        json=bytes(row[4]),
        date_added=row[5],
        tlp=row[6],
        source=row[7],
        revoked=bool(row[8]),
        upgraded_from=row[9],
        is_latest=bool(row[10]),
    )


def _row_to_collection(row: Sequence[Any]) -> Collection:
    return Collection(
        id=row[0],
        api_root=row[1],
        title=row[2],
        description=row[3],
        alias=row[4],
        public=bool(row[5]),
        media_types=tuple(orjson.loads(row[6])),
    )


def _row_to_account(row: Sequence[Any]) -> Account:
    return Account(
        name=row[0], key_hash=row[1], is_admin=bool(row[2]), revoked=bool(row[3]), created=row[4]
    )


def _same_content(stored: bytes, received: bytes) -> bool:
    """Equal JSON values; key order and whitespace do not count as a difference."""
    return stored == received or orjson.loads(stored) == orjson.loads(received)


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 query: every whitespace-separated word is a
    quoted phrase (inner quotes doubled), all of them required. Operators and
    stray quotes typed by the user are thereby plain text. None when no word has
    a letter or digit to search for."""
    phrases = [
        '"' + word.replace('"', '""') + '"'
        for word in text.split()
        if any(ch.isalnum() for ch in word)
    ]
    return " ".join(phrases) if phrases else None


def _json_list(values: Sequence[str]) -> str:
    """A JSON array bound as one parameter and expanded with json_each()."""
    return orjson.dumps(list(values)).decode()


@dataclass(slots=True)
class _Version:
    """A version touched by a batch: stored before, or new in this batch."""

    pk: int
    id: str
    version: str
    is_new: bool
    obj: StixObject | None = None  # content to write (new, or an in-place update)
    tlp: str | None = None
    date_added: int = 0
    was_latest: bool = False


@dataclass(slots=True)
class _Member:
    pk: int
    version: str
    date_added: int
    is_last: bool
    is_first: bool
    is_new: bool
    dirty: bool = False


class SQLiteStore(SQLiteIndexTail, SQLitePeerTables, SQLiteProvenanceTables, SQLiteFactTables, SQLiteMatchKeys):
    """A Store in one SQLite file (see `store.protocol.Store` for the contract)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._closed = False
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._last_put = time.monotonic()
        # Audit entries wait here and are written in batches by one background
        # thread (started on first use), so a request never waits for the write lock.
        self._audit_pending: list[tuple[int, str | None, str, str, int, int]] = []
        self._audit_lock = threading.Lock()
        self._audit_wakeup = threading.Event()
        self._audit_writer: threading.Thread | None = None
        self._audit_stopping = False
        try:
            if readonly:
                if not self.path.exists():
                    raise NotFound(f"no store at {self.path}")
                if pending_migrations(self._reader()):
                    raise StoreError(
                        f"the store at {self.path} needs migrations; open it once read-write"
                    )
            else:
                self._writer = self._connect(writable=True)
                apply_migrations(self._writer)
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open store at {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> SQLiteStore:
        return cls(path, readonly=readonly)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connections -----------------------------------------------------------

    def _connect(self, *, writable: bool) -> sqlite3.Connection:
        if writable:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            # WAL is a property of the file; it persists for every later connection.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise StoreError(f"cannot put {self.path} in WAL mode (got {mode})")
            # Checkpoint (copy the WAL into the file, with an fsync) every 64 MiB of WAL
            # rather than SQLite's 4 MiB: a bulk ingest then syncs 16 times less often
            # (bench/ingest.py: 2.7 -> 2.4 s for ATT&CK, close included).
            conn.execute("PRAGMA wal_autocheckpoint = 16384")
        else:
            uri = self.path.resolve().as_uri() + ("?mode=ro" if self.readonly else "?mode=rw")
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA query_only = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: enough for the indexes, small beside the data
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(writable=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader()
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so that the write
        lock is held from the start and reads inside it see the latest commit."""
        if self._closed:
            raise StoreError("the store is closed")
        if self._writer is None:
            raise StoreError(f"the store at {self.path} is open read-only")
        conn = self._writer
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"store is busy: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                raise Conflict(str(exc)) from exc
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"store write failed: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._stop_audit_writer()  # what is pending is written before the store closes
        self._closed = True
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        if self._writer is not None:
            with self._write_lock:
                # No `PRAGMA optimize` here: run on a young store it records statistics
                # of near-empty tables, and the planner then scans whole tables once
                # the store has grown. Without statistics SQLite trusts the indexes,
                # which is right for every query this store makes.
                self._writer.close()
                self._writer = None

    def check_integrity(self) -> list[str]:
        problems: list[str] = []
        self._index_current()
        with self._reading() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                problems.extend(f"integrity_check: {r[0]}" for r in rows)
            for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
                problems.append(f"foreign key: {table} row {rowid} points to a missing {parent}")
            problems.extend(self._model_problems(conn))
        if self._writer is not None:
            # FTS5 checks its index against its content through a special insert.
            with self._write_lock:
                try:
                    self._writer.execute("INSERT INTO object_fts (object_fts) VALUES ('integrity-check')")
                except sqlite3.DatabaseError as exc:
                    problems.append(f"full-text index: {exc}")
        return problems

    @staticmethod
    def _model_problems(conn: sqlite3.Connection) -> list[str]:
        """Invariants of this schema that SQLite cannot declare."""
        problems: list[str] = []
        for (object_id,) in conn.execute(
            "SELECT id FROM objects GROUP BY id HAVING sum(is_latest) != 1 LIMIT 20"
        ):
            problems.append(f"{object_id}: not exactly one latest version")
        for (object_id,) in conn.execute(
            "SELECT o.id FROM objects o WHERE o.is_latest = 1 AND EXISTS"
            " (SELECT 1 FROM objects p WHERE p.id = o.id AND p.version > o.version) LIMIT 20"
        ):
            problems.append(f"{object_id}: the latest flag is not on the greatest version")
        for collection_id, object_id in conn.execute(
            "SELECT m.collection_id, o.id FROM memberships m JOIN objects o ON o.pk = m.pk"
            " GROUP BY m.collection_id, o.id"
            " HAVING sum(m.is_last) != 1 OR sum(m.is_first) != 1 LIMIT 20"
        ):
            problems.append(f"{collection_id}/{object_id}: not exactly one first and one last version")
        (stale,) = conn.execute(
            "SELECT count(*) FROM object_fts f LEFT JOIN objects o ON o.pk = f.rowid"
            " WHERE o.pk IS NULL OR o.is_latest = 0"
        ).fetchone()
        if stale:
            problems.append(f"full-text index: {stale} rows for versions that are not the latest")
        (indexed,) = conn.execute("SELECT indexed_pk FROM index_state").fetchone()
        for table, column in (("observables", "pk"), ("match_keys", "pk"), ("object_fts", "rowid")):
            (ahead,) = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} > ?", (indexed,)).fetchone()
            if ahead:
                problems.append(f"{table}: {ahead} rows for versions above the index watermark {indexed}")
        (clock,) = conn.execute("SELECT last_date_added FROM clock").fetchone()
        (highest,) = conn.execute("SELECT coalesce(max(date_added), 0) FROM memberships").fetchone()
        if highest > clock:
            problems.append(f"clock {clock} is behind the highest date_added {highest}")
        return problems

    # -- node metadata ---------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- collections -----------------------------------------------------------

    def add_collection(self, collection: Collection) -> Collection:
        names = [collection.id] + ([collection.alias] if collection.alias else [])
        with self._writing() as conn:
            clash = conn.execute(
                "SELECT id FROM collections WHERE id IN (SELECT value FROM json_each(?))"
                " OR alias IN (SELECT value FROM json_each(?))",
                (_json_list(names), _json_list(names)),
            ).fetchone()
            if clash is not None:
                raise Conflict(f"collection {clash[0]} already uses the id or alias {' / '.join(names)}")
            conn.execute(
                "INSERT INTO api_roots (name, title, description, max_content_length)"
                " SELECT ?, ?, '', NULL WHERE NOT EXISTS (SELECT 1 FROM api_roots WHERE name = ?)",
                (collection.api_root, collection.api_root, collection.api_root),
            )
            conn.execute(
                "INSERT INTO collections (id, api_root, title, description, alias, public, media_types)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    collection.id,
                    collection.api_root,
                    collection.title,
                    collection.description,
                    collection.alias,
                    int(collection.public),
                    _json_list(collection.media_types),
                ),
            )
        return collection

    _COLLECTION_COLUMNS = "id, api_root, title, description, alias, public, media_types"

    def get_collection(self, id_or_alias: str) -> Collection:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {self._COLLECTION_COLUMNS} FROM collections WHERE id = ?", (id_or_alias,)
            ).fetchone() or conn.execute(
                f"SELECT {self._COLLECTION_COLUMNS} FROM collections WHERE alias = ?", (id_or_alias,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no collection with id or alias {id_or_alias!r}")
        return _row_to_collection(row)

    def list_collections(self, api_root: str | None = None) -> list[Collection]:
        sql = f"SELECT {self._COLLECTION_COLUMNS} FROM collections"
        params: tuple[str, ...] = ()
        if api_root is not None:
            sql += " WHERE api_root = ?"
            params = (api_root,)
        with self._reading() as conn:
            rows = conn.execute(sql + " ORDER BY title, id", params).fetchall()
        return [_row_to_collection(r) for r in rows]

    def _require_collection(self, conn: sqlite3.Connection, collection_id: str) -> None:
        if conn.execute("SELECT 1 FROM collections WHERE id = ?", (collection_id,)).fetchone() is None:
            raise NotFound(f"no collection {collection_id!r}")

    # -- accounts --------------------------------------------------------------

    _ACCOUNT_COLUMNS = "name, key_hash, is_admin, revoked, created"

    def add_account(self, account: Account) -> Account:
        if not account.created:
            account = Account(
                name=account.name,
                key_hash=account.key_hash,
                is_admin=account.is_admin,
                revoked=account.revoked,
                created=_now_us(),
            )
        with self._writing() as conn:
            clash = conn.execute(
                "SELECT name FROM accounts WHERE name = ? OR key_hash = ?", (account.name, account.key_hash)
            ).fetchone()
            if clash is not None:
                raise Conflict(f"account {clash[0]!r} already has this name or key")
            conn.execute(
                f"INSERT INTO accounts ({self._ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (account.name, account.key_hash, int(account.is_admin), int(account.revoked), account.created),
            )
        return account

    def account_by_key_hash(self, key_hash: str) -> Account | None:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        return None if row is None else _row_to_account(row)

    def list_accounts(self) -> list[Account]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts ORDER BY name").fetchall()
        return [_row_to_account(r) for r in rows]

    def revoke_account(self, name: str) -> None:
        with self._writing() as conn:
            if conn.execute("UPDATE accounts SET revoked = 1 WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no account {name!r}")

    # -- objects: writing ------------------------------------------------------

    def put_objects(
        self,
        objects: Sequence[StixObject],
        *,
        collection_id: str,
        source: str,
        tlp: str | None = None,
        defer_index: bool = False,
    ) -> list[PutResult]:
        self._last_put = time.monotonic()
        with self._writing() as conn:
            self._require_collection(conn, collection_id)
            if not objects:
                return []
            return _BatchWriter(conn, collection_id, source, tlp).write(objects, defer_index=defer_index)

    # -- objects: reading ------------------------------------------------------

    def get_versions(self, object_id: str, collection_id: str | None = None) -> list[StoredVersion]:
        with self._reading() as conn:
            if collection_id is None:
                rows = conn.execute(
                    f"SELECT {_OBJECT_COLUMNS} FROM objects o WHERE o.id = ? ORDER BY o.version",
                    (object_id,),
                ).fetchall()
            else:
                self._require_collection(conn, collection_id)
                rows = conn.execute(
                    f"SELECT {_MEMBER_COLUMNS} FROM objects o JOIN memberships m ON m.pk = o.pk"
                    " WHERE o.id = ? AND m.collection_id = ? ORDER BY o.version",
                    (object_id, collection_id),
                ).fetchall()
        return [_row_to_version(r) for r in rows]

    def get_latest(self, object_id: str) -> StoredVersion | None:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM objects o WHERE o.id = ? AND o.is_latest = 1", (object_id,)
            ).fetchone()
        return None if row is None else _row_to_version(row)

    def query(self, query: ObjectQuery) -> QueryPage:
        """TAXII 2.1 §3.4.2 filtering of one collection: every filter narrows the
        result (AND); the values of one filter widen it (OR). `versions` selects,
        per id, the newest ('last') or oldest ('first') version among the
        collection's members, every version ('all'), or the named versions.
        Results are ordered by date_added; `added_after` is exclusive."""
        page = self._query_rows(query, _MEMBER_COLUMNS)
        return QueryPage(items=tuple(_row_to_version(r) for r in page[0]), more=page[1])

    def query_rows(self, query: ObjectQuery, *, not_held_by: str | None = None) -> RowPage:
        if not_held_by is not None:
            return self._query_unheld_rows(query, not_held_by)
        rows, more = self._query_rows(query, _ROW_COLUMNS)
        # tuple.__new__ straight from map: a page is built in C (PageRow._make is Python, per row).
        page = tuple(map(partial(tuple.__new__, PageRow), rows))
        return RowPage(rows=page, more=more, examined_to=page[-1].date_added if page else None)

    def _query_unheld_rows(self, query: ObjectQuery, peer: str) -> RowPage:
        # The window first: at most HELD_WINDOW memberships past added_after, up to `bound`.
        # Memberships only ever join (or move) past the newest date_added, so what commits
        # between this read and the next is past `bound` and left to the next page.
        after = query.added_after if query.added_after is not None else -1
        with self._reading() as conn:
            self._require_collection(conn, query.collection_id)
            edge = conn.execute(
                "SELECT date_added FROM memberships WHERE collection_id = ? AND date_added > ?"
                " ORDER BY date_added LIMIT 2 OFFSET ?",
                (query.collection_id, after, HELD_WINDOW - 1),
            ).fetchall()
            if edge:
                bound, beyond = edge[0][0], len(edge) > 1
            else:
                (bound,) = conn.execute(
                    "SELECT max(date_added) FROM memberships WHERE collection_id = ? AND date_added > ?",
                    (query.collection_id, after),
                ).fetchone()
                beyond = False
        if bound is None:
            return RowPage(rows=(), more=False, examined_to=None)
        # Left out in SQL, each by a primary-key probe, so that their JSON is never read:
        # most of what a peer's pull examines in a mesh is what it already has.
        unheld = "o.source != ? AND NOT " + HELD_BY_PEER.format(pk="o.pk")
        rows, more = self._query_rows(query, _ROW_COLUMNS, upto=bound, also=(unheld, (f"peer:{peer}", peer, peer)))
        page = tuple(map(partial(tuple.__new__, PageRow), rows))
        if more:
            return RowPage(rows=page, more=True, examined_to=page[-1].date_added)
        return RowPage(rows=page, more=beyond, examined_to=bound)

    def _query_rows(
        self, query: ObjectQuery, columns: str, *, upto: int | None = None,
        also: tuple[str, tuple[Any, ...]] | None = None,
    ) -> tuple[list[Any], bool]:
        # With ids named, start from the objects' id index: the unary + keeps the
        # planner off the (collection_id, date_added) index, which it would
        # otherwise walk in order through the whole collection to avoid a sort.
        where = ["+m.collection_id = ?" if query.ids else "m.collection_id = ?"]
        params: list[Any] = [query.collection_id]
        if query.added_after is not None:
            where.append("m.date_added > ?")
            params.append(query.added_after)
        if upto is not None:
            where.append("m.date_added <= ?")
            params.append(upto)
        for column, values in (
            ("o.id", query.ids),
            ("o.type", query.types),
            ("o.spec_version", query.spec_versions),
        ):
            if values:
                where.append(f"{column} IN (SELECT value FROM json_each(?))")
                params.append(_json_list(values))
        versions = query.versions or ("last",)
        if "all" not in versions:
            alternatives: list[str] = []
            if "last" in versions:
                alternatives.append("m.is_last = 1")
            if "first" in versions:
                alternatives.append("m.is_first = 1")
            named = [v for v in versions if v not in ("last", "first")]
            if named:
                alternatives.append("o.version IN (SELECT value FROM json_each(?))")
                params.append(_json_list(named))
            where.append("(" + " OR ".join(alternatives) + ")")
        if also is not None:
            where.append(also[0])
            params.extend(also[1])
        sql = (
            f"SELECT {columns} FROM memberships m JOIN objects o ON o.pk = m.pk"
            f" WHERE {' AND '.join(where)} ORDER BY m.date_added"
        )
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(max(query.limit, 0) + 1)
        with self._reading() as conn:
            self._require_collection(conn, query.collection_id)
            rows = conn.execute(sql, params).fetchall()
        more = query.limit is not None and len(rows) > max(query.limit, 0)
        if more:
            rows = rows[: max(query.limit or 0, 0)]
        return rows, more

    def iter_objects(
        self, collection_id: str | None = None, *, all_versions: bool = False
    ) -> Iterator[StoredVersion]:
        if collection_id is None:
            sql = f"SELECT {_OBJECT_COLUMNS} FROM objects o"
            sql += " ORDER BY o.pk" if all_versions else " WHERE o.is_latest = 1 ORDER BY o.pk"
            params: tuple[str, ...] = ()
        else:
            sql = f"SELECT {_MEMBER_COLUMNS} FROM memberships m JOIN objects o ON o.pk = m.pk"
            sql += " WHERE m.collection_id = ?"
            sql += " ORDER BY m.date_added" if all_versions else " AND m.is_last = 1 ORDER BY m.date_added"
            params = (collection_id,)
        return self._stream(sql, params, collection_id)

    def _stream(
        self, sql: str, params: tuple[str, ...], collection_id: str | None
    ) -> Iterator[StoredVersion]:
        with self._reading() as conn:
            if collection_id is not None:
                self._require_collection(conn, collection_id)
            # A cursor of its own: the statement (one read snapshot) lives as long as the iteration.
            cursor = conn.execute(sql, params)
        try:
            while True:
                try:
                    rows = cursor.fetchmany(STREAM_CHUNK)
                except sqlite3.Error as exc:
                    raise StoreError(f"store read failed: {exc}") from exc
                if not rows:
                    return
                for row in rows:
                    yield _row_to_version(row)
        finally:
            cursor.close()

    def search(self, text: str, *, limit: int = 50) -> list[StoredVersion]:
        match = fts_query(text)
        if match is None or limit <= 0:
            return []
        self._index_current()
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM object_fts f JOIN objects o ON o.pk = f.rowid"
                " WHERE object_fts MATCH ? AND o.is_latest = 1 ORDER BY f.rank, o.pk LIMIT ?",
                (match, limit),
            ).fetchall()
        return [_row_to_version(r) for r in rows]

    def find_observable(self, kind: str, value: str) -> list[StoredVersion]:
        self._index_current()
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM objects o WHERE o.is_latest = 1 AND o.pk IN"
                " (SELECT pk FROM observables WHERE kind = ? AND value = ?) ORDER BY o.pk",
                (kind, value),
            ).fetchall()
        return [_row_to_version(r) for r in rows]

    def related(self, object_id: str) -> list[tuple[str, str]]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT r.path, r.target FROM refs r JOIN objects o ON o.pk = r.pk"
                " WHERE o.id = ? AND o.is_latest = 1"
                " UNION"
                " SELECT r.path, o.id FROM refs r JOIN objects o ON o.pk = r.pk"
                " WHERE r.target = ? AND o.is_latest = 1"
                # created_by_ref is kept in its own column (see _flush), not in refs.
                " UNION"
                " SELECT 'created_by_ref', o.created_by_ref FROM objects o"
                " WHERE o.id = ? AND o.is_latest = 1 AND o.created_by_ref IS NOT NULL"
                " UNION"
                " SELECT 'created_by_ref', o.id FROM objects o"
                " WHERE o.created_by_ref = ? AND o.is_latest = 1"
                " ORDER BY 1, 2",
                (object_id, object_id, object_id, object_id),
            ).fetchall()
        return [(str(path), str(other)) for path, other in rows]

    def stats(self) -> StoreStats:
        with self._reading() as conn:
            (versions,) = conn.execute("SELECT count(*) FROM objects").fetchone()
            by_type = dict(
                conn.execute("SELECT type, count(*) FROM objects WHERE is_latest = 1 GROUP BY type").fetchall()
            )
            by_tlp = {
                (tlp if tlp is not None else "unmarked"): n
                for tlp, n in conn.execute(
                    "SELECT tlp, count(*) FROM objects WHERE is_latest = 1 GROUP BY tlp"
                )
            }
            by_collection = {cid: 0 for (cid,) in conn.execute("SELECT id FROM collections")}
            # Exactly one member version per id and collection is the last one.
            by_collection.update(
                conn.execute(
                    "SELECT collection_id, count(*) FROM memberships WHERE is_last = 1 GROUP BY collection_id"
                ).fetchall()
            )
            (page_count,) = conn.execute("PRAGMA page_count").fetchone()
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        return StoreStats(
            objects=sum(by_type.values()),
            versions=versions,
            by_type=by_type,
            by_tlp=by_tlp,
            by_collection=by_collection,
            size_bytes=page_count * page_size,
        )

    # -- TAXII API roots -------------------------------------------------------

    _API_ROOT_COLUMNS = "name, title, description, max_content_length"

    def add_api_root(self, root: ApiRoot) -> ApiRoot:
        with self._writing() as conn:
            if conn.execute("SELECT 1 FROM api_roots WHERE name = ?", (root.name,)).fetchone():
                raise Conflict(f"API root {root.name!r} already exists")
            conn.execute(
                f"INSERT INTO api_roots ({self._API_ROOT_COLUMNS}) VALUES (?, ?, ?, ?)",
                (root.name, root.title, root.description, root.max_content_length),
            )
        return root

    def get_api_root(self, name: str) -> ApiRoot:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {self._API_ROOT_COLUMNS} FROM api_roots WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no API root {name!r}")
        return ApiRoot(row[0], row[1], row[2], row[3])

    def list_api_roots(self) -> list[ApiRoot]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {self._API_ROOT_COLUMNS} FROM api_roots ORDER BY name").fetchall()
        return [ApiRoot(r[0], r[1], r[2], r[3]) for r in rows]

    # -- rights ----------------------------------------------------------------

    def grant(self, account: str, collection_id: str, *, read: bool, write: bool) -> None:
        with self._writing() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE name = ?", (account,)).fetchone() is None:
                raise NotFound(f"no account {account!r}")
            self._require_collection(conn, collection_id)
            conn.execute(
                "DELETE FROM collection_rights WHERE account = ? AND collection_id = ?", (account, collection_id)
            )
            if read or write:
                conn.execute(
                    "INSERT INTO collection_rights (account, collection_id, can_read, can_write)"
                    " VALUES (?, ?, ?, ?)",
                    (account, collection_id, int(read), int(write)),
                )

    def rights(self, account: str, collection_id: str) -> Rights:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT can_read, can_write FROM collection_rights WHERE account = ? AND collection_id = ?",
                (account, collection_id),
            ).fetchone()
        return Rights() if row is None else Rights(read=bool(row[0]), write=bool(row[1]))

    # -- TAXII status resources ------------------------------------------------

    def put_status(self, status: TaxiiStatus) -> None:
        def rows(details: tuple[StatusDetail, ...]) -> list[list[str | None]]:
            return [[d.id, d.version, d.message] for d in details]

        body = orjson.dumps(
            {"successes": rows(status.successes), "failures": rows(status.failures), "pendings": rows(status.pendings)}
        )
        with self._writing() as conn:
            conn.execute("DELETE FROM taxii_statuses WHERE id = ?", (status.id,))
            conn.execute(
                "INSERT INTO taxii_statuses (id, api_root, account, complete, request_timestamp, details)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (status.id, status.api_root, status.account, int(status.complete), status.request_timestamp, body),
            )

    def get_status(self, status_id: str) -> TaxiiStatus:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT id, api_root, account, complete, request_timestamp, details FROM taxii_statuses WHERE id = ?",
                (status_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no status {status_id!r}")
        details = orjson.loads(row[5])

        def parsed(name: str) -> tuple[StatusDetail, ...]:
            return tuple(StatusDetail(d[0], d[1], d[2]) for d in details.get(name, []))

        return TaxiiStatus(
            id=row[0], api_root=row[1], account=row[2], complete=bool(row[3]), request_timestamp=row[4],
            successes=parsed("successes"), failures=parsed("failures"), pendings=parsed("pendings"),
        )

    def purge_statuses(self, *, older_than: int) -> int:
        with self._writing() as conn:
            return int(
                conn.execute("DELETE FROM taxii_statuses WHERE request_timestamp < ?", (older_than,)).rowcount
            )

    # -- audit log -------------------------------------------------------------

    def audit(self, account: str | None, method: str, endpoint: str, status: int, objects: int) -> None:
        """Queued, stamped now, and written within AUDIT_FLUSH_S by the audit writer thread
        (at once when AUDIT_BATCH entries wait); `audit_log` and `close` write what is queued
        first. A crash of the process loses at most the last AUDIT_FLUSH_S of entries."""
        if self._closed:
            raise StoreError("the store is closed")
        with self._audit_lock:
            self._audit_pending.append((_now_us(), account, method, endpoint, status, objects))
            pending = len(self._audit_pending)
            if self._audit_writer is None:
                self._audit_writer = threading.Thread(target=self._audit_loop, name="audit-writer", daemon=True)
                self._audit_writer.start()
        if pending >= AUDIT_BATCH:
            self._audit_wakeup.set()

    def _audit_loop(self) -> None:
        while not self._closed:
            self._audit_wakeup.wait(AUDIT_FLUSH_S)
            self._audit_wakeup.clear()
            try:
                self.flush_audit()
            except StoreError:  # seen, not fatal: the entries stay queued for the next round
                log.exception("cannot write the audit log")
            if self._audit_stopping:
                return

    def flush_audit(self) -> None:
        """Write the queued audit entries in one transaction."""
        with self._audit_lock:
            rows, self._audit_pending = self._audit_pending, []
        if not rows:
            return
        try:
            with self._writing() as conn:
                conn.executemany(
                    "INSERT INTO audit_log (time, account, method, endpoint, status, objects)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except BaseException:
            with self._audit_lock:
                self._audit_pending[:0] = rows
            raise

    def _stop_audit_writer(self) -> None:
        self._audit_stopping = True
        writer = self._audit_writer
        if writer is not None:
            self._audit_wakeup.set()
            writer.join(30)
        if self._writer is not None:
            try:
                self.flush_audit()
            except StoreError:
                log.exception("cannot write the audit log before closing")

    def audit_log(
        self, *, account: str | None = None, since: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        if account is not None:
            where.append("account = ?")
            params.append(account)
        if since is not None:
            where.append("time > ?")
            params.append(since)
        if self._writer is not None:
            self.flush_audit()
        sql = "SELECT time, account, method, endpoint, status, objects FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(max(limit, 0))
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    # -- deleting from a collection --------------------------------------------

    def delete_object(
        self,
        collection_id: str,
        object_id: str,
        versions: Sequence[str] = ("all",),
        *,
        spec_versions: Sequence[str] = (),
    ) -> int:
        wanted = set(versions) or {"all"}
        with self._writing() as conn:
            self._require_collection(conn, collection_id)
            members = conn.execute(
                "SELECT m.pk, o.version, o.spec_version, m.is_last, m.is_first"
                " FROM memberships m JOIN objects o ON o.pk = m.pk WHERE m.collection_id = ? AND o.id = ?",
                (collection_id, object_id),
            ).fetchall()
            doomed = [
                pk
                for pk, version, spec_version, is_last, is_first in members
                if (not spec_versions or spec_version in spec_versions)
                and (
                    "all" in wanted
                    or version in wanted
                    or ("last" in wanted and is_last)
                    or ("first" in wanted and is_first)
                )
            ]
            if not doomed:
                return 0
            conn.executemany(
                "DELETE FROM memberships WHERE collection_id = ? AND pk = ?", [(collection_id, pk) for pk in doomed]
            )
            remaining = [(pk, version) for pk, version, *_ in members if pk not in set(doomed)]
            if remaining:
                last = max(version for _, version in remaining)
                first = min(version for _, version in remaining)
                conn.executemany(
                    "UPDATE memberships SET is_last = ?, is_first = ? WHERE collection_id = ? AND pk = ?",
                    [(int(v == last), int(v == first), collection_id, pk) for pk, v in remaining],
                )
        return len(doomed)


_INSERT_OBJECT = (
    "INSERT INTO objects (pk, id, version, type, spec_version, json, tlp, source, revoked, upgraded_from,"
    " created_by_ref, date_added, is_latest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MEMBER = "INSERT INTO memberships (collection_id, pk, date_added, is_last, is_first) VALUES (?, ?, ?, ?, ?)"


class _IndexRows:
    """The refs, markings, observables and text rows of the versions a batch writes."""

    __slots__ = ("refs", "markings", "observables", "texts")

    def __init__(self) -> None:
        self.refs: list[tuple[int, str, str]] = []
        self.markings: list[tuple[int, str]] = []
        self.observables: list[tuple[int, str, str]] = []
        self.texts: list[tuple[int, str]] = []

    def add(self, pk: int, index: ObjectIndex, is_latest: bool, *, derived: bool = True) -> None:
        # Every version of every batch passes here: lists of one entry (an indicator's one
        # marking, one observable) are appended as they are, without a generator and a dedup.
        if index.refs:
            # created_by_ref has its own indexed column on objects; a refs row would repeat it.
            self.refs.extend(
                (pk, path, target) for path, target in dict.fromkeys(index.refs) if path != "created_by_ref"
            )
        if len(index.markings) == 1:
            self.markings.append((pk, index.markings[0]))
        elif index.markings:
            self.markings.extend((pk, m) for m in dict.fromkeys(index.markings))
        if derived:  # the rows a deferred batch leaves to sqlite_index.index_tail
            derived_rows(pk, is_latest, index.text, index.observables, self.observables, self.texts)

    def insert_refs(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO refs (pk, path, target) VALUES (?, ?, ?)", self.refs)
        conn.executemany("INSERT INTO markings (pk, marking_id) VALUES (?, ?)", self.markings)
        conn.executemany("INSERT INTO observables (pk, kind, value) VALUES (?, ?, ?)", self.observables)

    def insert_text(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO object_fts (rowid, body) VALUES (?, ?)", self.texts)


class _BatchWriter:
    """The work of one `put_objects` call, inside its write transaction."""

    def __init__(self, conn: sqlite3.Connection, collection_id: str, source: str, tlp: str | None) -> None:
        self.conn = conn
        self.collection_id = collection_id
        self.source = source
        self.tlp = tlp
        self.versions: dict[tuple[str, str], _Version] = {}
        self.latest: dict[str, str] = {}  # id -> greatest version key, stored or in this batch
        self.members: dict[str, dict[int, _Member]] = {}  # id -> pk -> membership in the collection
        self.touched_members: set[str] = set()
        self.clock, self.indexed_pk = conn.execute(
            "SELECT last_date_added, (SELECT indexed_pk FROM index_state) FROM clock"
        ).fetchone()
        self.now = _now_us()
        (self.next_pk,) = conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM objects").fetchone()
        # Versions with a greater pk get no full-text, observable or match-key rows here:
        # a deferred write leaves them to sqlite_index.index_tail.
        self.index_upto: int = sys.maxsize

    def _tick(self) -> int:
        """The next date_added: wall-clock µs, but always past the last one handed out."""
        self.clock = max(self.now, self.clock + 1)
        return int(self.clock)

    def _load_stored(self, objects: Sequence[StixObject], ids: list[str]) -> None:
        hits: list[_Version] = []
        wanted = {(obj.id, obj.version) for obj in objects}
        self.stored_json: dict[int, bytes] = {}
        for pk, object_id, version, is_latest, date_added, is_last, is_first in self.conn.execute(
            "SELECT o.pk, o.id, o.version, o.is_latest, m.date_added, m.is_last, m.is_first"
            " FROM objects o LEFT JOIN memberships m ON m.pk = o.pk AND m.collection_id = ?"
            " WHERE o.id IN (SELECT value FROM json_each(?))",
            (self.collection_id, _json_list(ids)),
        ):
            stored = _Version(pk, object_id, version, is_new=False, was_latest=bool(is_latest))
            self.versions[(object_id, version)] = stored
            if is_latest:
                self.latest[object_id] = version
            if date_added is not None:
                self.members.setdefault(object_id, {})[pk] = _Member(
                    pk, version, date_added, bool(is_last), bool(is_first), is_new=False
                )
            if (object_id, version) in wanted:
                hits.append(stored)
        if hits:
            pks = orjson.dumps([v.pk for v in hits]).decode()
            for pk, json in self.conn.execute(
                "SELECT pk, json FROM objects WHERE pk IN (SELECT value FROM json_each(?))", (pks,)
            ):
                self.stored_json[pk] = bytes(json)

    def _join(self, version: _Version) -> None:
        """Make `version` a member of the collection (or re-stamp it if it is one)."""
        group = self.members.setdefault(version.id, {})
        member = group.get(version.pk)
        if member is None:
            group[version.pk] = _Member(version.pk, version.version, self._tick(), False, False, is_new=True)
            self.touched_members.add(version.id)
        else:
            member.date_added = self._tick()
            member.dirty = True

    def write(self, objects: Sequence[StixObject], *, defer_index: bool = False) -> list[PutResult]:
        ids = list(dict.fromkeys(obj.id for obj in objects))
        self._load_stored(objects, ids)
        all_new = not self.versions and len(ids) == len(objects)
        if defer_index:
            # New versions get new pks, the store's greatest: they join the tail (sqlite_index).
            # Versions already indexed (superseded, rewritten) keep their rows up to date here.
            self.index_upto = self.indexed_pk
        elif self.indexed_pk < self.next_pk - 1:
            index_tail(self.conn, self.next_pk - 1 - self.indexed_pk)
        results = self._write_all_new(objects) if all_new else self._write_any(objects)
        if not defer_index and self.next_pk - 1 > self.indexed_pk:
            self.conn.execute("UPDATE index_state SET indexed_pk = ?", (self.next_pk - 1,))
        return results

    def _write_any(self, objects: Sequence[StixObject]) -> list[PutResult]:
        results: list[PutResult] = []
        for obj in objects:
            key = (obj.id, obj.version)
            tlp = stricter_tlp(obj.tlp, self.tlp)
            known = self.versions.get(key)
            if known is None:
                previous = self.latest.get(obj.id)
                if previous is None:
                    outcome = PutOutcome.NEW
                elif obj.version > previous:
                    outcome = PutOutcome.UPDATED
                else:
                    outcome = PutOutcome.OLDER
                if previous is None or obj.version > previous:
                    self.latest[obj.id] = obj.version
                new = _Version(self.next_pk, obj.id, obj.version, is_new=True, obj=obj, tlp=tlp)
                self.next_pk += 1
                self.versions[key] = new
                self._join(new)
                new.date_added = self.members[obj.id][new.pk].date_added
                results.append(PutResult(obj.id, obj.version, outcome, pk=new.pk))
                continue
            current = known.obj.json if known.obj is not None else self.stored_json[known.pk]
            same = _same_content(current, obj.json)
            if obj.version == "" and not same:
                # Unversioned objects (SCOs) have one row whose content is replaced;
                # the re-stamped membership lets TAXII pollers of this collection see it.
                known.obj = obj
                known.tlp = tlp
                self._join(known)
                results.append(PutResult(obj.id, obj.version, PutOutcome.UPDATED, pk=known.pk))
                continue
            if known.pk not in self.members.get(obj.id, {}):
                self._join(known)
            results.append(PutResult(obj.id, obj.version, PutOutcome.UNCHANGED, content_differs=not same, pk=known.pk))
        self._flush()
        return results

    def _flush(self) -> None:
        conn = self.conn
        new_rows: list[tuple[Any, ...]] = []
        match_keys: list[tuple[Any, ...]] = []
        rewritten: list[_Version] = []
        for v in self.versions.values():
            if v.is_new:
                assert v.obj is not None
                o = v.obj
                is_latest = self.latest[o.id] == o.version
                new_rows.append(
                    (
                        v.pk, o.id, o.version, o.type, o.spec_version, o.json, v.tlp, self.source,
                        int(o.revoked), o.upgraded_from, o.created_by_ref, v.date_added, int(is_latest),
                    )
                )
                if o.type == "indicator" and v.pk <= self.index_upto:
                    match_keys.append(match_key_row(v.pk, o.data, is_latest, o.revoked))
            elif v.obj is not None:
                rewritten.append(v)
        conn.executemany(_INSERT_OBJECT, new_rows)
        conn.executemany(MATCH_KEY_INSERT, match_keys)
        superseded = [
            (v.pk,) for v in self.versions.values() if v.was_latest and self.latest[v.id] != v.version
        ]
        if superseded:
            conn.executemany("UPDATE objects SET is_latest = 0 WHERE pk = ?", superseded)
            conn.executemany("DELETE FROM object_fts WHERE rowid = ?", superseded)
        if rewritten:
            self._rewrite_in_place(rewritten)

        rows = _IndexRows()
        for v in self.versions.values():
            if v.obj is not None:
                rows.add(v.pk, v.obj.index, self.latest[v.id] == v.version, derived=v.pk <= self.index_upto)
        rows.insert_refs(conn)
        self._flush_memberships()
        conn.execute("UPDATE clock SET last_date_added = ?", (self.clock,))
        rows.insert_text(conn)

    def _write_all_new(self, objects: Sequence[StixObject]) -> list[PutResult]:
        """A batch of versions of ids the store has never held, each id once (what a peer
        pushes, most often): every one is new, latest, and its id's only member of the
        collection. The same rows as the general path, without its bookkeeping (and, like
        it, none of the rows sqlite_index.index_tail writes later for pks past `index_upto`)."""
        conn = self.conn
        pk = self.next_pk
        new_rows: list[tuple[Any, ...]] = []
        match_keys: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        results: list[PutResult] = []
        rows = _IndexRows()
        collection_id, source, tlp, new = self.collection_id, self.source, self.tlp, PutOutcome.NEW
        # index_upto is no bound, or the watermark, which lies below every new pk.
        index = self.next_pk <= self.index_upto
        for o in objects:
            date_added = self._tick()
            new_rows.append((pk, o.id, o.version, o.type, o.spec_version, o.json, stricter_tlp(o.tlp, tlp), source,
                             int(o.revoked), o.upgraded_from, o.created_by_ref, date_added, 1))
            if index and o.type == "indicator":
                match_keys.append(match_key_row(pk, o.data, True, o.revoked))
            members.append((collection_id, pk, date_added, 1, 1))
            rows.add(pk, o.index, True, derived=index)
            results.append(PutResult(o.id, o.version, new, pk=pk))
            pk += 1
        self.next_pk = pk
        conn.executemany(_INSERT_OBJECT, new_rows)
        conn.executemany(MATCH_KEY_INSERT, match_keys)
        rows.insert_refs(conn)
        conn.executemany(_INSERT_MEMBER, members)
        conn.execute("UPDATE clock SET last_date_added = ?", (self.clock,))
        rows.insert_text(conn)
        return results

    def _rewrite_in_place(self, rewritten: list[_Version]) -> None:
        conn = self.conn
        pks = [(v.pk,) for v in rewritten]
        for table in ("refs", "markings", "observables"):
            conn.executemany(f"DELETE FROM {table} WHERE pk = ?", pks)
        conn.executemany("DELETE FROM object_fts WHERE rowid = ?", pks)
        rows = []
        for v in rewritten:
            assert v.obj is not None
            o = v.obj
            rows.append(
                (o.type, o.spec_version, o.json, v.tlp, self.source, int(o.revoked), o.upgraded_from,
                 o.created_by_ref, v.pk)
            )
        conn.executemany(
            "UPDATE objects SET type = ?, spec_version = ?, json = ?, tlp = ?, source = ?, revoked = ?,"
            " upgraded_from = ?, created_by_ref = ? WHERE pk = ?",
            rows,
        )

    def _flush_memberships(self) -> None:
        for object_id in self.touched_members:
            group = self.members[object_id]
            if len(group) == 1:  # most often: the one version of the object in the collection
                (only,) = group.values()
                if not (only.is_last and only.is_first):
                    only.is_last = only.is_first = only.dirty = True
                continue
            touched = group.values()
            last = max(m.version for m in touched)
            first = min(m.version for m in touched)
            for m in touched:
                is_last, is_first = m.version == last, m.version == first
                if (is_last, is_first) != (m.is_last, m.is_first):
                    m.is_last, m.is_first = is_last, is_first
                    m.dirty = True
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for group in self.members.values():
            for m in group.values():
                if m.is_new:
                    inserts.append((self.collection_id, m.pk, m.date_added, int(m.is_last), int(m.is_first)))
                elif m.dirty:
                    updates.append((m.date_added, int(m.is_last), int(m.is_first), self.collection_id, m.pk))
        self.conn.executemany(_INSERT_MEMBER, inserts)
        self.conn.executemany(
            "UPDATE memberships SET date_added = ?, is_last = ?, is_first = ? WHERE collection_id = ? AND pk = ?",
            updates,
        )
