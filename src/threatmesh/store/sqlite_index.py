"""The search and match indexes of versions received from peers, written after the versions.

A mixin of `SQLiteStore`. Three tables are derived from each stored version and
read only to search and to match: the full-text index (`object_fts`), the exact
observables (`observables`) and the indicators' match keys (`match_keys`).
Writing them is about half the cost of storing a received indicator (a batch of
10,000: 42-50 µs an indicator with them, 22-25 without). A node forwarding a
peer's push stores it and sends it on at once; these rows can wait.

`put_objects(..., defer_index=True)` (what the TAXII server and the sync use for
what peers send) stores a batch without those rows for its new versions.
Migration `0011_index_tail` keeps the watermark: `index_state.indexed_pk` is the
greatest pk up to which the three tables are written, and no version above it
(the tail) has any of their rows. The writer keeps that true:

- a deferred write gives its new versions (new pks, the store's greatest) none
  of those rows, and keeps the rows of versions at or below the watermark up to
  date as any write does (a superseded version loses its full-text row and its
  match key's latest flag; an SCO rewritten in place gets new rows). A tail
  version superseded or rewritten meanwhile has no rows to update: the tail is
  indexed from what is stored when it is indexed;
- any other write first indexes the tail, then indexes its own versions as
  before and moves the watermark past them.

Nothing reads a lagging index: every read of those tables (search, observable
lookup, the matcher's reads, the integrity check) first indexes the tail. The
tail is indexed from the stored JSON (`text_and_observables` and `match_key_row`,
what the parse and the writer use), so it survives a crash or a restart
and another process can index it. `IdleIndexer` (run by `serve`) indexes it
once the node has stored nothing for IDLE_SECONDS, once it has waited
MAX_WAIT_SECONDS, or as soon as it is `INDEX_TAIL_CAP` versions long, which
bounds what a read may have to index first. A store opened read-only cannot
write, so it reads the indexes as the writer left them.

"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, Sequence

import orjson

from threatmesh.errors import ThreatmeshError
from threatmesh.stix.index import text_and_observables
from threatmesh.store.protocol import Store
from threatmesh.store.sqlite_match import MATCH_KEY_INSERT, match_key_row

log = logging.getLogger(__name__)

# Versions indexed per write transaction, so that a writer waits at most some 100 ms.
INDEX_CHUNK = 5_000
# How long a node must have stored nothing before its indexer writes the tail. A peer's
# burst arrives as batches seconds apart (a ten-node line: one every few seconds per
# link), and each pause must not be taken for the end of the burst.
IDLE_SECONDS = 10.0
# The longest a version waits for the indexer when the node never falls quiet.
MAX_WAIT_SECONDS = 60.0
# The longest tail an idle-time indexer lets build up while the node is busy
# (about 1.5 s of indexing for a read that comes then).
INDEX_TAIL_CAP = 100_000

_LAG = "SELECT coalesce((SELECT max(pk) FROM objects), 0) - indexed_pk FROM index_state"


def derived_rows(pk: int, is_latest: bool, texts: Sequence[tuple[str, str]], observables: Sequence[tuple[str, str]],
                 observable_rows: list[tuple[int, str, str]], text_rows: list[tuple[int, str]]) -> None:
    """Append one version's observable rows and its full-text row (`ObjectIndex.text` and
    `.observables`); the full-text index holds latest versions only."""
    if len(observables) == 1:
        observable_rows.append((pk, *observables[0]))
    elif observables:
        observable_rows.extend((pk, kind, value) for kind, value in dict.fromkeys(observables))
    if texts and is_latest:
        text_rows.append((pk, "\n".join([text for _, text in texts])))


def index_tail(conn: sqlite3.Connection, limit: int) -> int:
    """Write the derived rows of the first `limit` versions of the tail and move the
    watermark past them, inside the caller's write transaction; how many were indexed."""
    (indexed,) = conn.execute("SELECT indexed_pk FROM index_state").fetchone()
    observable_rows: list[tuple[int, str, str]] = []
    text_rows: list[tuple[int, str]] = []
    keys: list[tuple[Any, ...]] = []
    last = indexed
    count = 0
    for pk, kind, json, is_latest, revoked in conn.execute(
        "SELECT pk, type, json, is_latest, revoked FROM objects WHERE pk > ? ORDER BY pk LIMIT ?", (indexed, limit)
    ):
        data = orjson.loads(json)
        texts, observables = text_and_observables(data)
        derived_rows(pk, bool(is_latest), texts, observables, observable_rows, text_rows)
        if kind == "indicator":
            keys.append(match_key_row(pk, data, bool(is_latest), bool(revoked)))
        last = pk
        count += 1
    if count:
        conn.executemany("INSERT INTO observables (pk, kind, value) VALUES (?, ?, ?)", observable_rows)
        conn.executemany(MATCH_KEY_INSERT, keys)
        conn.executemany("INSERT INTO object_fts (rowid, body) VALUES (?, ?)", text_rows)
        conn.execute("UPDATE index_state SET indexed_pk = ?", (last,))
    return count


class SQLiteIndexTail:
    """The tail of versions not yet in the search and match indexes, for SQLiteStore."""

    _writer: sqlite3.Connection | None
    _last_put: float

    # Provided by SQLiteStore.
    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def index_lag(self) -> int:
        """How many stored versions the search and match indexes do not hold yet."""
        with self._reading() as conn:
            (lag,) = conn.execute(_LAG).fetchone()
        return int(lag)

    def catch_up_index(self, *, limit: int | None = None) -> int:
        """Index the tail (at most `limit` versions), INDEX_CHUNK per transaction; how many."""
        done = 0
        while limit is None or done < limit:
            chunk = INDEX_CHUNK if limit is None else min(INDEX_CHUNK, limit - done)
            with self._writing() as conn:
                count = index_tail(conn, chunk)
            done += count
            if count < chunk:
                break
        return done

    def seconds_since_put(self) -> float:
        """Time since this process last stored a batch (monotonic)."""
        return time.monotonic() - self._last_put

    def _index_current(self) -> None:
        """Before a read of the derived tables: index whatever is in the tail."""
        if self._writer is None:
            return  # read-only: what the writer has indexed
        if self.index_lag():
            self.catch_up_index()


class IdleIndexer:
    """A thread that indexes a store's tail when the node is quiet, when the tail is long,
    or when it has waited `max_wait` seconds (a node that never falls quiet)."""

    def __init__(self, store: Store, *, idle: float = IDLE_SECONDS, cap: int = INDEX_TAIL_CAP,
                 max_wait: float = MAX_WAIT_SECONDS, poll: float = 0.5) -> None:
        if idle < 0 or cap < 1 or max_wait < 0 or poll <= 0:
            raise ValueError("idle and max_wait must be >= 0, cap >= 1 and poll > 0")
        self.store = store
        self.idle = idle
        self.cap = cap
        self.max_wait = max_wait
        self.poll = poll
        self._waiting_since: float | None = None  # when this indexer first saw the tail it still sees
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> IdleIndexer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="threatmesh-index", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def step(self) -> int:
        """Index what the rules allow now: the whole tail when the node is quiet or the
        tail overdue, else down to under the cap; how many versions were indexed."""
        done = 0
        while not self._stop.is_set():
            lag = self.store.index_lag()
            now = time.monotonic()
            if lag == 0:
                self._waiting_since = None
                break
            if self._waiting_since is None:
                self._waiting_since = now
            overdue = now - self._waiting_since >= self.max_wait
            if lag < self.cap and not overdue and self.store.seconds_since_put() < self.idle:
                break
            done += self.store.catch_up_index(limit=INDEX_CHUNK)
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                started = time.monotonic()
                done = self.step()
                if done:
                    log.info("indexed %d versions received from peers (full text, observables, match keys)"
                             " in %.1f s", done, time.monotonic() - started)
            except ThreatmeshError as exc:  # a busy or closed store: try again at the next poll
                log.warning("indexing received versions: %s", exc)
