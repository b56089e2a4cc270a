"""What one signed-in person may see, read through the node's one egress path.

An admin account is the operator and sees everything. Any other account sees
what the egress policy lets go to the recipient it stands for in the TAXII API
(`taxii.access.recipient_for`): every read of this package goes through
`share.outbound.Outbound` (single objects, versions, neighbours, search
results) or `export.select.outgoing` (the whole-store figures), so the
dashboard cannot show what a TAXII GET by the same account would withhold,
and it shows redacted copies where that GET would send them.

The whole-store figures (counts, analytics facts) take a pass over the store,
so they are kept per recipient until the store changes (`last_date_added`
moves) or a minute passes (deletions from collections do not move it).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from threatmesh.analytics.facts import FactBase, build_facts
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
    seconds: float  # how long the pass took


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

    def snapshot(self) -> Snapshot:
        key = (self.recipient.kind, self.recipient.name, self.recipient.role,
               self.recipient.cleared_for, self.recipient.groups)

        def build() -> Snapshot:
            started = time.monotonic()
            tally = Tally()
            by_type: Counter[str] = Counter()
            by_tlp: Counter[str] = Counter()

            def counted() -> Iterator[StoredVersion]:
                for version in self._stream(tally):
                    by_type[version.type] += 1
                    by_tlp[version.tlp or "unmarked"] += 1
                    yield version

            facts = build_facts(counted())
            finished = time.monotonic()
            return Snapshot(dict(by_type), dict(by_tlp), sum(by_type.values()), tally.withheld, facts,
                            finished, finished - started)

        return self.cache.get(key, self.store.last_date_added(), build)
