"""Pre-aggregated counts of facts: what the dashboard overview and the search facets read.

A `FactSummary` holds, per kind of fact, how many objects count under each
value of each breakdown field, how many have a known value of each field, and
how many fall in each month; plus the latest objects of the store by type and
TLP. It answers `top` exactly as `aggregate.top` does over the facts
themselves (same counts, same shares, same order), so a store can keep these
counts up to date as facts change (`contributions` gives the +1s of one fact)
instead of reading every fact for each page. The SQLite store keeps the same
counts once more per reach (analytics/visibility.py), so that a recipient's
summary is the sum of the reaches it may see whole plus the facts rebuilt for
it (web/dashboard/view.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from threatmesh.analytics.aggregate import Ranked
from threatmesh.analytics.facts import FIELDS, KINDS, Fact, FactBase

TOTAL = "total"  # (kind, 'total', '') -> facts of the kind
MONTH = "month"  # (kind, 'month', 'YYYY-MM') -> facts dated in that month; '' for undated facts
KNOWN = "known"  # (kind, 'known', FIELD) -> facts with at least one value of FIELD
RECENT_SIGHTINGS = 8

CountKey = tuple[str, str, str]


def contributions(fact: Fact) -> list[CountKey]:
    """The counts one fact adds 1 to (each distinct value of a field once, as `aggregate.top` counts)."""
    kind = fact.kind
    out: list[CountKey] = [(kind, TOTAL, ""), (kind, MONTH, f"{fact.day.year:04d}-{fact.day.month:02d}"
                                               if fact.day is not None else "")]
    # The fields of FIELDS, read directly: this runs for every fact of a store when its table is built.
    for name, values in (("actor", fact.actor), ("sponsor", fact.sponsor), ("victim-country", fact.victim_country),
                         ("sector", fact.sector), ("type", fact.type), ("tlp", fact.tlp), ("source", fact.source)):
        if values:
            out.append((kind, KNOWN, name))
            out.extend((kind, name, value) for value in (set(values) if len(values) > 1 else values))
    return out


def count_facts(facts: Iterable[Fact]) -> Counter[CountKey]:
    counts: Counter[CountKey] = Counter()
    for fact in facts:
        counts.update(contributions(fact))
    return counts


def recent(sightings: Sequence[Fact], n: int = RECENT_SIGHTINGS) -> tuple[str, ...]:
    """Ids of the newest sightings: dated ones newest first (ties in stored order), then undated ones."""
    ordered = sorted(sightings, key=lambda f: (f.day is not None, f.day), reverse=True)
    return tuple(f.id for f in ordered[:n])


@dataclass(frozen=True, slots=True)
class FactSummary:
    objects: Mapping[tuple[str, str], int]  # (STIX type, TLP or 'unmarked') -> latest objects
    counts: Mapping[CountKey, int]  # see TOTAL, MONTH, KNOWN; else (kind, FIELD, value)
    recent_sightings: tuple[str, ...] = ()
    by_field: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, facts: FactBase, objects: Mapping[tuple[str, str], int]) -> FactSummary:
        """The summary of facts held in memory (a view computed by a pass over the store)."""
        counts: Counter[CountKey] = Counter()
        for kind in KINDS.values():
            counts.update(count_facts(facts.of(kind)))
        return cls(dict(objects), dict(counts), recent(facts.of("sightings")))

    def __post_init__(self) -> None:
        for (kind, name, value), n in self.counts.items():
            if name in FIELDS and n:
                self.by_field.setdefault((kind, name), []).append((value, n))

    def _objects_by(self, position: int) -> dict[str, int]:
        """The object counts summed by one part of their (type, TLP) key."""
        out: Counter[str] = Counter()
        for key, n in self.objects.items():
            out[key[position]] += n
        return {k: v for k, v in out.items() if v}

    @property
    def by_type(self) -> dict[str, int]:
        return self._objects_by(0)

    @property
    def by_tlp(self) -> dict[str, int]:
        return self._objects_by(1)

    def total(self, kind: str) -> int:
        return self.counts.get((KINDS.get(kind, kind), TOTAL, ""), 0)

    def months(self, kind: str) -> dict[str, int]:
        """Dated facts of a kind per month ('YYYY-MM')."""
        kind = KINDS.get(kind, kind)
        return {value: n for (k, name, value), n in self.counts.items()
                if k == kind and name == MONTH and value and n}

    def top(self, kinds: Sequence[str], field_name: str, n: int = 10) -> list[Ranked]:
        """`aggregate.top` over the facts of `kinds` together (an object has one kind: no double count)."""
        merged: Counter[str] = Counter()
        known = 0
        for kind in kinds:
            kind = KINDS.get(kind, kind)
            known += self.counts.get((kind, KNOWN, field_name), 0)
            for value, count in self.by_field.get((kind, field_name), ()):
                merged[value] += count
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [Ranked(v, c, round(c / known, 4) if known else 0.0) for v, c in ranked]
