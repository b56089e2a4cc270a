"""The matcher: events in, hits out.

Each value of an event is normalised once (a bounded cache: logs repeat the
same addresses and names endlessly) and looked up in the indicator index; an
indicator hits an event at most once, and only when it was valid at the
event's time. Patterns that are not plain equalities go, in batches of events,
to their compiled form's `evaluate`.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import Iterable, Iterator

from threatmesh.match.index import IndicatorIndex
from threatmesh.match.keys import ROLE_GROUP, value_key
from threatmesh.match.protocol import LogEvent

_CACHE_LIMIT = 1 << 18
EVALUATE_BATCH = 10_000  # events handed to a compiled pattern at once


@dataclass(frozen=True, slots=True)
class Hit:
    slot: int  # the indicator's slot in the index
    indicator_id: str
    event: LogEvent
    role: str  # the event field's role ('dst-ip', 'domain', ...); 'pattern' for evaluated patterns
    value: str  # the log's value, normalised

    @property
    def time(self) -> int | None:
        return self.event.time


class Matcher:
    def __init__(self, index: IndicatorIndex, *, now: int | None = None) -> None:
        self.index = index
        # Lines without a time are judged against the indicators valid now.
        self.now = now if now is not None else _time.time_ns() // 1000
        self._keys: dict[tuple[str, str], str | None] = {}
        self.values_checked = 0
        self.values_unreadable = 0  # values of a role that do not parse (a '-' where an IP belongs)

    def key(self, group: str, value: str) -> str | None:
        """The normalised key of a raw value (None: not such a value), remembered."""
        return self._key(group, value)

    def _key(self, group: str, value: str) -> str | None:
        cache_key = (group, value)
        key = self._keys.get(cache_key, "")
        if key != "":
            return key
        try:
            key = value_key(group, value)
        except ValueError:
            key = None
            self.values_unreadable += 1
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        self._keys[cache_key] = key
        return key

    def match_event(self, event: LogEvent, groups: frozenset[str] | None = None) -> list[Hit]:
        """The hits of one event; `groups` limits the values looked up to those index groups
        (the columnar matcher knows which groups' prefilters a line passed)."""
        hits: list[Hit] = []
        seen: set[int] = set()
        at = event.time if event.time is not None else self.now
        indicators = self.index.indicators
        for role, raw in event.values:
            group = ROLE_GROUP.get(role)
            if group is None or (groups is not None and group not in groups):
                continue
            self.values_checked += 1
            key = self._key(group, raw)
            if key is None:
                continue
            for slot in self.index.lookup(group, key):
                if slot in seen:
                    continue
                info = indicators[slot]
                if info.valid_from <= at < info.valid_until:
                    seen.add(slot)
                    hits.append(Hit(slot, info.id, event, role, key))
        return hits

    def _evaluate(self, batch: list[LogEvent]) -> Iterator[Hit]:
        indicators = self.index.indicators
        for slot, compiled in self.index.evaluated:
            info = indicators[slot]
            for matched in compiled.evaluate(batch):
                if not matched:
                    continue
                last = matched[-1]
                at = last.time if last.time is not None else self.now
                if info.valid_at(at):
                    yield Hit(slot, info.id, last, "pattern", "")

    def match(self, events: Iterable[LogEvent]) -> Iterator[Hit]:
        """Hits in event order (pattern hits at the end of each batch of events)."""
        batch: list[LogEvent] = []
        evaluating = bool(self.index.evaluated)
        for event in events:
            yield from self.match_event(event)
            if evaluating:
                batch.append(event)
                if len(batch) >= EVALUATE_BATCH:
                    yield from self._evaluate(batch)
                    batch = []
        if batch:
            yield from self._evaluate(batch)
