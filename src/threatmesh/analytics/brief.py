"""The figures of a briefing: headline numbers, trend, top victims and sectors, top actors, notable incidents.

Pure: takes a FactBase and options, returns a `Brief` of plain values that the
renderers (report/render.py) lay out as Markdown, HTML or PDF. Every headline
figure carries the counts behind it, and the method note says what was counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from threatmesh.analytics.aggregate import Query, breakdown, label, select, top
from threatmesh.analytics.countries import country_name, expand_countries
from threatmesh.analytics.facts import FactBase
from threatmesh.analytics.surges import TEST_NAME, surges


@dataclass(frozen=True, slots=True)
class BriefOptions:
    kind: str = "incidents"
    actor_countries: str | None = None  # 'RU', 'CN,IR', 'NATO'
    victim_countries: str | None = None
    since: date | None = None
    until: date | None = None
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    min_base: int = 5


@dataclass(frozen=True, slots=True)
class Brief:
    title: str
    scope: str
    total: int
    headlines: list[str]
    trend: list[tuple[str, int]]  # (year, count)
    victim_countries: list[tuple[str, int, float]]  # (label, count, share)
    sectors: list[tuple[str, int, float]]
    actors: list[dict[str, Any]]  # name, aliases, sponsors, count
    notable: list[dict[str, Any]]  # name, date, actors, victims, id
    method: str
    withheld: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compose_brief(facts: FactBase, options: BriefOptions, *, withheld: int = 0) -> Brief:
    where = []
    scope_parts = []
    if options.actor_countries:
        where.append(("sponsor", expand_countries(options.actor_countries, options.groups)))
        scope_parts.append(f"attributed to {options.actor_countries}")
    if options.victim_countries:
        where.append(("victim-country", expand_countries(options.victim_countries, options.groups)))
        scope_parts.append(f"against {options.victim_countries}")
    if options.since:
        scope_parts.append(f"since {options.since.isoformat()}")
    if options.until:
        scope_parts.append(f"until {options.until.isoformat()}")
    query = Query(options.kind, period="year", since=options.since, until=options.until, where=tuple(where),
                  min_base=options.min_base)
    chosen = select(facts.of(options.kind), query)
    yearly = breakdown(chosen, query)
    trend = [(r.period or "", r.count) for r in sorted(yearly.rows, key=lambda r: r.period or "")]
    # Victim countries and sectors counted inside the scope; with a victim filter, only those victims.
    victims = breakdown(chosen, Query(options.kind, by=("victim-country",), where=tuple(
        w for w in where if w[0] == "victim-country")))
    victim_rows = [(label("victim-country", r.key[0]), r.count, r.share or 0.0) for r in victims.rows
                   if r.key[0] != "unknown"][:8]
    sector_rows = [(r.value, r.count, r.share) for r in top(chosen, "sector", 8)]
    actor_rows = []
    for ranked in top(chosen, "actor", 8):
        actor_rows.append({
            "name": ranked.value, "count": ranked.count,
            "aliases": list(facts.actors.aliases.get(ranked.value, ()))[:6],
            "sponsors": [country_name(c) for c in facts.actor_sponsors.get(ranked.value, ())],
        })
    headlines = [f"{len(chosen):,} {options.kind} in scope" + (f" ({yearly.undated} without a date)"
                                                               if yearly.undated else "")]
    if len(trend) >= 2:
        (prev_year, before), (last_year, after) = trend[-2], trend[-1]
        if before >= options.min_base:
            headlines.append(f"{after - before:+d} ({(after - before) * 100 / before:+.0f}%) in {last_year} "
                             f"compared with {prev_year} ({before} → {after})")
        else:
            headlines.append(f"{after} in {last_year}, {before} in {prev_year} (too few to give a percentage)")
    if sector_rows:
        name, count, share = sector_rows[0]
        headlines.append(f"{name} is the most targeted sector: {share:.0%} of {options.kind} with a known "
                         f"sector ({count})")
    if victim_rows:
        headlines.append("most targeted countries: " + ", ".join(f"{n} {s:.0%}" for n, _, s in victim_rows[:3]))
    for surge in surges(chosen, "actor", "year", min_count=5)[:2]:
        headlines.append(f"surge: {surge.value} in {surge.period}, {surge.count} against a baseline of "
                         f"{surge.baseline}/year (p = {surge.p_adjusted:.3g})")
    dated = sorted((f for f in chosen if f.day), key=lambda f: (f.day, f.id), reverse=True)
    notable = [{"name": f.name, "date": f.day.isoformat() if f.day else None, "actors": list(f.actor),
                "victims": [country_name(c) for c in f.victim_country], "id": f.id} for f in dated[:6]]
    method = (
        f"Counted: {options.kind} in this node's store (latest versions), dated by the activity date they carry; "
        "each object counts once per distinct actor, country or sector it names, so breakdowns can add up "
        "to more than the total. Shares are of the objects with a known value. Actors are merged through "
        "their aliases; an object's own attribution to a state wins over its actor's. Changes are given in "
        f"percent only from a base of at least {options.min_base}. Surges: {TEST_NAME}, minimum 5 per year."
        + (f" {withheld:,} objects were left out because their TLP does not allow them to reach this "
           "brief's audience." if withheld else "")
    )
    scope = ", ".join(scope_parts) or "all activity in the store"
    return Brief(
        title=f"Briefing: {options.kind} {scope}", scope=scope, total=len(chosen), headlines=headlines,
        trend=trend, victim_countries=victim_rows, sectors=sector_rows, actors=actor_rows, notable=notable,
        method=method, withheld=withheld,
    )
