"""What one signed-in person may see, read through the node's one egress path.

An admin account is the operator and sees everything. Any other account sees
what the egress policy lets go to the recipient it stands for in the TAXII API
(`taxii.access.recipient_for`): every read of this package goes through
`share.outbound.Outbound` (single objects, versions, neighbours, search
results) or `export.select.outgoing` (the whole-store figures), so the
dashboard cannot show what a TAXII GET by the same account would withhold,
and it shows redacted copies where that GET would send them.

The whole-store figures (counts, analytics facts): the operator's come from
the store's fact table, which a refresh brings up to date by reading only what
was stored since the last one (store/sqlite_facts.py), and its pre-aggregated
counts. Any other account's must equal a pass over the store through the
egress path (what they may not see must not be counted), and come from the
same table through reaches (analytics/visibility.py): the counts of every
reach the policy lets go whole to the recipient are summed as they are; the
facts and objects whose own class may go but something behind them may not
(an incident at CLEAR attributed through a RED relationship) are read with
their neighbourhood through `Outbound` and rebuilt by `build_facts`; the
rest is withheld. What was rebuilt is kept in the store per view (recipient,
node default TLP, redaction settings: `Store.keep_view`) and read back while
the fact or object row it came from is unchanged, so that only what an ingest
changed is rebuilt, in this process or the next. The actor index is rebuilt
each time from the actor graph (small) through the path. `pass_snapshot` is
that full pass, kept as the reference (tests compare the two) and as the
fallback where the table cannot serve: a read-only store behind, or
anonymised sightings (which rewrite the victims of every sighting that
leaves). Snapshots are kept per recipient until the store changes
(`last_date_added` moves) or a minute passes (deletions from collections do
not move it).

One dependency of the egress path moves no row: a peer that sends again a
version this node already holds is recorded in provenance without a new
version, and a reference to that version then may go back to that peer. A
kept verdict does not see it until the rows behind it are written again (an
ingest touching them, or a full rebuild): until then the peer's figures count
that reference as withheld, never the reverse.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from threatmesh.analytics.facts import KINDS, Fact, FactBase, build_facts
from threatmesh.analytics.source import stored_facts
from threatmesh.analytics.summary import FactSummary
from threatmesh.analytics.visibility import ALTERED, Judge, Verdict, redaction_digest
from threatmesh.export.select import ExportOptions, Tally, outgoing
from threatmesh.settings import Settings
from threatmesh.share.outbound import Outbound
from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.share.redact import RedactionSettings
from threatmesh.store.protocol import Account, Store, StoredVersion
from threatmesh.taxii.access import Caller, recipient_for

COUNTABLE = frozenset(KINDS.values())
SNAPSHOT_SECONDS = 60.0
_SNAPSHOTS_KEPT = 16


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Whole-store figures as one recipient may see them."""

    by_type: dict[str, int]
    by_tlp: dict[str, int]
    objects: int
    withheld: int
    facts: FactBase
    built_at: float
    seconds: float  # how long the pass (or the fact table's refresh) took
    summary: FactSummary = field(default_factory=lambda: FactSummary({}, {}))
    from_table: bool = False  # the store's fact table, not a pass
    lookup: Callable[[list[str]], dict[str, Fact]] | None = None  # from the table: facts by id
    rebuilt: int = 0  # facts rebuilt through the egress path (a reader's view from the table)
    _by_id: dict[str, Fact] = field(default_factory=dict)

    def facts_by_id(self, object_ids: Iterable[str]) -> dict[str, Fact]:
        """The facts of some objects (those that are countable), as this view counts them."""
        if self.lookup is not None:
            return self.lookup(list(object_ids))
        if not self._by_id:
            for kind in KINDS.values():
                self._by_id.update((f.id, f) for f in self.facts.of(kind))
        return {i: self._by_id[i] for i in object_ids if i in self._by_id}


@dataclass(slots=True)
class SnapshotCache:
    """Snapshots per recipient, rebuilt when the store changes; one build at a time per recipient."""

    entries: dict[tuple[Any, ...], tuple[int, Snapshot]] = field(default_factory=dict)
    locks: dict[tuple[Any, ...], threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[Any, ...], mark: int, build: Callable[[], Snapshot]) -> Snapshot:
        with self.guard:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            cached = self.entries.get(key)
            if cached and cached[0] == mark and time.monotonic() - cached[1].built_at < SNAPSHOT_SECONDS:
                return cached[1]
            snapshot = build()
            with self.guard:
                if len(self.entries) >= _SNAPSHOTS_KEPT:
                    self.entries.pop(next(iter(self.entries)))
                self.entries[key] = (mark, snapshot)
            return snapshot


def parse(version: StoredVersion) -> dict[str, Any]:
    data = orjson.loads(version.json)
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True, slots=True)
class Viewer:
    """One signed-in account's view of the node."""

    account: Account
    caller: Caller
    recipient: Recipient
    store: Store
    settings: Settings
    cache: SnapshotCache

    @classmethod
    def for_account(cls, account: Account, store: Store, settings: Settings, cache: SnapshotCache) -> "Viewer":
        # Same Caller as the TAXII API builds: a peer-bound account sees what that peer would get.
        caller = Caller(account, store.peer_for_account(account.name))
        return cls(account, caller, recipient_for(caller), store, settings, cache)

    @property
    def is_admin(self) -> bool:
        return self.recipient.kind is RecipientKind.OPERATOR

    def _outbound(self) -> Outbound:
        return Outbound(self.store, self.recipient, default_tlp=self.settings.default_tlp,
                        redaction=RedactionSettings.from_settings(self.settings))

    def visible(self, versions: Iterable[StoredVersion]) -> list[StoredVersion]:
        """The versions this viewer may see, in the form they may see them (redacted copies)."""
        return self._outbound().prepare(versions).items

    def latest(self, object_id: str) -> StoredVersion | None:
        found = self.store.get_latest(object_id)
        if found is None:
            return None
        shown = self.visible([found])
        return shown[0] if shown else None

    def latest_many(self, object_ids: Iterable[str]) -> dict[str, StoredVersion]:
        wanted = list(dict.fromkeys(object_ids))
        stored = [v for v in (self.store.get_latest(i) for i in wanted) if v is not None]
        return {v.id: v for v in self.visible(stored)}

    def versions(self, object_id: str) -> list[StoredVersion]:
        return self.visible(self.store.get_versions(object_id))

    def search(self, text: str, limit: int) -> list[StoredVersion]:
        return self.visible(self.store.search(text, limit=limit))

    def browse(self, stix_type: str, limit: int) -> list[StoredVersion]:
        """Latest objects of one type, newest first among the first `limit` found."""
        chosen: list[StoredVersion] = []
        for version in self._stream():
            if version.type == stix_type:
                chosen.append(version)
                if len(chosen) >= limit:
                    break
        return sorted(chosen, key=lambda v: v.date_added, reverse=True)

    def _stream(self, tally: Tally | None = None) -> Iterator[StoredVersion]:
        options = ExportOptions(redaction=RedactionSettings.from_settings(self.settings))
        return outgoing(self.store, self.recipient, default_tlp=self.settings.default_tlp, options=options,
                        tally=tally if tally is not None else Tally())

    def facts_for(self, object_ids: Iterable[str]) -> dict[str, Fact]:
        """Facts of the given objects as this viewer's figures count them (search facets)."""
        return self.snapshot().facts_by_id(object_ids)

    def snapshot(self) -> Snapshot:
        key = (self.recipient.kind, self.recipient.name, self.recipient.role,
               self.recipient.cleared_for, self.recipient.groups)

        def build() -> Snapshot:
            stored = self._operator_snapshot() if self.is_admin else self._reader_snapshot()
            return stored if stored is not None else self.pass_snapshot()

        return self.cache.get(key, self.store.last_date_added(), build)

    def _redaction(self) -> RedactionSettings:
        return RedactionSettings.from_settings(self.settings)

    def _operator_snapshot(self) -> Snapshot | None:
        """The operator's view is every object: the fact table holds it."""
        started = time.monotonic()
        if not self.store.refresh_facts(redaction=self._redaction()).current:
            return None
        facts = stored_facts(self.store)
        if facts is None:
            return None
        summary = self.store.fact_summary()
        by_type = summary.by_type
        finished = time.monotonic()
        return Snapshot(by_type, summary.by_tlp, sum(by_type.values()), 0, facts, finished,
                        finished - started, summary, from_table=True,
                        lookup=lambda ids: self.store.facts_by_id(ids))

    def _reader_snapshot(self) -> Snapshot | None:
        """Another recipient's view from the fact table and its reaches (the module docstring)."""
        redaction = self._redaction()
        if redaction.enabled and redaction.anonymise_sightings:
            return None  # every sighting that leaves is rewritten: the pass decides
        started = time.monotonic()
        if not self.store.refresh_facts(redaction=redaction).current:
            return None
        tables = self.store.reach_tables()
        judge = Judge.of(tables.classes, self.recipient, default_tlp=self.settings.default_tlp, redaction=redaction)
        whole: set[int] = set()
        mixed: set[int] = set()
        for reach_id, (own, classes) in tables.reaches.items():
            verdict = judge.verdict(own, classes)
            if verdict is Verdict.WHOLE:
                whole.add(reach_id)
            elif verdict is Verdict.MIXED:
                mixed.add(reach_id)
        view = self._view_key(redaction)
        kept = self.store.kept_view(view, mixed)
        outbound = self._outbound()
        # Facts with something behind them that may not go, not rebuilt for this view since their
        # row was last written: rebuilt from what of their neighbourhood may go. The neighbourhood
        # holds the whole actor graph, so the same build gives the actor index.
        def redacted(reach: int) -> bool:
            return ALTERED not in judge.allowed and ALTERED in tables.reaches[reach][1]

        fresh: dict[str, Fact | None] = {i: None for _, i, _, _ in kept.stale_facts}
        rebuilt = self._rebuild([i for _, i, _, r in kept.stale_facts if not redacted(r)], whole, outbound, fresh)
        altered = [i for _, i, _, r in kept.stale_facts if redacted(r)]
        if altered:
            self._rebuild(altered, set(), outbound, fresh)
        # Objects whose own class may go but a target's may not: the reference rule decides each.
        passed = {v.id for v in outbound.prepare([v for _, v, _ in kept.stale_objects]).items}
        if not kept.current:
            self.store.keep_view(view, kept.clock, [(pk, i, stamp, fresh[i]) for pk, i, stamp, _ in kept.stale_facts],
                                 [(pk, stamp, v.type, v.tlp or "unmarked", v.id in passed)
                                  for pk, v, stamp in kept.stale_objects])
        # The reaches seen whole, and what the view keeps of the others.
        summary = self.store.fact_summary(reaches=whole, view=view)
        allowed = whole | mixed
        replaced: dict[str, Fact | None] = {}

        def kept_facts() -> dict[str, Fact | None]:
            if not replaced:
                replaced.update(self.store.kept_facts(view))
                replaced.update(fresh)
            return replaced

        def load(kind: str) -> list[Fact]:
            swap = kept_facts()
            return [f for f in (swap.get(s.id) if s.id in swap else s
                                for s in self.store.load_facts(kind, reaches=allowed)) if f is not None]

        def lookup(ids: list[str]) -> dict[str, Fact]:
            found = self.store.facts_by_id(ids, reaches=allowed)
            swap = kept_facts()
            out = {i: f for i, f in found.items() if i not in swap}
            out.update((i, f) for i, f in ((i, swap.get(i)) for i in found if i in swap) if f is not None)
            return out

        facts = FactBase(actors=rebuilt.actors, actor_sponsors=rebuilt.actor_sponsors, loader=load)
        by_type = summary.by_type
        visible = sum(by_type.values())
        finished = time.monotonic()
        return Snapshot(by_type, summary.by_tlp, visible, sum(tables.objects.values()) - visible, facts, finished,
                        finished - started, summary, from_table=True, lookup=lookup, rebuilt=len(fresh))

    def _view_key(self, redaction: RedactionSettings) -> str:
        """Names what the egress path's answers for this view depend on, beyond the stored rows."""
        r = self.recipient
        text = repr((r.kind.value, r.name, r.role, sorted(r.cleared_for), sorted(r.groups),
                     self.settings.default_tlp, redaction_digest(redaction)))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _rebuild(self, fact_ids: list[str], whole: set[int], outbound: Outbound,
                 replaced: dict[str, Fact | None]) -> FactBase:
        """The facts of `fact_ids` from what of their neighbourhood may go, into `replaced`.

        A relationship or countable neighbour whose own reach is WHOLE goes as stored (the
        policy allows it and every target it refers to), save for redaction, which changes
        no string these facts read when their reach holds no ALTERED class (callers pass
        `whole` empty otherwise). Everything else goes through `Outbound`, and so do all
        actors, locations and identities: the actor index built here is the recipient's,
        with the names it would get redacted.
        """
        neighbourhood = self.store.fact_neighbourhood(fact_ids)

        def as_stored(version: StoredVersion, reach: int) -> bool:
            return reach in whole and (version.type == "relationship" or version.type in COUNTABLE)

        decided = {v.id: v for v in outbound.prepare([v for v, r in neighbourhood if not as_stored(v, r)]).items}
        kept = [v if as_stored(v, r) else decided.get(v.id) for v, r in neighbourhood]
        base = build_facts(v for v in kept if v is not None)
        wanted = set(fact_ids)
        for kind in KINDS.values():
            replaced.update((f.id, f) for f in base.of(kind) if f.id in wanted)
        return base

    def pass_snapshot(self) -> Snapshot:
        """The figures by one pass over the store through the egress path: the reference."""
        started = time.monotonic()
        tally = Tally()
        by_pair: Counter[tuple[str, str]] = Counter()

        def counted() -> Iterator[StoredVersion]:
            for version in self._stream(tally):
                by_pair[(version.type, version.tlp or "unmarked")] += 1
                yield version

        facts = build_facts(counted())
        summary = FactSummary.of(facts, by_pair)
        finished = time.monotonic()
        by_type = summary.by_type
        return Snapshot(by_type, summary.by_tlp, sum(by_type.values()), tally.withheld, facts,
                        finished, finished - started, summary)
