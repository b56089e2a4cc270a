"""`threatmesh match`: hunt logs for the node's indicators and record what was sighted.

A thin layer over `threatmesh.match.run.run_match`; results print as a table
(indicator, the actor it is attributed to, count, first and last seen) or as
JSON / JSON lines.
"""

from __future__ import annotations

import enum
import shlex
import subprocess
import sys
import time
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from threatmesh.errors import ConfigError
from threatmesh.node import open_node
from threatmesh.store.protocol import Store

EXIT_PARTIAL = 3

out = Console()
err = Console(stderr=True)

_ACTOR_TYPES = ("intrusion-set", "threat-actor")


class LogFormat(str, enum.Enum):
    auto = "auto"
    zeek = "zeek"
    zeek_json = "zeek-json"
    csv = "csv"
    jsonl = "jsonl"
    syslog = "syslog"
    apache = "apache"
    sysmon = "sysmon"


def _latest(store: Store, object_id: str) -> dict[str, Any] | None:
    stored = store.get_latest(object_id)
    return orjson.loads(stored.json) if stored is not None else None


def attributed_actors(store: Store, indicator_id: str) -> list[str]:
    """Names of the intrusion sets and threat actors an indicator points at.

    Follows `indicates` to an actor, or to a campaign `attributed-to` one, or
    to malware that an actor `uses` (STIX 2.1 §4.7 and §4.4, relationship summaries).
    """
    names: dict[str, None] = {}

    def rels(object_id: str) -> list[dict[str, Any]]:
        found = []
        for path, other in store.related(object_id):
            if other.startswith("relationship--") and path in ("source_ref", "target_ref"):
                rel = _latest(store, other)
                if rel is not None:
                    found.append(rel)
        return found

    def name_of(object_id: str) -> None:
        obj = _latest(store, object_id)
        if obj is not None and obj.get("name"):
            names[str(obj["name"])] = None

    for rel in rels(indicator_id):
        if rel.get("relationship_type") != "indicates" or rel.get("source_ref") != indicator_id:
            continue
        target = str(rel.get("target_ref", ""))
        kind = target.partition("--")[0]
        if kind in _ACTOR_TYPES:
            name_of(target)
        elif kind in ("campaign", "malware", "tool"):
            for second in rels(target):
                other = second.get("target_ref") if second.get("source_ref") == target else second.get("source_ref")
                if other is None or str(other).partition("--")[0] not in _ACTOR_TYPES:
                    continue
                if (kind == "campaign" and second.get("relationship_type") == "attributed-to") or \
                        (kind != "campaign" and second.get("relationship_type") == "uses"):
                    name_of(str(other))
    return list(names)


def register(app: typer.Typer) -> None:
    app.command(name="match")(match)


def match(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Log files, directories (recursive), .gz files, or - for stdin."),
    fmt: LogFormat = typer.Option(LogFormat.auto, "--format", "-f",
                                  help="Log format; 'auto' detects it from each file's first lines."),
    follow: bool = typer.Option(False, "--follow", help="Keep reading one file as it grows (like tail -F); "
                                                         "Ctrl-C ends."),
    evidence: bool = typer.Option(False, "--evidence", help="Store the matching log lines as observed-data "
                                                             "and point the sightings at them."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Match and report, but write no sightings."),
    include_warninglisted: bool = typer.Option(False, "--include-warninglisted",
                                               help="Also match indicators flagged as known false positives."),
    mapping: Optional[str] = typer.Option(None, "--map", help="Field roles for csv/jsonl, e.g. "
                                          "'client=src-ip,server=dst-ip,qname=domain' (roles: src-ip, dst-ip, ip, "
                                          "domain, url, md5, sha1, sha256, sha512, email, user-agent, user)."),
    time_field: Optional[str] = typer.Option(None, "--time-field", help="The csv/jsonl field holding the time."),
    year: Optional[int] = typer.Option(None, "--year", help="Year of syslog lines, which carry none "
                                                             "(default: this year)."),
    site: Optional[str] = typer.Option(None, "--site", help="Host name of an access log's site, so that its "
                                                             "paths become URLs to match."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary and sightings as one JSON document."),
    jsonl_out: bool = typer.Option(False, "--jsonl", help="Print every hit as a JSON line as it is found."),
    alert_cmd: Optional[str] = typer.Option(None, "--alert-cmd", help="A command run for every new hit, with the "
                                            "hit as JSON on stdin and THREATMESH_INDICATOR set."),
) -> None:
    """Match logs against the node's indicators and record sightings.

    Exact observables (IPv4/IPv6 and CIDR ranges, domains and all their
    subdomains, normalised URLs, MD5/SHA-1/SHA-256/SHA-512, e-mail addresses)
    of indicators valid at each line's time; revoked and warninglisted ones are
    left out. Every hit updates the STIX sighting of its indicator (count,
    first/last seen, this node as where_sighted); matching the same log again
    does not count its lines twice. Exit code 3 when some lines were unreadable.
    """
    from threatmesh.match.index import load_index
    from threatmesh.match.protocol import ROLES
    from threatmesh.match.run import MatchReport, run_match
    from threatmesh.match.sightings import SightingRecorder

    home = getattr(ctx.find_root().obj, "home", None)
    if home is None:
        raise ConfigError("no node home given")
    roles: dict[str, str] = {}
    if mapping:
        for part in mapping.split(","):
            name, sep, role = part.partition("=")
            if not sep or role.strip() not in ROLES:
                raise typer.BadParameter(f"expected FIELD=ROLE with a known role, got {part!r}", param_hint="--map")
            roles[name.strip()] = role.strip()
    from threatmesh.logs import expand_paths

    expand_paths(paths)  # a missing file is an error before anything is loaded
    node = open_node(home)
    try:
        started = time.perf_counter()
        index = load_index(node.store, include_warninglisted=include_warninglisted)
        load_seconds = time.perf_counter() - started
        if not json_out and not jsonl_out:
            err.print(f"{len(index):,} indicators loaded in {load_seconds:.2f} s"
                      + (f" ({len(index.skipped):,} not matchable)" if index.skipped else ""), highlight=False)
        recorder = None if dry_run else SightingRecorder(node.store, node.identity_id, node.default_collection.id,
                                                        evidence=evidence)
        options: dict[str, object] = {}
        if roles:
            options["mapping"] = roles
        if time_field:
            options["time_field"] = time_field
        if year:
            options["year"] = year
        if site:
            options["default_host"] = site

        def on_hit(hit: Any, counted: bool) -> None:
            record = {"indicator": hit.indicator_id, "name": _name(index, hit.slot), "field": hit.role,
                      "value": hit.value, "source": hit.event.source, "line": hit.event.line,
                      "time": hit.event.time, "log": hit.event.log_type, "new": counted}
            if jsonl_out:
                sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
                sys.stdout.flush()
            if alert_cmd and counted:
                _alert(alert_cmd, record)

        report = MatchReport()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f} lines"),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err,
                      disable=json_out or jsonl_out) as progress:
            task = progress.add_task("matching", total=None, rate="")
            done = [0]

            def on_lines(n: int) -> None:
                done[0] += n
                rate = done[0] / max(time.perf_counter() - started - load_seconds, 1e-6)
                progress.update(task, advance=n, rate=f"{rate:,.0f} lines/s  {report.hits:,} hits")

            try:
                run_match(paths, index, recorder, fmt=fmt.value, follow=follow, reader_options=options,
                          on_hit=on_hit, on_lines=on_lines, report=report)
            except KeyboardInterrupt:
                if not follow:
                    raise
        seconds = time.perf_counter() - started
        rows = _rows(node.store, report, index) if not jsonl_out else []
    finally:
        node.close()
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(_summary(report, rows, seconds, load_seconds),
                                             option=orjson.OPT_INDENT_2) + b"\n")
    elif not jsonl_out:
        _print_table(report, rows, seconds)
    if report.read.bad:
        raise typer.Exit(EXIT_PARTIAL)


def _alert(command: str, record: dict[str, Any]) -> None:
    import os

    env = {**os.environ, "THREATMESH_INDICATOR": str(record["indicator"])}
    try:
        subprocess.run(shlex.split(command), input=orjson.dumps(record), env=env, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        err.print(f"--alert-cmd failed: {exc}", markup=False, highlight=False)


def _name(index: Any, slot: int) -> str:
    """An indicator's name: a bulk-loaded index reads names from the store only when asked."""
    indicators = index.indicators
    name_of = getattr(indicators, "name_of", None)
    return str(name_of(indicators[slot].id)) if callable(name_of) else str(indicators[slot].name)


def _rows(store: Store, report: Any, index: Any) -> list[dict[str, Any]]:
    wanted = list(report.updates)
    names_of = getattr(index.indicators, "names_of", None)
    if callable(names_of):
        names: dict[str, str] = names_of(wanted)
    else:
        names = {info.id: info.name for info in index.indicators if info.id in report.updates}
    rows = []
    for indicator_id, update in sorted(report.updates.items(), key=lambda kv: -kv[1].count):
        rows.append({"indicator": indicator_id, "name": names.get(indicator_id, ""),
                     "actors": attributed_actors(store, indicator_id), "count": update.count, "new": update.new,
                     "first_seen": update.first_seen, "last_seen": update.last_seen, "sighting": update.sighting_id})
    return rows


def _summary(report: Any, rows: list[dict[str, Any]], seconds: float, load_seconds: float) -> dict[str, Any]:
    return {
        "lines": report.read.lines, "events": report.read.events, "unreadable": report.read.bad,
        "unreadable_lines": [{"source": b.source, "line": b.line, "reason": b.reason} for b in report.read.bad_lines],
        "hits": report.hits, "new_hits": report.new_hits, "seconds": round(seconds, 3),
        "indicator_load_seconds": round(load_seconds, 3), "formats": report.read.formats, "sightings": rows,
    }


def _print_table(report: Any, rows: list[dict[str, Any]], seconds: float) -> None:
    table = Table(title=f"Sightings ({report.read.lines:,} lines, {report.hits:,} hits, "
                        f"{report.new_hits:,} new, {seconds:.2f} s)")
    for column in ("indicator", "actor", "count", "new", "first seen", "last seen"):
        table.add_column(column, justify="right" if column in ("count", "new") else "left")
    for row in rows:
        label = row["name"] or row["indicator"]
        table.add_row(label, ", ".join(row["actors"]) or "-", f"{row['count']:,}", f"{row['new']:,}",
                      row["first_seen"], row["last_seen"])
    out.print(table)
    for bad in report.read.bad_lines[:20]:
        err.print(f"unreadable: {bad.describe()}", markup=False, highlight=False)
    if report.read.bad > 20:
        err.print(f"unreadable: … and {report.read.bad - 20} more lines (use --json for the first 100)", markup=False)
