"""The analytics fact table of the SQLite store: one row per counted object, kept up to date incrementally.

A mixin of `SQLiteStore`, like `sqlite_peers`; the tables come from migration
`0005_analytics_facts`:

- analytics_facts: one row per countable object (incident, campaign, report,
  indicator, sighting) for its latest version (`pk` = objects.pk), with every
  breakdown value resolved exactly as `analytics.facts.build_facts` resolves
  it over the whole store (multi-valued fields joined with U+001F).
- analytics_fact_actors: (canonical actor name, fact id), so that the facts
  naming an actor are recomputed when its name or sponsor changes.
- analytics_actors: the alias-merged actor index the facts were named with
  (and the reach of each actor's merged group).
- analytics_counts / analytics_object_counts: the counts of
  `analytics.summary.FactSummary`, moved by +1/-1 as facts are replaced, and
  the latest objects by (type, TLP): what the dashboard overview reads.
- analytics_state: the watermark: the clock (`memberships.date_added`, which
  every stored version, re-stamp and in-place rewrite moves) and the greatest
  objects.pk at the last refresh; and the redaction settings the ALTERED
  class was computed with (other settings rebuild the table).

Reach (migration 0007, analytics/visibility.py, store/sqlite_reach.py): every
fact row carries the reach of everything it was built from (`reach`, an id
into analytics_reaches: own class and class set, over analytics_classes);
analytics_reach_counts holds the counts of analytics_counts once more, keyed
also by reach; analytics_object_reach holds every latest object's own reach
(own class and the classes of its held ref targets), and
analytics_reach_object_counts its (type, TLP, reach) totals. A recipient
other than the operator sums the counts of the reaches it may see whole and
recomputes the rest through the egress path (web/dashboard/view.py), and
keeps what it rebuilt per view (store/sqlite_views.py): an entry is current
while the `stamp` of its fact or object-reach row (the clock of the refresh
that last wrote that row) is the one it was kept under. A full rebuild
empties the view tables.

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
name, sponsors or reach changed; and, since a version's reach holds the
classes of its ref targets, every latest version that refers to something
stored since is treated as stored again (its reach, and the facts it feeds,
are recomputed). They are recomputed by `build_facts` over their
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
rebuild (`refresh_facts(full=True)`) (its reach row is rewritten, with its TLP).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson

from threatmesh.analytics.actors import ActorIndex
from threatmesh.analytics.facts import ATTRIBUTION, INDICATES, KINDS, ORIGIN, VICTIM, Fact, Reach, build_facts
from threatmesh.analytics.summary import RECENT_SIGHTINGS, CountKey, FactSummary, contributions
from threatmesh.analytics.visibility import ALTERED, Kept, ReachTables, redaction_digest, text_altered
from threatmesh.share.redact import RedactionSettings
from threatmesh.store.protocol import FactsRefresh, StoredVersion
from threatmesh.store import sqlite_views
from threatmesh.store.sqlite_reach import ClassMemo, Numbering, Placed, all_placed, decode_class, placed_of, referrers
from threatmesh.store.sqlite_rows import (
    FACT_COLUMNS as _FACT_COLUMNS,
    VERSION_COLUMNS as _VERSION_COLUMNS,
    chunks as _chunks,
    fact_row as _fact_row,
    json_list as _json_list,
    row_fact as _row_fact,
    version_of as _version,
)

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

ActorRow = tuple[str, tuple[str, ...], tuple[str, ...], int]  # canonical, aliases, sponsors, group reach


def _settings_text(settings: RedactionSettings) -> str:
    return orjson.dumps({"enabled": settings.enabled, "internal_domains": list(settings.internal_domains),
                         "internal_networks": list(settings.internal_networks)}).decode()


def _settings_of(text: str) -> RedactionSettings:
    if not text:
        return RedactionSettings()
    data = orjson.loads(text)
    return RedactionSettings(enabled=bool(data["enabled"]), internal_domains=tuple(data["internal_domains"]),
                             internal_networks=tuple(data["internal_networks"]))


@dataclass(slots=True)
class _Visibility:
    """Classes and reaches for one plan: numbering, the redaction check, and the reach of ids read."""

    numbering: Numbering
    redaction: RedactionSettings
    memo: ClassMemo
    placed: dict[str, Placed] = field(default_factory=dict)  # incremental: ids looked up so far

    @classmethod
    def read(cls, conn: sqlite3.Connection, redaction: RedactionSettings) -> _Visibility:
        numbering = Numbering.read(conn)
        return cls(numbering, redaction, ClassMemo(numbering))

    def place(self, conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i not in self.placed]
        if wanted:
            self.placed.update(placed_of(conn, wanted, self.memo))

    def reach(self) -> Reach:
        """build_facts' view of the ids placed so far."""
        empty: frozenset[int] = frozenset()

        def of(object_id: str) -> frozenset[int]:
            found = self.placed.get(object_id)
            return found.classes if found is not None else empty

        return Reach(of, self.altered, ALTERED)

    def altered(self, obj: dict[str, Any]) -> bool:
        return text_altered(obj, self.redaction)


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
    numbering: Numbering = field(default_factory=Numbering)
    redaction: str = ""
    reaches: dict[int, int] = field(default_factory=dict)  # fact pk -> reach id
    object_reach: list[tuple[int, str, str, int]] = field(default_factory=list)  # (pk, type, tlp, reach)
    replaced: list[str] = field(default_factory=list)  # incremental: ids whose object reach rows are replaced


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

    def refresh_facts(self, *, full: bool = False, redaction: RedactionSettings | None = None) -> FactsRefresh:
        started = time.perf_counter()
        with self._facts_lock():
            for _ in range(_ATTEMPTS):
                with self._reading() as conn:
                    state = tuple(conn.execute("SELECT date_added, object_pk, redaction FROM analytics_state")
                                  .fetchone())
                    (clock,) = conn.execute("SELECT last_date_added FROM clock").fetchone()
                settings = _settings_of(state[2]) if redaction is None else redaction
                # The ALTERED class depends on the redaction settings: others mean a rebuild.
                rebuild = full or (state[0] != 0 and redaction_digest(settings) != redaction_digest(
                    _settings_of(state[2])))
                if state[0] == clock and not rebuild:
                    return FactsRefresh(current=True, seconds=time.perf_counter() - started)
                if self._writer is None:
                    return FactsRefresh(current=False, seconds=time.perf_counter() - started)
                snapshot = self._connect(writable=False)
                try:
                    snapshot.execute("BEGIN")
                    plan = self._plan(snapshot, state[0], state[1], rebuild, settings)
                finally:
                    snapshot.close()
                with self._writing() as conn:
                    if tuple(conn.execute("SELECT date_added, object_pk, redaction FROM analytics_state")
                             .fetchone()) != state:
                        continue  # another process refreshed meanwhile: plan again from its watermark
                    written = self._apply(conn, plan)
                return FactsRefresh(current=True, full=plan.full, versions=plan.versions, recomputed=written,
                                    seconds=time.perf_counter() - started)
        return FactsRefresh(current=False, seconds=time.perf_counter() - started)

    def _plan(self, conn: sqlite3.Connection, since: int, old_pk: int, full: bool,
              redaction: RedactionSettings) -> _Plan:
        (clock,) = conn.execute("SELECT last_date_added FROM clock").fetchone()
        (max_pk,) = conn.execute("SELECT coalesce(max(pk), 0) FROM objects").fetchone()
        seen = _Visibility.read(conn, redaction)
        if since == 0 or full:
            return self._plan_full(conn, clock, max_pk, seen)
        touched: list[tuple[int, str, str]] = []  # (pk, id, type) of versions stored or re-stamped since
        pks: list[int] = []
        for (collection_id,) in conn.execute("SELECT id FROM collections").fetchall():
            pks.extend(pk for (pk,) in conn.execute(
                "SELECT pk FROM memberships WHERE collection_id = ? AND date_added > ?", (collection_id, since)))
        (facts_now,) = conn.execute("SELECT coalesce(sum(n), 0) FROM analytics_counts WHERE field = 'total'").fetchone()
        if len(pks) > _SMALL and len(pks) > FULL_REBUILD_SHARE * max_pk:
            return self._plan_full(conn, clock, max_pk, seen)
        for chunk in _chunks(sorted(set(pks))):
            touched.extend(conn.execute(
                "SELECT pk, id, type FROM objects WHERE pk IN (SELECT value FROM json_each(?))", (_json_list(chunk),)))
        plan = _Plan(clock, max_pk, full=False, versions=len(pks), numbering=seen.numbering,
                     redaction=_settings_text(redaction))
        ids = list(dict.fromkeys(object_id for _, object_id, _ in touched))
        plan.object_counts = _object_count_deltas(conn, ids, old_pk)
        # What refers to a version stored since has a new reach (the classes of its targets moved):
        # it is placed again, and what it feeds is recomputed as if it had been stored now.
        known = {pk for pk, _, _ in touched}
        touched.extend(row for row in referrers(conn, ids) if row[0] not in known)
        ids = list(dict.fromkeys(object_id for _, object_id, _ in touched))
        seen.place(conn, ids)
        plan.replaced = ids
        plan.object_reach = [(p.pk, p.type, p.tlp, seen.numbering.of_reach(p.own, p.classes))
                             for p in (seen.placed.get(i) for i in ids) if p is not None]

        actor_versions = _actor_graph(conn)
        seen.place(conn, [v.id for _, v in actor_versions])
        plan.actors = _actor_rows([v for _, v in actor_versions], seen)
        old_actors = {row[0]: (row[1], tuple(orjson.loads(row[3])), row[4]) for row in conn.execute(
            "SELECT actor_id, canonical, aliases, sponsors, reach FROM analytics_actors")}
        changed_names: set[str] = set()
        frontier: set[str] = set()
        for actor_id in set(old_actors) | set(plan.actors):
            before = old_actors.get(actor_id)
            now = plan.actors.get(actor_id)
            after = (now[0], now[2], now[3]) if now else None
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
            return self._plan_full(conn, clock, max_pk, _Visibility.read(conn, redaction))
        plan.dirty = dirty
        plan.facts = _recompute(conn, dirty, actor_versions, seen, plan.reaches)
        return plan

    def _plan_full(self, conn: sqlite3.Connection, clock: int, max_pk: int, seen: _Visibility) -> _Plan:
        plan = _Plan(clock, max_pk, full=True, versions=0, numbering=seen.numbering,
                     redaction=_settings_text(seen.redaction))
        pk_of: dict[str, int] = {}
        own_by_id, extra_by_pk = all_placed(conn, seen.memo)
        classes_by_id: dict[str, frozenset[int]] = {}
        singles: dict[int, frozenset[int]] = {}
        of_reach = seen.numbering.of_reach

        def stream() -> Iterator[StoredVersion]:
            cursor = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM objects o WHERE o.is_latest = 1 ORDER BY o.pk")
            while rows := cursor.fetchmany(2000):
                for row in rows:
                    pk, version = _version(row)
                    plan.versions += 1
                    tlp = version.tlp or "unmarked"
                    plan.object_counts[(version.type, tlp)] += 1
                    own = own_by_id[version.id]
                    alone = singles.get(own) or singles.setdefault(own, frozenset((own,)))
                    extra = extra_by_pk.get(pk)
                    classes = alone if extra is None else alone | extra
                    classes_by_id[version.id] = classes
                    plan.object_reach.append((pk, version.type, tlp, of_reach(own, classes)))
                    if version.type in COUNTABLE:
                        pk_of[version.id] = pk
                    yield version

        empty: frozenset[int] = frozenset()
        base = build_facts(stream(), reach=Reach(lambda i: classes_by_id.get(i, empty), seen.altered, ALTERED))
        plan.facts = [(pk_of[f.id], f) for facts in base.facts.values() for f in facts]
        plan.reaches = {pk_of[i]: of_reach(own_by_id[i], classes) for i, classes in base.reach.items()}
        plan.actors = {actor_id: (canonical, base.actors.aliases.get(canonical, ()),
                                  base.actor_sponsors.get(canonical, ()),
                                  of_reach(own_by_id[actor_id], base.actor_reach.get(canonical, empty)))
                       for actor_id, canonical in base.actors.canonical_by_id.items()}
        return plan

    def _apply(self, conn: sqlite3.Connection, plan: _Plan) -> int:
        counts: Counter[CountKey] = Counter()
        reach_counts: Counter[tuple[str, str, str, int]] = Counter()
        object_reach_counts: Counter[tuple[str, str, int]] = Counter()
        plan.numbering.write(conn)
        if plan.full:
            for table in ("analytics_facts", "analytics_fact_actors", "analytics_counts", "analytics_object_counts",
                          "analytics_reach_counts", "analytics_object_reach", "analytics_reach_object_counts",
                          *sqlite_views.VIEW_TABLES):
                conn.execute(f"DELETE FROM {table}")
        else:
            old_links: list[tuple[str, str]] = []
            dirty = sorted(plan.dirty)
            for chunk in _chunks(dirty):
                for row in conn.execute(f"SELECT {_FACT_COLUMNS} FROM analytics_facts"
                                        " WHERE id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)):
                    old = _row_fact(row)
                    for key in contributions(old):
                        counts[key] -= 1
                        reach_counts[(*key, row[13])] -= 1
                    old_links.extend((actor, old.id) for actor in old.actor)
                conn.execute("DELETE FROM analytics_facts WHERE id IN (SELECT value FROM json_each(?))",
                             (_json_list(chunk),))
            conn.executemany("DELETE FROM analytics_fact_actors WHERE actor = ? AND id = ?", old_links)
            for chunk in _chunks(plan.replaced):
                # Every version of the id: its reach row may sit on an older pk than its latest now.
                pks = [pk for (pk,) in conn.execute("SELECT pk FROM objects WHERE id IN (SELECT value FROM json_each(?))",
                                                    (_json_list(chunk),))]
                for pk_chunk in _chunks(pks):
                    for t, tlp, reach in conn.execute(
                            "SELECT type, tlp, reach FROM analytics_object_reach WHERE pk IN (SELECT value FROM json_each(?))",
                            (_json_list(pk_chunk),)):
                        object_reach_counts[(t, tlp, reach)] -= 1
                    conn.execute("DELETE FROM analytics_object_reach WHERE pk IN (SELECT value FROM json_each(?))",
                                 (_json_list(pk_chunk),))
        conn.executemany("INSERT INTO analytics_object_reach (pk, type, tlp, reach, stamp) VALUES (?, ?, ?, ?, ?)",
                         ((*row, plan.clock) for row in plan.object_reach))
        for _, t, tlp, reach in plan.object_reach:
            object_reach_counts[(t, tlp, reach)] += 1
        conn.executemany(f"INSERT INTO analytics_facts ({_FACT_COLUMNS})"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (_fact_row(pk, fact, plan.reaches[pk], plan.clock) for pk, fact in plan.facts))
        conn.executemany("INSERT INTO analytics_fact_actors (actor, id) VALUES (?, ?)",
                         ((actor, fact.id) for _, fact in plan.facts for actor in fact.actor))
        for pk, fact in plan.facts:
            reach = plan.reaches[pk]
            for key in contributions(fact):
                counts[key] += 1
                reach_counts[(*key, reach)] += 1
        conn.executemany(
            "INSERT INTO analytics_counts (kind, field, value, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, field, value) DO UPDATE SET n = n + excluded.n",
            ((k, f, v, n) for (k, f, v), n in counts.items() if n))
        conn.execute("DELETE FROM analytics_counts WHERE n = 0")
        conn.executemany(
            "INSERT INTO analytics_reach_counts (kind, field, value, reach, n) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (kind, field, value, reach) DO UPDATE SET n = n + excluded.n",
            ((k, f, v, r, n) for (k, f, v, r), n in reach_counts.items() if n))
        conn.execute("DELETE FROM analytics_reach_counts WHERE n = 0")
        conn.executemany(
            "INSERT INTO analytics_reach_object_counts (type, tlp, reach, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (type, tlp, reach) DO UPDATE SET n = n + excluded.n",
            ((t, tlp, r, n) for (t, tlp, r), n in object_reach_counts.items() if n))
        conn.execute("DELETE FROM analytics_reach_object_counts WHERE n <= 0")
        conn.executemany(
            "INSERT INTO analytics_object_counts (type, tlp, n) VALUES (?, ?, ?)"
            " ON CONFLICT (type, tlp) DO UPDATE SET n = n + excluded.n",
            ((t, tlp, n) for (t, tlp), n in plan.object_counts.items() if n))
        conn.execute("DELETE FROM analytics_object_counts WHERE n <= 0")
        conn.execute("DELETE FROM analytics_actors")
        conn.executemany("INSERT INTO analytics_actors (actor_id, canonical, aliases, sponsors, reach)"
                         " VALUES (?, ?, ?, ?, ?)",
                         ((actor_id, canonical, _json_list(aliases), _json_list(sponsors), reach)
                          for actor_id, (canonical, aliases, sponsors, reach) in plan.actors.items()))
        conn.execute("UPDATE analytics_state SET date_added = ?, object_pk = ?, refreshed = ?, redaction = ?",
                     (plan.clock, plan.max_pk, time.time_ns() // 1000, plan.redaction))
        return len(plan.facts)

    # -- reading ---------------------------------------------------------------------------

    def load_facts(self, kind: str, *, collection_id: str | None = None,
                   reaches: Collection[int] | None = None) -> list[Fact]:
        kind = KINDS.get(kind, kind)
        sql = f"SELECT {_FACT_COLUMNS} FROM analytics_facts f WHERE f.kind = ?"
        params: list[Any] = [kind]
        if collection_id is not None:
            sql += (" AND EXISTS (SELECT 1 FROM objects o JOIN memberships m ON m.pk = o.pk"
                    " WHERE o.id = f.id AND m.collection_id = ?)")
            params.append(collection_id)
        if reaches is not None:
            sql += " AND f.reach IN (SELECT value FROM json_each(?))"
            params.append(_json_list(sorted(reaches)))
        with self._reading() as conn:
            rows = conn.execute(sql + " ORDER BY f.pk", params).fetchall()
        return [_row_fact(r) for r in rows]

    def facts_by_id(self, object_ids: Sequence[str], *, reaches: Collection[int] | None = None) -> dict[str, Fact]:
        found: dict[str, Fact] = {}
        with self._reading() as conn:
            for chunk in _chunks(list(dict.fromkeys(object_ids))):
                for row in conn.execute(f"SELECT {_FACT_COLUMNS} FROM analytics_facts"
                                        " WHERE id IN (SELECT value FROM json_each(?))", (_json_list(chunk),)):
                    if reaches is None or row[13] in reaches:
                        found[row[1]] = _row_fact(row)
        return found

    def fact_summary(self, *, reaches: Collection[int] | None = None, view: str | None = None) -> FactSummary:
        """The pre-aggregated counts; with `reaches`, only those of the objects and facts whose reach
        is one of them, plus the kept entries of `view` (recent sightings among both)."""
        with self._reading() as conn:
            if reaches is None:
                objects = {(t, tlp): n for t, tlp, n in conn.execute(
                    "SELECT type, tlp, n FROM analytics_object_counts")}
                counts = {(k, f, v): n for k, f, v, n in conn.execute(
                    "SELECT kind, field, value, n FROM analytics_counts")}
                where, params = "", []
            else:
                chosen = _json_list(sorted(reaches))
                objects = {(t, tlp): n for t, tlp, n in conn.execute(
                    "SELECT type, tlp, sum(n) FROM analytics_reach_object_counts"
                    " WHERE reach IN (SELECT value FROM json_each(?)) GROUP BY type, tlp", (chosen,))}
                counts = {(k, f, v): n for k, f, v, n in conn.execute(
                    "SELECT kind, field, value, sum(n) FROM analytics_reach_counts"
                    " WHERE reach IN (SELECT value FROM json_each(?)) GROUP BY kind, field, value", (chosen,))}
                where = " AND (reach IN (SELECT value FROM json_each(?))"
                params = [chosen]
                if view is not None:
                    more_objects, more_counts = sqlite_views.view_counts(conn, view)
                    for key, n in more_objects.items():
                        objects[key] = objects.get(key, 0) + n
                    for count_key, n in more_counts.items():
                        counts[count_key] = counts.get(count_key, 0) + n
                    where += (" OR id IN (SELECT id FROM analytics_view_facts WHERE view = ?"
                              " AND fact IS NOT NULL)")
                    params.append(view)
                where += ")"
            # Newest dated sightings first, ties in stored order; the index gives the newest days,
            # then the rows of those days are ordered by pk.
            newest = conn.execute(
                "SELECT day FROM analytics_facts WHERE kind = 'sighting' AND day IS NOT NULL" + where +
                " ORDER BY day DESC LIMIT ?", (*params, RECENT_SIGHTINGS)).fetchall()
            recent: list[str] = []
            if newest:
                recent = [i for (i,) in conn.execute(
                    "SELECT id FROM analytics_facts WHERE kind = 'sighting' AND day >= ?" + where +
                    " ORDER BY day DESC, pk LIMIT ?", (newest[-1][0], *params, RECENT_SIGHTINGS))]
            if len(recent) < RECENT_SIGHTINGS:
                recent += [i for (i,) in conn.execute(
                    "SELECT id FROM analytics_facts WHERE kind = 'sighting' AND day IS NULL" + where +
                    " ORDER BY pk LIMIT ?", (*params, RECENT_SIGHTINGS - len(recent)))]
        return FactSummary(objects, counts, tuple(recent))

    def reach_tables(self) -> ReachTables:
        with self._reading() as conn:
            classes = {i: decode_class(key) for i, key in conn.execute("SELECT id, key FROM analytics_classes")
                       if i != ALTERED}
            reaches = {i: (own, frozenset(orjson.loads(c)))
                       for i, own, c in conn.execute("SELECT id, own, classes FROM analytics_reaches")}
            objects = {r: n for r, n in conn.execute(
                "SELECT reach, sum(n) FROM analytics_reach_object_counts GROUP BY reach")}
            facts = {r: n for r, n in conn.execute(
                "SELECT reach, n FROM analytics_reach_counts WHERE field = 'total'")}
        return ReachTables(classes, reaches, objects, facts)

    def kept_view(self, view: str, reaches: Collection[int]) -> Kept:
        with self._reading() as conn:
            return sqlite_views.kept(conn, view, reaches)

    def keep_view(self, view: str, clock: int, facts: Sequence[tuple[int, str, int, Fact | None]],
                  objects: Sequence[tuple[int, int, str, str, bool]]) -> None:
        if self._writer is None:
            return
        with self._writing() as conn:
            sqlite_views.keep(conn, view, clock, facts, objects)

    def kept_facts(self, view: str) -> dict[str, Fact | None]:
        with self._reading() as conn:
            return sqlite_views.kept_facts(conn, view)

    def fact_neighbourhood(self, object_ids: Sequence[str]) -> list[tuple[StoredVersion, int]]:
        with self._reading() as conn:
            ordered = _neighbourhood(conn, set(object_ids), _actor_graph(conn))
            reach: dict[int, int] = {}
            for chunk in _chunks([pk for pk, _ in ordered]):
                reach.update(conn.execute("SELECT pk, reach FROM analytics_object_reach"
                                          " WHERE pk IN (SELECT value FROM json_each(?))", (_json_list(chunk),)))
        return [(v, reach.get(pk, -1)) for pk, v in ordered]

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


def _actor_rows(graph: list[StoredVersion], seen: _Visibility) -> dict[str, ActorRow]:
    base = build_facts(graph, reach=seen.reach())
    empty: frozenset[int] = frozenset()
    return {actor_id: (canonical, base.actors.aliases.get(canonical, ()), base.actor_sponsors.get(canonical, ()),
                       seen.numbering.of_reach(seen.placed[actor_id].own, base.actor_reach.get(canonical, empty)))
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


def _recompute(conn: sqlite3.Connection, dirty: set[str], actor_graph: list[tuple[int, StoredVersion]],
               seen: _Visibility, reaches: dict[int, int]) -> list[tuple[int, Fact]]:
    """The facts of `dirty`, by `build_facts` over their neighbourhood and the actor graph; their
    reach ids go to `reaches` (by fact pk)."""
    if not dirty:
        return []
    ordered = _neighbourhood(conn, dirty, actor_graph)
    pk_of = {v.id: pk for pk, v in ordered}
    seen.place(conn, pk_of)
    base = build_facts((v for _, v in ordered), reach=seen.reach())
    out = [(pk_of[f.id], f) for facts in base.facts.values() for f in facts if f.id in dirty]
    for pk, fact in out:
        reaches[pk] = seen.numbering.of_reach(seen.placed[fact.id].own, base.reach[fact.id])
    return out


def _neighbourhood(conn: sqlite3.Connection, dirty: set[str],
                   actor_graph: list[tuple[int, StoredVersion]]) -> list[tuple[int, StoredVersion]]:
    """What `build_facts` reads for the facts of `dirty`: their objects, relevant out-edges and targets
    (transitively through identities, campaigns and indicators), and the actor graph; in pk order."""
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
    return sorted(loaded.values(), key=lambda pair: pair[0])
