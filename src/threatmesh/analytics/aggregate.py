"""Counts over facts: breakdowns by field and period, changes, shares, top-N.

Counting rules (the method note of every report repeats them):

- A fact counts once per distinct value of each breakdown field: an incident
  against government and military counts once under each sector. Totals count
  distinct objects, so the rows of a multi-valued field may add up to more
  than the total.
- A share is the rows' count over the distinct objects of the same period
  that have a known value for the breakdown (an incident whose sector nobody
  recorded is left out of the denominator, and counted under 'unknown').
- A change (period over period, or year over year) is given with the two
  counts behind it, and only as a percentage when the earlier count reaches
  `min_base` (default 5): going from 1 to 2 is a count, not "+100%".
- Periods without activity count as 0 rather than being skipped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import product

from threatmesh.analytics.actors import ActorIndex
from threatmesh.analytics.countries import country_code, country_name, expand_countries, BUILTIN_GROUPS
from threatmesh.analytics.facts import FIELDS, KINDS, Fact
from threatmesh.analytics.periods import YEAR_STEPS, period_key, period_range, shift

UNKNOWN = "unknown"
COUNTRY_FIELDS = ("sponsor", "victim-country")


@dataclass(frozen=True, slots=True)
class Query:
    kind: str  # 'incidents', 'campaigns', 'reports', 'indicators', 'sightings'
    by: tuple[str, ...] = ()
    period: str | None = None  # 'year', 'quarter', 'month'
    since: date | None = None
    until: date | None = None  # inclusive
    where: tuple[tuple[str, frozenset[str]], ...] = ()  # (field, accepted values); fields ANDed, values ORed
    min_confidence: int | None = None
    min_base: int = 5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose from {', '.join(KINDS)}")
        for name in (*self.by, *(f for f, _ in self.where)):
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; choose from {', '.join(FIELDS)}")


def normalise_filter(
    field_name: str,
    raw: str,
    actors: ActorIndex | None = None,
    groups: dict[str, frozenset[str]] | None = None,
) -> frozenset[str]:
    """The values a `--where FIELD=VALUE[,VALUE]` accepts, in the form facts carry them."""
    if field_name in COUNTRY_FIELDS:
        return expand_countries(raw, groups or BUILTIN_GROUPS)
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if field_name == "actor" and actors is not None:
        return frozenset(actors.canonical(v) or v for v in values)
    if field_name in ("sector", "tlp"):
        return frozenset(v.lower() for v in values)
    return frozenset(values)


def _matches(values: tuple[str, ...], accepted: frozenset[str], field_name: str) -> bool:
    if field_name in ("type", "source", "actor"):
        folded = {a.casefold() for a in accepted}
        return any(v.casefold() in folded for v in values)
    return any(v in accepted for v in values)


def select(facts: Iterable[Fact], query: Query) -> list[Fact]:
    """The facts a query counts: inside the time window, passing every filter."""
    chosen = []
    for fact in facts:
        if query.since is not None or query.until is not None:
            if fact.day is None:
                continue
            if query.since is not None and fact.day < query.since:
                continue
            if query.until is not None and fact.day > query.until:
                continue
        if query.min_confidence is not None and (fact.confidence is None or fact.confidence < query.min_confidence):
            continue
        if all(_matches(fact.values(f), accepted, f) for f, accepted in query.where):
            chosen.append(fact)
    return chosen


@dataclass(frozen=True, slots=True)
class Row:
    key: tuple[str, ...]  # one value per `by` field ('unknown' where none is recorded)
    period: str | None
    count: int
    share: float | None  # of the period's objects with a known value; None without `by`
    previous: int | None = None  # same key, previous period
    change: float | None = None  # percent; None when `previous` < min_base
    year_ago: int | None = None
    yoy: float | None = None
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Breakdown:
    query: Query
    rows: tuple[Row, ...]
    periods: tuple[str, ...]
    totals: dict[str, int]  # period ('' without period) -> distinct objects counted
    known: dict[str, int]  # period -> distinct objects with a known value for every `by` field
    undated: int  # facts left out of a time series because they carry no date
    counted: tuple[Fact, ...] = field(default=(), repr=False)

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def percent_change(before: int | None, after: int, min_base: int) -> float | None:
    """Relative change in percent, or None when the earlier count is too small to divide by."""
    if before is None or before < max(min_base, 1):
        return None
    return round((after - before) * 100.0 / before, 1)


def _keys(fact: Fact, query: Query) -> tuple[list[tuple[str, ...]], bool]:
    """The row keys a fact counts under, and whether every `by` field has a known value."""
    per_field = []
    known = True
    restrict = dict(query.where)
    for f in query.by:
        values = fact.values(f)
        if f in restrict:
            # Filtering and breaking down by the same field shows the accepted values only.
            values = tuple(v for v in values if _matches((v,), restrict[f], f))
        known = known and bool(values)
        per_field.append(values or (UNKNOWN,))
    return list(product(*per_field)), known


def breakdown(facts: Sequence[Fact], query: Query) -> Breakdown:
    """Count the facts of a query by its fields and period."""
    chosen = select(facts, query)
    undated = 0
    counts: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    totals: Counter[str] = Counter()
    known: Counter[str] = Counter()
    for fact in chosen:
        if query.period is not None:
            if fact.day is None:
                undated += 1
                continue
            period = period_key(fact.day, query.period)
        else:
            period = ""
        totals[period] += 1
        keys, is_known = _keys(fact, query)
        if is_known:
            known[period] += 1
        for key in keys:
            counts[(period, key)].append(fact.id)
    periods = sorted(totals)
    if query.period is not None and periods:
        periods = period_range(periods[0], periods[-1], query.period)
    rows: list[Row] = []
    keys_seen = sorted({k for _, k in counts})
    for key in keys_seen:
        for period in periods:
            ids = counts.get((period, key), [])
            prev = year = None
            if query.period is not None:
                prev = len(counts.get((shift(period, query.period, -1), key), []))
                year = len(counts.get((shift(period, query.period, -YEAR_STEPS[query.period]), key), []))
                if not ids and not prev:
                    continue
                if period == periods[0]:
                    prev = None  # before the data starts: unknown, not zero
                if shift(period, query.period, -YEAR_STEPS[query.period]) < periods[0]:
                    year = None
            elif not ids:
                continue
            share = None
            if query.by and UNKNOWN not in key and known[period]:
                share = round(len(ids) / known[period], 4)
            rows.append(
                Row(
                    key=key,
                    period=period or None,
                    count=len(ids),
                    share=share,
                    previous=prev,
                    change=percent_change(prev, len(ids), query.min_base),
                    year_ago=year,
                    yoy=percent_change(year, len(ids), query.min_base),
                    ids=tuple(ids),
                )
            )
    rows.sort(key=lambda r: (r.period or "", -r.count, r.key))
    return Breakdown(query, tuple(rows), tuple(periods), dict(totals), dict(known), undated, tuple(chosen))


@dataclass(frozen=True, slots=True)
class Ranked:
    value: str
    count: int
    share: float  # of the objects with a known value of the field
    ids: tuple[str, ...] = ()


def top(facts: Sequence[Fact], field_name: str, n: int = 10) -> list[Ranked]:
    """The n most frequent values of a field, with their share of the objects that have one."""
    ids: dict[str, list[str]] = defaultdict(list)
    known = 0
    for fact in facts:
        values = set(fact.values(field_name))
        if values:
            known += 1
        for value in values:
            ids[value].append(fact.id)
    ranked = sorted(ids.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:n]
    return [Ranked(v, len(i), round(len(i) / known, 4) if known else 0.0, tuple(i)) for v, i in ranked]


def most_targeted(
    facts: Sequence[Fact], group_field: str = "actor", target_field: str = "sector"
) -> dict[str, Ranked]:
    """For each value of `group_field`, its most frequent `target_field` value (ties: alphabetical)."""
    grouped: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        for value in set(fact.values(group_field)):
            grouped[value].append(fact)
    result = {}
    for group, members in grouped.items():
        best = top(members, target_field, 1)
        if best:
            result[group] = best[0]
    return result


def label(field_name: str, value: str) -> str:
    """How a value reads to people: country codes get their names."""
    if field_name in COUNTRY_FIELDS and value != UNKNOWN and len(value) == 2:
        return f"{country_name(value)} ({value})"
    return value


def resolve_country(value: str) -> str | None:
    return country_code(value)
