"""Named schema migrations for the SQLite store, applied in order on open.

Each migration is a name and a tuple of SQL statements. Applied names are
recorded in the `migrations` table with the time they were applied, so a store
opened by a newer threatmesh gains the missing steps and an older one is never
re-run. Every migration runs in its own transaction: a crash in the middle
leaves the store at the previous step.

The SQL is kept plain (no SQLite-only types) so that a PostgreSQL store can
mirror the same tables. Two pieces are SQLite's own: the FTS5 table, which a
PostgreSQL store replaces with a tsvector column, and the triggers and JSON
functions that keep `match_keys` (0006) when an object is rewritten in place
or the table is backfilled, which it writes with its own triggers (PL/pgSQL
and jsonb) or from its writer.

Tables (all times are integer µs since the Unix epoch):

- objects: one row per stored (id, version); `is_latest` marks the greatest
  version key of each id; `date_added` is when the version was first stored.
- memberships: which versions belong to which collection, with the
  `date_added` the version got there (strictly increasing across the store)
  and `is_last` / `is_first` marking the newest and oldest member version of
  each id inside that collection (TAXII `match[version]=last|first`).
- clock: one row holding the last `date_added` handed out.
- refs, markings, observables: the ObjectIndex of each version, for reverse
  lookups (relationships, marking use, IoC lookups); `created_by_ref` is not
  repeated in refs, since objects.created_by_ref holds it with its own index.
- object_fts: FTS5 over ObjectIndex.text, holding latest versions only
  (rowid = objects.pk).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from threatmesh.errors import StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = []


def register(name: str, *statements: str) -> Migration:
    """Add a migration at the end of the sequence; names are unique."""
    if any(existing.name == name for existing in MIGRATIONS):
        raise ValueError(f"migration {name!r} registered twice")
    migration = Migration(name, tuple(statements))
    MIGRATIONS.append(migration)
    return migration


register(
    "0001_initial_schema",
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE clock (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        last_date_added INTEGER NOT NULL
    )""",
    "INSERT INTO clock (singleton, last_date_added) VALUES (1, 0)",
    """CREATE TABLE collections (
        id TEXT PRIMARY KEY,
        api_root TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        alias TEXT UNIQUE,
        public INTEGER NOT NULL,
        media_types TEXT NOT NULL
    )""",
    """CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        is_admin INTEGER NOT NULL,
        revoked INTEGER NOT NULL,
        created INTEGER NOT NULL
    )""",
    """CREATE TABLE objects (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        type TEXT NOT NULL,
        spec_version TEXT NOT NULL,
        json BLOB NOT NULL,
        tlp TEXT,
        source TEXT NOT NULL,
        revoked INTEGER NOT NULL,
        upgraded_from TEXT,
        created_by_ref TEXT,
        date_added INTEGER NOT NULL,
        is_latest INTEGER NOT NULL,
        UNIQUE (id, version)
    )""",
    "CREATE INDEX objects_type_latest ON objects (type, is_latest)",
    "CREATE INDEX objects_created_by_ref ON objects (created_by_ref)",
    """CREATE TABLE memberships (
        collection_id TEXT NOT NULL REFERENCES collections (id),
        pk INTEGER NOT NULL REFERENCES objects (pk),
        date_added INTEGER NOT NULL,
        is_last INTEGER NOT NULL,
        is_first INTEGER NOT NULL,
        PRIMARY KEY (collection_id, pk)
    )""",
    "CREATE UNIQUE INDEX memberships_date_added ON memberships (collection_id, date_added)",
    "CREATE INDEX memberships_pk ON memberships (pk)",
    # The index tables are clustered on their primary key (WITHOUT ROWID: one
    # b-tree instead of two); PostgreSQL simply drops the clause.
    """CREATE TABLE refs (
        pk INTEGER NOT NULL REFERENCES objects (pk),
        path TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (pk, path, target)
    ) WITHOUT ROWID""",
    "CREATE INDEX refs_target ON refs (target)",
    """CREATE TABLE markings (
        pk INTEGER NOT NULL REFERENCES objects (pk),
        marking_id TEXT NOT NULL,
        PRIMARY KEY (pk, marking_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX markings_marking_id ON markings (marking_id)",
    """CREATE TABLE observables (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        pk INTEGER NOT NULL REFERENCES objects (pk),
        PRIMARY KEY (kind, value, pk)
    ) WITHOUT ROWID""",
    "CREATE INDEX observables_pk ON observables (pk)",
    # unicode61 with diacritics folded: 'Fancy Bear' and 'fancy bear' match.
    """CREATE VIRTUAL TABLE object_fts USING fts5 (
        body,
        tokenize = 'unicode61 remove_diacritics 2'
    )""",
)


# TAXII serving (issue 3): API roots, per-account collection rights, POST
# statuses kept for reading later, and the audit log of every request.
register(
    "0002_taxii_serving",
    """CREATE TABLE api_roots (
        name TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        max_content_length INTEGER
    )""",
    # Every API root that collections already name, and the default one.
    """INSERT INTO api_roots (name, title, description, max_content_length)
        SELECT DISTINCT api_root, api_root, '', NULL FROM collections""",
    """INSERT INTO api_roots (name, title, description, max_content_length)
        SELECT 'default', 'default', '', NULL
        WHERE NOT EXISTS (SELECT 1 FROM api_roots WHERE name = 'default')""",
    """CREATE TABLE collection_rights (
        account TEXT NOT NULL REFERENCES accounts (name),
        collection_id TEXT NOT NULL REFERENCES collections (id),
        can_read INTEGER NOT NULL,
        can_write INTEGER NOT NULL,
        PRIMARY KEY (account, collection_id)
    )""",
    """CREATE TABLE taxii_statuses (
        id TEXT PRIMARY KEY,
        api_root TEXT NOT NULL,
        account TEXT,
        complete INTEGER NOT NULL,
        request_timestamp INTEGER NOT NULL,
        details BLOB NOT NULL
    )""",
    "CREATE INDEX taxii_statuses_request_timestamp ON taxii_statuses (request_timestamp)",
    """CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        account TEXT,
        method TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        status INTEGER NOT NULL,
        objects INTEGER NOT NULL
    )""",
    "CREATE INDEX audit_log_account ON audit_log (account, seq)",
    "CREATE INDEX audit_log_time ON audit_log (time)",
)


# Federation (issue 4): peers, their sync cursors, what each peer is known to
# hold (so nothing is sent back or sent twice), sync health per peer, and the
# objects a peer sent that were refused (tampered, invalid).
register(
    "0003_peers_and_sync",
    """CREATE TABLE peers (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        credential TEXT,
        account TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        cleared_for TEXT NOT NULL,
        groups TEXT NOT NULL,
        pull TEXT NOT NULL,
        push TEXT NOT NULL,
        public_key TEXT,
        created INTEGER NOT NULL
    )""",
    # position: the remote added_after timestamp (pull) or the local date_added in µs (push).
    """CREATE TABLE sync_cursors (
        peer TEXT NOT NULL,
        direction TEXT NOT NULL,
        collection TEXT NOT NULL,
        position TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (peer, direction, collection)
    )""",
    """CREATE TABLE peer_holds (
        peer TEXT NOT NULL,
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        time INTEGER NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (peer, id, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE sync_state (
        peer TEXT PRIMARY KEY,
        last_attempt INTEGER NOT NULL,
        last_success INTEGER NOT NULL,
        last_error TEXT,
        failures INTEGER NOT NULL,
        sent INTEGER NOT NULL,
        received INTEGER NOT NULL,
        refused INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        bytes_sent INTEGER NOT NULL,
        bytes_received INTEGER NOT NULL
    )""",
    """CREATE TABLE peer_rejections (
        seq INTEGER PRIMARY KEY,
        peer TEXT NOT NULL,
        time INTEGER NOT NULL,
        object_id TEXT NOT NULL,
        version TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE INDEX peer_rejections_peer ON peer_rejections (peer, seq)",
)



# Provenance (issue 4): which peer sent which object version, when, signed by
# which key, and through which nodes it came before that peer.
_RECEIPT_DETAILS = """received INTEGER NOT NULL,
        signer TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        verified INTEGER NOT NULL,
        derived INTEGER NOT NULL,
        path TEXT NOT NULL"""
register(
    "0004_provenance",
    f"""CREATE TABLE provenance (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        peer TEXT NOT NULL,
        {_RECEIPT_DETAILS},
        PRIMARY KEY (id, version, peer)
    ) WITHOUT ROWID""",
)


# Analytics facts (issue 7): one row per counted object (latest version), kept up
# to date incrementally from a watermark on memberships.date_added (the clock),
# with the counts the dashboard overview reads pre-aggregated. sqlite_facts.py
# describes the tables; they hold nothing that cannot be rebuilt from `objects`.
register(
    "0005_analytics_facts",
    """CREATE TABLE analytics_state (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        date_added INTEGER NOT NULL,
        object_pk INTEGER NOT NULL,
        refreshed INTEGER NOT NULL
    )""",
    "INSERT INTO analytics_state (singleton, date_added, object_pk, refreshed) VALUES (1, 0, 0, 0)",
    """CREATE TABLE analytics_facts (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        day TEXT,
        name TEXT NOT NULL,
        actor TEXT NOT NULL,
        sponsor TEXT NOT NULL,
        victim_country TEXT NOT NULL,
        sector TEXT NOT NULL,
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        source TEXT NOT NULL,
        confidence INTEGER
    )""",
    "CREATE INDEX analytics_facts_kind ON analytics_facts (kind)",
    "CREATE INDEX analytics_facts_kind_day ON analytics_facts (kind, day)",
    """CREATE TABLE analytics_fact_actors (
        actor TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (actor, id)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_actors (
        actor_id TEXT PRIMARY KEY,
        canonical TEXT NOT NULL,
        aliases TEXT NOT NULL,
        sponsors TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_counts (
        kind TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, field, value)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_object_counts (
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (type, tlp)
    ) WITHOUT ROWID""",
)


def _now_us() -> int:
    return time.time_ns() // 1000


def pending_migrations(conn: sqlite3.Connection) -> list[Migration]:
    """Migrations not yet recorded in the store, in order."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    applied: set[str] = set()
    if has_table:
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    return [m for m in MIGRATIONS if m.name not in applied]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names.

    `conn` must be in autocommit mode (isolation_level=None): transactions are
    explicit here.
    """
    done: list[str] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for migration in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked inside the write lock: another process may have just applied it.
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (migration.name,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (migration.name, _now_us())
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"migration {migration.name} failed: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done.append(migration.name)
    return done


# Match keys (issue 6): what the log matcher needs of every indicator version, kept
# as objects are written (by triggers; since 0008, new versions by the writer), so
# that loading a million indicators reads one narrow table instead of parsing a
# million JSON documents. Derived data only:
# it holds nothing that cannot be rebuilt from `objects` (the backfill below).
# Separate json_extract calls share one parse of the document (SQLite caches it);
# the warninglist flags are only looked for in documents that name one.
_MATCH_KEY_COLUMNS = "pk, id, is_latest, revoked, name, valid_from, valid_until, pattern, pattern_type, flagged"
_MATCH_KEY_FLAG = "coalesce(json_extract({row}json, '$.{name}'), 0) NOT IN (0, '', '[]', '{{}}')"
_MATCH_KEY_VALUES = (
    "{row}pk, {row}id, {row}is_latest, {row}revoked, json_extract({row}json, '$.name'),"
    " json_extract({row}json, '$.valid_from'), json_extract({row}json, '$.valid_until'),"
    " json_extract({row}json, '$.pattern'), json_extract({row}json, '$.pattern_type'),"
    " CASE WHEN instr({row}json, 'warninglist') THEN "
    + " OR ".join(_MATCH_KEY_FLAG.replace("{name}", name)
                  for name in ("x_threatmesh_warninglists", "x_threatmesh_warninglist", "x_warninglists"))
    + " ELSE 0 END"
)
_MATCH_KEY_NEW = f"INSERT OR REPLACE INTO match_keys ({_MATCH_KEY_COLUMNS}) SELECT {_MATCH_KEY_VALUES.format(row='NEW.')}"


def _match_key_micros(column: str) -> str:
    """µs of a STIX timestamp (`YYYY-MM-DDTHH:MM:SS[.fff]Z`); -2 when NULL, -1 for any other spelling
    (the reader parses those itself)."""
    fraction = f"substr({column}, 21, length({column}) - 21)"
    digits = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
    stix = (f"({column} GLOB '{digits}Z' OR ({column} GLOB '{digits}.?*Z' AND {fraction} NOT GLOB '*[^0-9]*'))")
    return (f"CASE WHEN {column} IS NULL THEN -2 WHEN NOT {stix} OR unixepoch({column}) IS NULL THEN -1"
            f" ELSE unixepoch({column}) * 1000000 + CASE WHEN length({column}) > 20"
            f" THEN CAST(substr({fraction} || '000000', 1, 6) AS INTEGER) ELSE 0 END END")


register(
    "0006_match_keys",
    """CREATE TABLE match_keys (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        is_latest INTEGER NOT NULL,
        revoked INTEGER NOT NULL,
        name TEXT,
        valid_from TEXT,
        valid_until TEXT,
        pattern TEXT,
        pattern_type TEXT,
        flagged INTEGER NOT NULL,
        valid_from_us INTEGER GENERATED ALWAYS AS (""" + _match_key_micros("valid_from") + """) STORED,
        valid_until_us INTEGER GENERATED ALWAYS AS (""" + _match_key_micros("valid_until") + """) STORED
    )""",
    f"""CREATE TRIGGER match_keys_insert AFTER INSERT ON objects WHEN NEW.type = 'indicator'
    BEGIN {_MATCH_KEY_NEW}; END""",
    f"""CREATE TRIGGER match_keys_rewrite AFTER UPDATE OF type, json, revoked ON objects
    BEGIN DELETE FROM match_keys WHERE pk = OLD.pk; {_MATCH_KEY_NEW} WHERE NEW.type = 'indicator'; END""",
    """CREATE TRIGGER match_keys_latest AFTER UPDATE OF is_latest ON objects WHEN NEW.type = 'indicator'
    BEGIN UPDATE match_keys SET is_latest = NEW.is_latest WHERE pk = NEW.pk; END""",
    """CREATE TRIGGER match_keys_delete AFTER DELETE ON objects WHEN OLD.type = 'indicator'
    BEGIN DELETE FROM match_keys WHERE pk = OLD.pk; END""",
    f"""INSERT INTO match_keys ({_MATCH_KEY_COLUMNS}) SELECT {_MATCH_KEY_VALUES.format(row='')}
    FROM objects WHERE type = 'indicator'""",
)


# Reach of the analytics facts (issue 7): the visibility class of every latest
# object (what the egress policy reads of it) and, per object and per fact, the
# set of classes behind it, so that a recipient other than the operator reads
# the pre-aggregated counts it may see instead of a pass through the egress
# path (analytics/visibility.py, store/sqlite_facts.py). Class 0 stands for
# "redaction rewrites a string a fact reads". The view tables keep, per
# recipient view, the facts and verdicts rebuilt through the egress path, valid
# while the `stamp` (the clock of the refresh that last wrote the row) of the
# fact or object row they were built from stays the same. Derived data only:
# the last statement sends the next refresh into a full rebuild, which fills it.
register(
    "0007_analytics_reach",
    """CREATE TABLE analytics_classes (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE
    )""",
    "INSERT INTO analytics_classes (id, key) VALUES (0, '\"altered\"')",
    """CREATE TABLE analytics_reaches (
        id INTEGER PRIMARY KEY,
        own INTEGER NOT NULL,
        classes TEXT NOT NULL,
        UNIQUE (own, classes)
    )""",
    """CREATE TABLE analytics_object_reach (
        pk INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        reach INTEGER NOT NULL,
        stamp INTEGER NOT NULL
    )""",
    "CREATE INDEX analytics_object_reach_reach ON analytics_object_reach (reach)",
    """CREATE TABLE analytics_reach_object_counts (
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        reach INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (type, tlp, reach)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_reach_counts (
        kind TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        reach INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, field, value, reach)
    ) WITHOUT ROWID""",
    "ALTER TABLE analytics_facts ADD COLUMN reach INTEGER NOT NULL DEFAULT -1",
    "ALTER TABLE analytics_facts ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE analytics_view_facts (
        view TEXT NOT NULL,
        pk INTEGER NOT NULL,
        id TEXT NOT NULL,
        stamp INTEGER NOT NULL,
        fact TEXT,
        PRIMARY KEY (view, pk)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_view_objects (
        view TEXT NOT NULL,
        pk INTEGER NOT NULL,
        stamp INTEGER NOT NULL,
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        goes INTEGER NOT NULL,
        PRIMARY KEY (view, pk)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_view_state (
        view TEXT PRIMARY KEY,
        clock INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_view_counts (
        view TEXT NOT NULL,
        kind TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (view, kind, field, value)
    ) WITHOUT ROWID""",
    """CREATE TABLE analytics_view_object_counts (
        view TEXT NOT NULL,
        type TEXT NOT NULL,
        tlp TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (view, type, tlp)
    ) WITHOUT ROWID""",
    "CREATE INDEX analytics_facts_reach ON analytics_facts (reach, kind)",
    "ALTER TABLE analytics_actors ADD COLUMN reach INTEGER NOT NULL DEFAULT -1",
    "ALTER TABLE analytics_state ADD COLUMN redaction TEXT NOT NULL DEFAULT ''",
    "UPDATE analytics_state SET date_added = 0, object_pk = 0",
)


# Match keys of new indicator versions are written by the store's writer (from the
# parsed object it holds: `sqlite_match.match_key_row`), not by a trigger reading the
# stored JSON again, which cost a third of writing an indicator. The other triggers of
# 0006 stay: in-place rewrites, `is_latest` changes and deletes are rare.
register(
    "0008_match_keys_by_writer",
    "DROP TRIGGER IF EXISTS match_keys_insert",
)


# Receipts keyed by the stored version's pk: a receipt is written right after its
# version, whose pk is the newest, so receipts append at the end of their b-tree.
# Keyed by (id, version, peer) they landed at random places: on a store of 90,000
# receipts each batch rewrote most of the table's pages into the WAL, 10-17 µs a
# receipt against under 2 (about a tenth of what forwarding one object cost in a
# line of ten nodes). Receipts of versions the store does not hold (there were
# none: the sync records them after storing) are not carried over.
register(
    "0009_provenance_by_pk",
    f"""CREATE TABLE provenance_by_pk (
        pk INTEGER NOT NULL,
        peer TEXT NOT NULL,
        {_RECEIPT_DETAILS},
        PRIMARY KEY (pk, peer)
    ) WITHOUT ROWID""",
    """INSERT INTO provenance_by_pk (pk, peer, received, signer, key_fingerprint, verified, derived, path)
    SELECT o.pk, p.peer, p.received, p.signer, p.key_fingerprint, p.verified, p.derived, p.path
    FROM provenance p JOIN objects o ON o.id = p.id AND o.version = p.version""",
    "DROP TABLE provenance",
    "ALTER TABLE provenance_by_pk RENAME TO provenance",
)


# What a peer holds, keyed by the stored version's pk, for the reason receipts are
# (0009): a push records the versions it delivered, in the order they were stored, so
# the rows append at the end of the table instead of landing at random places (a
# hub records every version once per spoke). Rows of versions the store does not
# hold are not carried over.
register(
    "0010_peer_holds_by_pk",
    """CREATE TABLE peer_holds_by_pk (
        pk INTEGER NOT NULL,
        peer TEXT NOT NULL,
        time INTEGER NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (pk, peer)
    ) WITHOUT ROWID""",
    """INSERT INTO peer_holds_by_pk (pk, peer, time, received)
    SELECT o.pk, h.peer, h.time, h.received
    FROM peer_holds h JOIN objects o ON o.id = h.id AND o.version = h.version""",
    "DROP TABLE peer_holds",
    "ALTER TABLE peer_holds_by_pk RENAME TO peer_holds",
)


# The search and match indexes may lag behind `objects` for versions received from
# peers (store/sqlite_index.py): `indexed_pk` is the greatest pk up to which the
# full-text index, the observables and the match keys are written. A store made
# before this migration has indexed everything it holds.
register(
    "0011_index_tail",
    "CREATE TABLE index_state (indexed_pk INTEGER NOT NULL)",
    "INSERT INTO index_state (indexed_pk) SELECT coalesce(max(pk), 0) FROM objects",
)
