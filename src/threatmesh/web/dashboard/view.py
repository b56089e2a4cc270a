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
counts. Any other account's take a pass over the store through the egress
path (what they may not see must not be counted), so they are kept per
recipient until the store changes (`last_date_added` moves) or a minute passes
(deletions from collections do not move it).
"""

from __future__ import annotations

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
from threatmesh.export.select import ExportOptions, Tally, outgoing
from threatmesh.settings import Settings
from threatmesh.share.outbound import Outbound
from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.share.redact import RedactionSettings
from threatmesh.store.protocol import Account, Store, StoredVersion
from threatmesh.taxii.access import Caller, recipient_for

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
    _by_id: dict[str, Fact] = field(default_factory=dict)

    def facts_by_id(self, object_ids: Iterable[str]) -> dict[str, Fact]:
        """The facts of some objects (those that are countable), as this view counts them."""
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
        snap = self.snapshot()
        if snap.from_table:
            return self.store.facts_by_id(list(object_ids))
        return snap.facts_by_id(object_ids)

    def snapshot(self) -> Snapshot:
        key = (self.recipient.kind, self.recipient.name, self.recipient.role,
               self.recipient.cleared_for, self.recipient.groups)

        def from_table() -> Snapshot | None:
            started = time.monotonic()
            facts = stored_facts(self.store)
            if facts is None:
                return None
            summary = self.store.fact_summary()
            by_type = summary.by_type
            finished = time.monotonic()
            return Snapshot(by_type, summary.by_tlp, sum(by_type.values()), 0, facts, finished,
                            finished - started, summary, from_table=True)

        def build() -> Snapshot:
            if self.is_admin:  # the operator's view is every object: the fact table holds it
                stored = from_table()
                if stored is not None:
                    return stored
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

        return self.cache.get(key, self.store.last_date_added(), build)
