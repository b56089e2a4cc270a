"""CLI of the Understand capability: `threatmesh stats KIND ...` and `threatmesh report brief`.

A thin layer: options are parsed into an `analytics.Query` (or brief options)
and the library does the counting. `stats` itself lives in cli.py, whose
command hands over to `run_stats` here when a KIND is given.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from threatmesh.analytics import FIELDS, KINDS, Query, breakdown, build_facts
from threatmesh.analytics.aggregate import normalise_filter
from threatmesh.analytics.countries import load_groups
from threatmesh.analytics.output import breakdown_dict, fact_dict, row_dict
from threatmesh.analytics.periods import PERIODS, parse_bound
from threatmesh.analytics.source import operator_facts
from threatmesh.node import Node

out = Console()
err = Console(stderr=True)


def _fields(text: Optional[str]) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    for name in names:
        if name not in FIELDS:
            raise typer.BadParameter(f"unknown field {name!r}; choose from {', '.join(FIELDS)}", param_hint="--by")
    return names


def build_query(
    node: Node,
    facts_actors: Any,
    kind: str,
    *,
    by: Optional[str],
    period: Optional[str],
    since: Optional[str],
    until: Optional[str],
    where: list[str],
    min_confidence: Optional[int],
    min_base: int,
) -> Query:
    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}", param_hint="KIND")
    if period is not None and period not in PERIODS:
        raise typer.BadParameter(f"choose from {', '.join(PERIODS)}", param_hint="--period")
    groups = load_groups(node.settings.home)
    filters = []
    for item in where:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in FIELDS or not value.strip():
            raise typer.BadParameter(f"expected FIELD=VALUE with FIELD in {', '.join(FIELDS)}, got {item!r}",
                                     param_hint="--where")
        try:
            filters.append((name, normalise_filter(name, value, facts_actors, groups)))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--where") from None
    try:
        return Query(
            kind=kind,
            by=_fields(by),
            period=period,
            since=parse_bound(since) if since else None,
            until=parse_bound(until, end=True) if until else None,
            where=tuple(filters),
            min_confidence=min_confidence,
            min_base=min_base,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def run_stats(
    node: Node,
    kind: str,
    *,
    by: Optional[str],
    period: Optional[str],
    since: Optional[str],
    until: Optional[str],
    where: list[str],
    collection: Optional[str],
    min_confidence: Optional[int],
    min_base: int,
    json_out: bool,
    explain: bool,
) -> None:
    """`threatmesh stats KIND ...`: a breakdown, as a table or JSON, with its evidence on request."""
    collection_id = node.collection(collection).id if collection else None
    facts = operator_facts(node.store, collection_id=collection_id)
    query = build_query(node, facts.actors, kind, by=by, period=period, since=since, until=until, where=where,
                        min_confidence=min_confidence, min_base=min_base)
    result = breakdown(facts.of(kind), query)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(breakdown_dict(result, explain=explain), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return
    title = f"{kind}" + (f" by {', '.join(query.by)}" if query.by else "") + (f" per {period}" if period else "")
    table = Table(title=f"{title}: {result.total:,} counted" + (f", {result.undated} undated left out" if result.undated else ""))
    if period:
        table.add_column("period")
    for name in query.by:
        table.add_column(name)
    table.add_column("count", justify="right")
    if query.by:
        table.add_column("share", justify="right")
    if period:
        table.add_column("vs previous", justify="right")
        table.add_column("vs year before", justify="right")
    by_id = {f.id: f for f in result.counted}
    for row in result.rows:
        data = row_dict(row, query.by)
        cells = [row.period or ""] if period else []
        cells += [data.get("label", "").split(" / ")[i] if query.by else "" for i in range(len(query.by))]
        cells.append(f"{row.count:,}")
        if query.by:
            cells.append(f"{row.share:.1%}" if row.share is not None else "")
        if period:
            cells.append(_change(row.previous, row.count, row.change))
            cells.append(_change(row.year_ago, row.count, row.yoy) if period != "year" else "")
        table.add_row(*cells)
    out.print(table)
    if explain:
        for row in result.rows:
            if not row.count:
                continue
            head = " / ".join(filter(None, [row.period or "", *row.key])) or "all"
            out.print(f"[bold]{head}[/] ({row.count})", highlight=False)
            for object_id in row.ids:
                fact = by_id[object_id]
                out.print(f"  {fact.id}  {fact.day or 'undated'}  {fact.name}", markup=False, highlight=False)


def _change(before: Optional[int], after: int, pct: Optional[float]) -> str:
    if before is None:
        return ""
    shown = f"{before}→{after}"
    return f"{shown} ({pct:+.1f}%)" if pct is not None else shown


class BriefFormat(str, enum.Enum):
    html = "html"
    md = "md"
    pdf = "pdf"


class Audience(str, enum.Enum):
    operator = "operator"
    community = "community"
    public = "public"


def register(app: typer.Typer) -> None:
    report_app = typer.Typer(help="Reports for decision makers, written from the node's own data.",
                             no_args_is_help=True)

    @report_app.command("brief")
    def brief(
        ctx: typer.Context,
        output: Path = typer.Option(..., "--output", "-o", help="File to write."),
        actor_country: Optional[str] = typer.Option(None, "--actor-country", help="Sponsoring states: codes, names or groups (RU; CN,IR; NATO)."),
        victim_countries: Optional[str] = typer.Option(None, "--victim-countries", help="Victim countries: codes, names or groups (NATO, EU, FIVE-EYES)."),
        since: Optional[str] = typer.Option(None, "--since", help="First day counted (2020, 2020-06, 2020-06-15)."),
        until: Optional[str] = typer.Option(None, "--until", help="Last day counted (inclusive)."),
        kind: str = typer.Option("incidents", "--kind", help="What to count: incidents or campaigns."),
        fmt: BriefFormat = typer.Option(BriefFormat.html, "--format", "-f", help="html, md or pdf."),
        audience: Audience = typer.Option(Audience.operator, "--audience", help="Who may read it: only objects the egress policy lets go to them are counted."),
        json_out: bool = typer.Option(False, "--json", help="Print the brief's figures as JSON too."),
    ) -> None:
        """A one-to-two page brief: headline figures, charts, top actors, notable incidents, method note."""
        from threatmesh.analytics.brief import BriefOptions, compose_brief
        from threatmesh.cli import _node
        from threatmesh.report.render import write_brief

        if kind not in KINDS:
            raise typer.BadParameter(f"choose from {', '.join(KINDS)}", param_hint="--kind")
        with _node(ctx) as node:
            groups = load_groups(node.settings.home)
            try:
                options = BriefOptions(
                    kind=kind,
                    actor_countries=actor_country,
                    victim_countries=victim_countries,
                    since=parse_bound(since) if since else None,
                    until=parse_bound(until, end=True) if until else None,
                    groups=groups,
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            from threatmesh.report.render import brief_versions

            if audience is Audience.operator:  # every object counts: the fact table, kept up to date
                data = compose_brief(operator_facts(node.store), options)
            else:  # what may reach the audience, through the egress path
                versions = brief_versions(node, audience.value)
                data = compose_brief(build_facts(versions.stream()), options, withheld=versions.tally)
        write_brief(data, output, fmt.value)
        if json_out:
            sys.stdout.buffer.write(orjson.dumps(data.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        err.print(f"wrote {fmt.value} brief to {output} ({data.total} {kind} counted)", markup=False)

    app.add_typer(report_app, name="report")


__all__ = ["register", "run_stats", "fact_dict"]
