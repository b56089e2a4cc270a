"""The analytics fact table of the SQLite store: one row per counted object, kept up to date incrementally.

A mixin of `SQLiteStore`, like `sqlite_peers`; the tables come from migration
`0005_analytics_facts`:

- analytics_facts: one row per countable object (incident, campaign, report,
  indicator, sighting) for its latest version (`pk` = objects.pk), with every
  breakdown value resolved exactly as `analytics.facts.build_facts` resolves
  it over the whole store (multi-valued fields joined with U+001F).
- analytics_fact_actors: (canonical actor name, fact id), so that the facts
  naming an actor are recomputed when its name or sponsor changes.
- analytics_actors: the alias-merged actor index the facts were named with.
- analytics_counts / analytics_object_counts: the counts of
  `analytics.summary.FactSummary`, moved by +1/-1 as facts are replaced, and
  the latest objects by (type, TLP): what the dashboard overview reads.
- analytics_state: the watermark: the clock (`memberships.date_added`, which
  every stored version, re-stamp and in-place rewrite moves) and the greatest
  objects.pk at the last refresh.

A refresh reads what was stored after the watermark (one indexed range per
collection) and recomputes only the facts it can change. A fact depends on its
object, the object's outgoing relationships and what they point at (victim
locations and identities, and an identity's own `located-at`), the campaigns
an indicator indicates, the indicator a sighting is of, and the actors (their
merged names and sponsors). So the facts to recompute are: the new countable
objects; the sources of new relationships; everything that refers, through
relationships or `*_ref(s)`, to a new location, identity, campaign or
indicator, transitively (a location behind an identity behind a campaign
behind an indicator of a sighting); everything that refers to an actor id
new to the actor index; and the facts linked to an actor whose canonical
name or sponsors changed. They are recomputed by `build_facts` over their
neighbourhood (those objects, their relevant out-edges and targets, and every
actor with its own edges), which yields the same facts as a pass over the
whole store. When that set is a large part of the store, a full rebuild is
cheaper and is done instead.

The work is read from one snapshot outside the write lock (ingest is not held
up), then written in one transaction that first checks that no other refresh
moved the watermark meanwhile. Limits: deleting a version from a collection
moves no watermark (the store-wide facts do not depend on memberships; only
the per-collection filter reads them, live); the TLP count of an SCO whose
unversioned row is rewritten in place keeps its first TLP until a full
rebuild (`refresh_facts(full=True)`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from threatmesh.analytics.actors import ActorIndex
from threatmesh.analytics.facts import ATTRIBUTION, INDICATES, KINDS, ORIGIN, VICTIM, Fact, build_facts
from threatmesh.analytics.summary import RECENT_SIGHTINGS, CountKey, FactSummary, contributions
from threatmesh.store.protocol import FactsRefresh, StoredVersion

SEP = "\x1f"
_CHUNK = 400
COUNTABLE = frozenset(KINDS.values())
# Objects whose own facts feed other facts through references (facts.py): a change to one of them
# changes the facts that point at it.
_FEEDS_OTHERS = frozenset({"location", "identity", "campaign", "indicator"})
# Targets whose own out-edges are read for the fact of what points at them.
_EXPANDED = frozenset({"identity", "campaign", "indicator"})
_RELEVANT_RELATIONSHIPS = ORIGIN | VICTIM | INDICATES | ATTRIBUTION
# Past this share of the facts to recompute, one pass over the store is cheaper than neighbourhoods.
FULL_REBUILD_SHARE = 0.3
_SMALL = 1000  # below this, always incremental
_ATTEMPTS = 3

_VERSION_COLUMNS = (
    "o.pk, o.id, o.type, o.version, o.spec_version, o.json, o.date_added, o.tlp, o.source,"
    " o.revoked, o.upgraded_from, o.is_latest"
)
_FACT_COLUMNS = "pk, id, kind, day, name, actor, sponsor, victim_country, sector, type, tlp, source, confidence"


def _version(row: Sequence[Any]) -> tuple[int, StoredVersion]:
    return row[0], StoredVersion(
        id=row[1], type=row[2], version=row[3], spec_version=row[4], json=bytes(row[5]), date_added=row[6],
        tlp=row[7], source=row[8], revoked=bool(row[9]), upgraded_from=row[10], is_latest=bool(row[11]),
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(SEP)) if text else ()


def _fact_row(pk: int, fact: Fact) -> tuple[Any, ...]:
    return (pk, fact.id, fact.kind, fact.day.isoformat() if fact.day else None, fact.name, SEP.join(fact.actor),
            SEP.join(fact.sponsor), SEP.join(fact.victim_country), SEP.join(fact.sector), SEP.join(fact.type),
            SEP.join(fact.tlp), SEP.join(fact.source), fact.confidence)


def _row_fact(row: Sequence[Any]) -> Fact:
    return Fact(id=row[1], kind=row[2], name=row[4], day=date.fromisoformat(row[3]) if row[3] else None,
                actor=_split(row[5]), sponsor=_split(row[6]), victim_country=_split(row[7]), sector=_split(row[8]),
                type=_split(row[9]), tlp=_split(row[10]), source=_split(row[11]), confidence=row[12])


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _json_list(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


ActorRow = tuple[str, tuple[str, ...], tuple[str, ...]]  # canonical, aliases, sponsors


@dataclass(slots=True)
class _Plan:
    """What one refresh will write, computed from one read snapshot."""

    clock: int
    max_pk: int
    full: bool
    versions: int
    facts: list[tuple[int, Fact]] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)  # ids whose rows are replaced (incremental)
    actors: dict[str, ActorRow] = field(default_factory=dict)
    object_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # full: totals; else deltas


class SQLiteFactTables:
    """Analytics fact methods of the Store protocol, for SQLiteStore."""

    # Provided by SQLiteStore.
    _writer: sqlite3.Connection | None

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _connect(self, *, writable: bool) -> sqlite3.Connection:  # pragma: no cover
        raise NotImplementedError

    def _facts_lock(self) -> threading.Lock:
        # One refresh at a time per store object: concurrent page requests wait for it, not redo it.
        lock: threading.Lock = self.__dict__.setdefault("_facts_refresh_lock", threading.Lock())
        return lock

    # -- refreshing ------------------------------------------------------------------------

    def refresh_facts(self, *, full: bool = False) -> FactsRefresh:
        started = time.perf_counter()
        with self._facts_lock():
            for _ in range(_ATTEMPTS):
                with self._reading() as conn:
                    state = tuple(conn.execute("SELECT date_added, object_pk FROM analytics_state").fetchone())
                    (clock,) = conn.execute("SELECT last_date_added FROM clock").fetchone()
                if state[0] == clock and not full:
                    return FactsRefresh(current=True, seconds=time.perf_counter() - started)
                if self._writer is None:
                    return FactsRefresh(current=False, seconds=time.perf_counter() - started)
                snapshot = self._connect(writable=False)
                try:
                    snapshot.execute("BEGIN")
                    plan = self._plan(snapshot, state[0], state[1], full)
                finally:
                    snapshot.close()
                with self._writing() as conn:
                    if tuple(conn.execute("SELECT date_added, object_pk FROM analytics_state").fetchone()) != state:
                        continue  # another process refreshed meanwhile: plan again from its watermark
                    written = self._apply(conn, plan)
                return FactsRefresh(current=True, full=plan.full, versions=plan.versions, recomputed=written,
                                    seconds=time.perf_counter() - started)
        return FactsRefresh(current=False, seconds=time.perf_counter() - started)

    def _plan(self, conn: sqlite3.Connection, since: int, old_pk: int, full: bool) -> _Plan:
        (clock,) = conn.execute("SELECT last_date_added FROM clock").fetchone()
        (max_pk,) = conn.execute("SELECT coalesce(max(pk), 0) FROM objects").fetchone()
        if since == 0 or full:
            return self._plan_full(conn, clock, max_pk)
        touched: list[tuple[int, str, str]] = []  # (pk, id, type) of versions stored or re-stamped since
        pks: list[int] = []
        for (collection_id,) in conn.execute("SELECT id FROM collections").fetchall():
            pks.extend(pk for (pk,) in conn.execute(
                "SELECT pk FROM memberships WHERE collection_id = ? AND date_added > ?", (collection_id, since)))
        (facts_now,) = conn.execute("SELECT coalesce(sum(n), 0) FROM analytics_counts WHERE field = 'total'").fetchone()
        if len(pks) > _SMALL and len(pks) > FULL_REBUILD_SHARE * max_pk:
            return self._plan_full(conn, clock, max_pk)
        for chunk in _chunks(sorted(set(pks))):
            touched.extend(conn.execute(
                "SELECT pk, id, type FROM objects WHERE pk IN (SELECT value FROM json_each(?))", (_json_list(chunk),)))
        plan = _Plan(clock, max_pk, full=False, versions=len(pks))
        ids = list(dict.fromkeys(object_id for _, object_id, _ in touched))
        plan.object_counts = _object_count_deltas(conn, ids, old_pk)

        actor_versions = _actor_graph(conn)
        plan.actors = _actor_rows([v for _, v in actor_versions])
        old_actors = {row[0]: (row[1], tuple(orjson.loads(row[3])))
                      for row in conn.execute("SELECT actor_id, canonical, aliases, sponsors FROM analytics_actors")}
        changed_names: set[str] = set()
        frontier: set[str] = set()
        for actor_id in set(old_actors) | set(plan.actors):
            before = old_actors.get(actor_id)
            now = plan.actors.get(actor_id)
            after = (now[0], now[2]) if now else None
            if before != after:
                changed_names.update(pair[0] for pair in (before, after) if pair)
            if before is None or now is None:
                frontier.add(actor_id)  # what points at it counts it as an actor now, or no longer

        types = _latest_types(conn, ids)
        dirty = {i for i in ids if types.get(i) in COUNTABLE}
        frontier.update(i for i in ids if types.get(i) in _FEEDS_OTHERS)
        relationship_pks = [pk for pk, _, kind in touched if kind == "relationship"]
        sources: set[str] = set()
        for chunk in _chunks(relationship_pks):
            sources.update(t for (t,) in conn.execute(
                "SELECT target FROM refs WHERE path = 'source_ref' AND pk IN (SELECT value FROM json_each(?))",
                (_json_list(chunk),)))
        source_types = _latest_types(conn, sorted(sources))
        dirty.update(s for s in sources if source_types.get(s) in COUNTABLE)
        frontier.update(s for s in sources if source_types.get(s) in _FEEDS_OTHERS)
        dirty |= _referrers(conn, frontier)
        for chunk in _chunks(sorted(changed_names)):
            dirty.update(i for (i,) in conn.execute(
                "SELECT id FROM analytics_fact_actors WHERE actor IN (SELECT value FROM json_each(?))",
                (_json_list(chunk),)))
        if len(dirty) > _SMALL and len(dirty) > FULL_REBUILD_SHARE * facts_now:
            return self._plan_full(conn, clock, max_pk)
        plan.dirty = dirty
        plan.facts = _recompute(conn, dirty, actor_versions)
        return plan

    def _plan_full(self, conn: sqlite3.Connection, clock: int, max_pk: int) -> _Plan:
        plan = _Plan(clock, max_pk, full=True, versions=0)
        pk_of: dict[str, int] = {}

        def stream() -> Iterator[StoredVersion]:
            cursor = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM objects o WHERE o.is_latest = 1 ORDER BY o.pk")
            while rows := cursor.fetchmany(2000):
                for row in rows:
                    pk, version = _version(row)
                    plan.versions += 1
                    plan.object_counts[(version.type, version.tlp or "unmarked")] += 1
                    if version.type in COUNTABLE:
                        pk_of[version.id] = pk
                    yield version

        base = build_facts(stream())
        plan.facts = [(pk_of[f.id], f) for facts in base.facts.values() for f in facts]
        plan.actors = {actor_id: (canonical, base.actors.aliases.get(canonical, ()),
                                  base.actor_sponsors.get(canonical, ()))
                       for actor_id, canonical in base.actors.canonical_by_id.items()}
        return plan

    def _apply(self, conn: sqlite3.Connection, plan: _Plan) -> int:
        counts: Counter[CountKey] = Counter()
        if plan.full:
            for table in ("analytics_facts", "analytics_fact_actors", "analytics_counts", "analytics_object_counts"):
                conn.execute(f"DELETE FROM {table}")
        else:
            old_links: list[tuple[str, str]] = []
            dirty = sorted(plan.dirty)
            for chunk in _chunks(dirty):
                for row in conn.execute(f"SELECT {_FACT_COLUMNS} FROM analytics_facts"
                                        " WHERE id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)):
                    old = _row_fact(row)
                    counts.subtract(contributions(old))
                    old_links.extend((actor, old.id) for actor in old.actor)
                conn.execute("DELETE FROM analytics_facts WHERE id IN (SELECT value FROM json_each(?))",
                             (_json_list(chunk),))
            conn.executemany("DELETE FROM analytics_fact_actors WHERE actor = ? AND id = ?", old_links)
        conn.executemany(f"INSERT INTO analytics_facts ({_FACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (_fact_row(pk, fact) for pk, fact in plan.facts))
        conn.executemany("INSERT INTO analytics_fact_actors (actor, id) VALUES (?, ?)",
                         ((actor, fact.id) for _, fact in plan.facts for actor in fact.actor))
        for _, fact in plan.facts:
            counts.update(contributions(fact))
        conn.executemany(
            "INSERT INTO analytics_counts (kind, field, value, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, field, value) DO UPDATE SET n = n + excluded.n",
            ((k, f, v, n) for (k, f, v), n in counts.items() if n))
        conn.execute("DELETE FROM analytics_counts WHERE n = 0")
        conn.executemany(
            "INSERT INTO analytics_object_counts (type, tlp, n) VALUES (?, ?, ?)"
            " ON CONFLICT (type, tlp) DO UPDATE SET n = n + excluded.n",
            ((t, tlp, n) for (t, tlp), n in plan.object_counts.items() if n))
        conn.execute("DELETE FROM analytics_object_counts WHERE n <= 0")
        conn.execute("DELETE FROM analytics_actors")
        conn.executemany("INSERT INTO analytics_actors (actor_id, canonical, aliases, sponsors) VALUES (?, ?, ?, ?)",
                         ((actor_id, canonical, _json_list(aliases), _json_list(sponsors))
                          for actor_id, (canonical, aliases, sponsors) in plan.actors.items()))
        conn.execute("UPDATE analytics_state SET date_added = ?, object_pk = ?, refreshed = ?",
                     (plan.clock, plan.max_pk, time.time_ns() // 1000))
        return len(plan.facts)

    # -- reading ---------------------------------------------------------------------------

    def load_facts(self, kind: str, *, collection_id: str | None = None) -> list[Fact]:
        kind = KINDS.get(kind, kind)
        sql = f"SELECT {_FACT_COLUMNS} FROM analytics_facts f WHERE f.kind = ?"
        params: tuple[str, ...] = (kind,)
        if collection_id is not None:
            sql += (" AND EXISTS (SELECT 1 FROM objects o JOIN memberships m ON m.pk = o.pk"
                    " WHERE o.id = f.id AND m.collection_id = ?)")
            params = (kind, collection_id)
        with self._reading() as conn:
            rows = conn.execute(sql + " ORDER BY f.pk", params).fetchall()
        return [_row_fact(r) for r in rows]

    def facts_by_id(self, object_ids: Sequence[str]) -> dict[str, Fact]:
        found: dict[str, Fact] = {}
        with self._reading() as conn:
            for chunk in _chunks(list(dict.fromkeys(object_ids))):
                for row in conn.execute(f"SELECT {_FACT_COLUMNS} FROM analytics_facts"
                                        " WHERE id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)):
                    found[row[1]] = _row_fact(row)
        return found

    def fact_summary(self) -> FactSummary:
        with self._reading() as conn:
            objects = {(t, tlp): n for t, tlp, n in conn.execute("SELECT type, tlp, n FROM analytics_object_counts")}
            counts = {(k, f, v): n for k, f, v, n in conn.execute("SELECT kind, field, value, n FROM analytics_counts")}
            # Newest dated sightings first, ties in stored order; the index gives the newest days,
            # then the rows of those days are ordered by pk.
            newest = conn.execute(
                "SELECT day FROM analytics_facts WHERE kind = 'sighting' AND day IS NOT NULL"
                " ORDER BY day DESC LIMIT ?", (RECENT_SIGHTINGS,)).fetchall()
            recent: list[str] = []
            if newest:
                recent = [i for (i,) in conn.execute(
                    "SELECT id FROM analytics_facts WHERE kind = 'sighting' AND day >= ?"
                    " ORDER BY day DESC, pk LIMIT ?", (newest[-1][0], RECENT_SIGHTINGS))]
            if len(recent) < RECENT_SIGHTINGS:
                recent += [i for (i,) in conn.execute(
                    "SELECT id FROM analytics_facts WHERE kind = 'sighting' AND day IS NULL ORDER BY pk LIMIT ?",
                    (RECENT_SIGHTINGS - len(recent),))]
        return FactSummary(objects, counts, tuple(recent))

    def fact_actors(self) -> tuple[ActorIndex, dict[str, tuple[str, ...]]]:
        with self._reading() as conn:
            rows = conn.execute("SELECT actor_id, canonical, aliases, sponsors FROM analytics_actors").fetchall()
        index = ActorIndex.from_groups((r[0], r[1], tuple(orjson.loads(r[2]))) for r in rows)
        sponsors = {r[1]: tuple(orjson.loads(r[3])) for r in rows}
        return index, sponsors


# -- the incremental refresh's reads, on one snapshot ------------------------------------------


def _latest(conn: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[int, StoredVersion]]:
    out: list[tuple[int, StoredVersion]] = []
    for chunk in _chunks(list(ids)):
        out.extend(_version(r) for r in conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM objects o WHERE o.is_latest = 1"
            " AND o.id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)))
    return out


def _latest_types(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
    types: dict[str, str] = {}
    for chunk in _chunks(list(ids)):
        types.update(conn.execute("SELECT id, type FROM objects WHERE is_latest = 1"
                                  " AND id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)))
    return types


def _out_relationships(conn: sqlite3.Connection, sources: Sequence[str]) -> list[tuple[int, StoredVersion]]:
    """Latest relationships whose source is one of `sources` and whose type can carry a breakdown value."""
    out: list[tuple[int, StoredVersion]] = []
    for chunk in _chunks(list(sources)):
        for row in conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM refs r JOIN objects o ON o.pk = r.pk"
            # The unary + keep the planner on refs_target: the type index would walk every relationship.
            " WHERE r.path = 'source_ref' AND r.target IN (SELECT value FROM json_each(?))"
            " AND +o.is_latest = 1 AND +o.type = 'relationship'", (_json_list(chunk),)):
            pk, version = _version(row)
            if orjson.loads(version.json).get("relationship_type") in _RELEVANT_RELATIONSHIPS:
                out.append((pk, version))
    return out


def _targets(version: StoredVersion) -> list[str]:
    data = orjson.loads(version.json)
    if version.type == "relationship":
        target = data.get("target_ref")
        return [target] if isinstance(target, str) else []
    if version.type == "sighting":
        refs = [data.get("sighting_of_ref")]
        where = data.get("where_sighted_refs")
        refs += where if isinstance(where, list) else []
        return [r for r in refs if isinstance(r, str)]
    return []


def _actor_graph(conn: sqlite3.Connection) -> list[tuple[int, StoredVersion]]:
    """Every actor, its relevant out-edges and their targets: what actor names and sponsors come from."""
    actors = [_version(r) for r in conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM objects o WHERE o.type IN ('intrusion-set', 'threat-actor')"
        " AND o.is_latest = 1 ORDER BY o.pk")]
    edges = _out_relationships(conn, [v.id for _, v in actors])
    known = {v.id for _, v in actors}
    targets = sorted({t for _, v in edges for t in _targets(v)} - known)
    return actors + edges + _latest(conn, targets)


def _actor_rows(graph: list[StoredVersion]) -> dict[str, ActorRow]:
    base = build_facts(graph)
    return {actor_id: (canonical, base.actors.aliases.get(canonical, ()), base.actor_sponsors.get(canonical, ()))
            for actor_id, canonical in base.actors.canonical_by_id.items()}


def _object_count_deltas(conn: sqlite3.Connection, ids: Sequence[str], old_pk: int) -> Counter[tuple[str, str]]:
    """Latest objects by (type, TLP): minus each id's latest version at the last refresh (the greatest
    version among pks it had seen), plus its latest version now."""
    deltas: Counter[tuple[str, str]] = Counter()
    for chunk in _chunks(list(ids)):
        versions: dict[str, list[tuple[str, int, str, str, bool]]] = {}
        for object_id, pk, version, kind, tlp, is_latest in conn.execute(
            "SELECT id, pk, version, type, tlp, is_latest FROM objects WHERE id IN (SELECT value FROM json_each(?))",
            (_json_list(chunk),)):
            versions.setdefault(object_id, []).append((version, pk, kind, tlp or "unmarked", bool(is_latest)))
        for rows in versions.values():
            before = [r for r in rows if r[1] <= old_pk]
            if before:
                old = max(before)
                deltas[(old[2], old[3])] -= 1
            for row in rows:
                if row[4]:
                    deltas[(row[2], row[3])] += 1
    return deltas


def _referrers(conn: sqlite3.Connection, frontier: set[str]) -> set[str]:
    """Countable objects whose facts read something in `frontier`, transitively (see the module docstring)."""
    dirty: set[str] = set()
    seen = set(frontier)
    level = sorted(frontier)
    while level:
        candidates: set[str] = set()
        for chunk in _chunks(level):
            for object_id, kind, path, source in conn.execute(
                "SELECT o.id, o.type, r.path, (SELECT s.target FROM refs s WHERE s.pk = o.pk AND s.path = 'source_ref')"
                " FROM refs r JOIN objects o ON o.pk = r.pk"
                " WHERE r.target IN (SELECT value FROM json_each(?)) AND o.is_latest = 1"
                " AND r.path IN ('target_ref', 'sighting_of_ref', 'where_sighted_refs', 'object_refs')",
                (_json_list(chunk),)):
                if kind == "relationship":
                    if path == "target_ref" and isinstance(source, str):
                        candidates.add(source)
                elif kind in COUNTABLE:
                    candidates.add(object_id)
        types = _latest_types(conn, sorted(candidates - seen))
        level = []
        for object_id, kind in types.items():
            seen.add(object_id)
            if kind in COUNTABLE:
                dirty.add(object_id)
            if kind in _FEEDS_OTHERS:
                level.append(object_id)
        level.sort()
    return dirty


def _recompute(conn: sqlite3.Connection, dirty: set[str],
               actor_graph: list[tuple[int, StoredVersion]]) -> list[tuple[int, Fact]]:
    """The facts of `dirty`, by `build_facts` over their neighbourhood and the actor graph."""
    if not dirty:
        return []
    loaded: dict[str, tuple[int, StoredVersion]] = {v.id: (pk, v) for pk, v in actor_graph}
    expanded: set[str] = set()
    level = sorted(dirty)
    first = True
    while level:
        for pk, v in _latest(conn, [i for i in level if i not in loaded]):
            loaded[v.id] = (pk, v)
        # The dirty objects' own out-edges, and those of the targets whose facts feed theirs.
        expand = [loaded[i][1] for i in level if i in loaded and (first or loaded[i][1].type in _EXPANDED)]
        expanded.update(v.id for v in expand)
        following: set[str] = set()
        for pk, v in _out_relationships(conn, [v.id for v in expand]):
            loaded.setdefault(v.id, (pk, v))
            following.update(_targets(v))
        for v in expand:
            following.update(_targets(v))
        level = sorted(following - expanded)
        first = False
    ordered = sorted(loaded.values(), key=lambda pair: pair[0])
    pk_of = {v.id: pk for pk, v in ordered}
    base = build_facts(v for _, v in ordered)
    return [(pk_of[f.id], f) for facts in base.facts.values() for f in facts if f.id in dirty]
