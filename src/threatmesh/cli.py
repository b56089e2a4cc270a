"""The `threatmesh` command: a thin layer over the library.

Errors are one line on stderr and a non-zero exit code; `--debug` shows the
traceback. Commands that report take `--json` for machines.
"""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import orjson
import typer

try:  # recent Typer ships its own copy of click; older ones use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from threatmesh import __version__
from threatmesh.errors import ConfigError, InputError, ThreatmeshError
from threatmesh.cli_support import open_cli_node, print_json
from threatmesh.collector import PacedCollector
from threatmesh.node import Node, init_node, open_node
from threatmesh.store.sqlite_index import IdleIndexer
from threatmesh.settings import resolve_home

EXIT_ERROR = 1
EXIT_PARTIAL = 3  # the command finished, but some input was rejected or unreadable


class TLPLevel(str, enum.Enum):
    clear = "clear"
    green = "green"
    amber = "amber"
    amber_strict = "amber+strict"
    red = "red"


class ExportFormat(str, enum.Enum):
    stix = "stix"


app = typer.Typer(
    name="threatmesh",
    help=(
        "threatmesh: a federated cyber-threat-intelligence node.\n\n"
        "Collect STIX 2.1 intelligence, keep every version in a local store, and serve it over TAXII 2.1. "
        "The node lives in a home folder: --home DIR, else $THREATMESH_HOME, else ./.threatmesh."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

out = Console()
err = Console(stderr=True)


@dataclass
class Context:
    home: Path
    debug: bool

    def open(self) -> Node:
        return open_node(self.home)


def _ctx(ctx: typer.Context) -> Context:
    return ctx.ensure_object(Context)  # type: ignore[no-any-return]


@app.callback()
def _root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="The node's home folder.", envvar=None),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    ctx.obj = Context(home=resolve_home(home, os.environ), debug=debug)


_node = open_cli_node
_print_json = print_json


def _progress(total: Optional[int] = None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} objects"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


# -- init -----------------------------------------------------------------------
@app.command()
def init(
    ctx: typer.Context,
    name: Optional[str] = typer.Option(None, "--name", help="The node's name (also its STIX identity name)."),
    exist_ok: bool = typer.Option(False, "--exist-ok", help="If a node already exists, say so and succeed."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create a node: SQLite store, config, STIX identity, default collection and an admin API key.

    The admin key is shown once and only its hash is stored. Refuses to overwrite an existing node.
    """
    home = _ctx(ctx).home
    if exist_ok and (home / "threatmesh.db").exists():
        err.print(f"node already initialised in {home} (its admin key was shown when it was created)",
                  markup=False)
        return
    created = init_node(home, name)
    try:
        node = created.node
        info = {
            "home": str(home),
            "name": node.settings.node_name,
            "identity": node.identity_id,
            "default_collection": node.default_collection.id,
            "admin_key": created.admin_key,
        }
    finally:
        created.node.close()
    if json_out:
        _print_json(info)
        return
    out.print(f"Created node [bold]{info['name']}[/] in {home}")
    out.print(f"  identity            {info['identity']}")
    out.print(f"  default collection  {info['default_collection']}")
    out.print(f"  admin API key       [bold]{created.admin_key}[/]  (shown once; store it now)", soft_wrap=True)


# -- ingest ---------------------------------------------------------------------
@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Files (.json, .json.gz), directories (recursive) or - for stdin."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection id or alias (default: the node's default)."),
    tlp: Optional[TLPLevel] = typer.Option(None, "--tlp", help="TLP the data was received under; objects keep their own stricter marking."),
    strict: bool = typer.Option(False, "--strict", help="Reject objects that break the STIX 2.1 specification (checked by stix2-validator)."),
    fmt: str = typer.Option("auto", "--format", "-f", help="Input format; 'auto' detects it from each file's content."),
    mapping: Optional[str] = typer.Option(None, "--map", help="Column mapping for tables, e.g. type=Indicator_type,value=Data."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Ingest STIX 2.0/2.1 bundles, lists of objects or single objects.

    Every version is kept; the summary counts new, updated (newer version), older (added to history),
    unchanged and rejected objects per file. Exit code 3 when anything was rejected or unreadable.
    """
    from threatmesh.ingest.formats import ReadOptions
    from threatmesh.ingest.pipeline import ingest_paths

    options = ReadOptions(mapping=_parse_mapping(mapping))
    with _node(ctx) as node:
        target = node.collection(collection)
        with _progress() as progress:
            task = progress.add_task("ingesting", total=None, rate="")
            done = [0]
            import time

            started = time.perf_counter()

            def advance(n: int) -> None:
                done[0] += n
                elapsed = max(time.perf_counter() - started, 1e-6)
                progress.update(task, advance=n, rate=f"{done[0] / elapsed:,.0f} obj/s")

            def on_source(label: str) -> None:
                progress.update(task, description=f"ingesting {_short(label)}")

            from threatmesh.kb.warninglists import FlaggingStore

            # False-positive suppression at ingest: what this run stores is checked as it is written.
            flagging = FlaggingStore(node.store)
            report = ingest_paths(paths, flagging, collection_id=target.id,  # type: ignore[arg-type]
                                  tlp=tlp.value if tlp else None, strict=strict, fmt=fmt, options=options,
                                  progress=advance, on_source=on_source)
            progress.update(task, description="ingested")
        flagged = flagging.record()
        node.store.refresh_facts()  # analytics facts: only what this run stored is read
    if json_out:
        _print_json({**report.as_dict(), "warninglisted": flagged})
    else:
        _print_ingest_summary(report)
        if flagged:
            err.print(f"{len(flagged)} ingested objects are on a warninglist: kept, but left out of exports and "
                      "matching (`threatmesh kb flag --json` lists them)", markup=False)
    if report.rejected or report.failed_sources:
        raise typer.Exit(EXIT_PARTIAL)


def _parse_mapping(text: Optional[str]) -> dict[str, str]:
    """'type=Indicator_type,value=Data' -> {'type': 'Indicator_type', 'value': 'Data'}."""
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"expected FIELD=COLUMN, got {part!r}", param_hint="--map")
        pairs[key.strip()] = value.strip()
    return pairs


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]


def _print_ingest_summary(report: Any) -> None:
    table = Table(title=f"Ingest summary ({report.seconds:.2f} s)")
    for column in ("source", "new", "updated", "older", "unchanged", "rejected", "2.0→2.1"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for s in report.sources:
        table.add_row(_short(s.source, 60), str(s.new), str(s.updated), str(s.older), str(s.unchanged),
                      str(len(s.rejected)), str(s.upgraded))
    if len(report.sources) > 1:
        table.add_row("total", *(str(report.total(k)) for k in ("new", "updated", "older", "unchanged")),
                      str(report.rejected), str(report.total("upgraded")))
    out.print(table)
    for s in report.sources:
        if s.error:
            err.print(f"unreadable: {s.error}", markup=False, highlight=False)
        for r in s.rejected[:20]:
            err.print(f"rejected: {r.location}: {r.reason}", markup=False, highlight=False)
        if len(s.rejected) > 20:
            err.print(f"rejected: … and {len(s.rejected) - 20} more in {s.source} (use --json for all)", markup=False)


# -- show / search / stats ------------------------------------------------------
@app.command()
def show(
    ctx: typer.Context,
    object_id: str = typer.Argument(..., help="A STIX id, e.g. intrusion-set--…"),
    all_versions: bool = typer.Option(False, "--all-versions", help="Show every stored version, oldest first."),
    provenance: bool = typer.Option(False, "--provenance", help="Show which peers sent which version, when, "
                                    "signed by whom, and the nodes it passed through."),
    json_out: bool = typer.Option(False, "--json", help="Print the objects only, as JSON."),
) -> None:
    """Show an object (its latest version, or every version) with how it was stored."""
    from threatmesh.errors import NotFound

    with _node(ctx) as node:
        versions = node.store.get_versions(object_id)
        if not versions:
            raise NotFound(f"no object {object_id} in this node")
        if provenance:
            from threatmesh.cli_provenance import print_provenance

            print_provenance(node.store, versions, json_out=json_out)
            return
        chosen = versions if all_versions else [v for v in versions if v.is_latest] or versions[-1:]
        if json_out:
            objects = [orjson.loads(v.json) for v in chosen]
            _print_json(objects if all_versions else objects[0])
            return
        from threatmesh.stix.timestamps import micros_to_timestamp

        for v in chosen:
            latest = " (latest)" if v.is_latest else ""
            out.print(f"[bold]{v.id}[/] version {v.version or '(unversioned)'}{latest}")
            out.print(f"  added {micros_to_timestamp(v.date_added)}  TLP {v.tlp or 'unmarked'}  source {v.source}"
                      + (f"  upgraded from STIX {v.upgraded_from}" if v.upgraded_from else ""), highlight=False)
            out.print_json(v.json.decode("utf-8"))


@app.command()
def search(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="Words to find in names, descriptions, aliases and observable values."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many results."),
    json_out: bool = typer.Option(False, "--json", help="Print the matching objects as JSON."),
) -> None:
    """Full-text search over the latest versions of all objects."""
    with _node(ctx) as node:
        hits = node.store.search(text, limit=limit)
    if json_out:
        _print_json([orjson.loads(h.json) for h in hits])
        return
    if not hits:
        err.print(f"no object matches {text!r}", markup=False)
        raise typer.Exit(EXIT_ERROR)
    table = Table()
    for column in ("id", "type", "name / value", "TLP"):
        table.add_column(column)
    for hit in hits:
        data = orjson.loads(hit.json)
        label = data.get("name") or data.get("value") or data.get("pattern") or ""
        table.add_row(hit.id, hit.type, str(label)[:80], hit.tlp or "unmarked")
    out.print(table)


@app.command()
def stats(
    ctx: typer.Context,
    kind: Optional[str] = typer.Argument(None, help="incidents, campaigns, reports, indicators or sightings; none: the store's counts."),
    by: Optional[str] = typer.Option(None, "--by", help="Break down by FIELD[,FIELD]: actor, sponsor, victim-country, sector, type, tlp, source."),
    period: Optional[str] = typer.Option(None, "--period", help="year, quarter or month: a time series with changes."),
    since: Optional[str] = typer.Option(None, "--since", help="First day counted: 2020, 2020-Q2, 2020-06, 2020-06-15."),
    until: Optional[str] = typer.Option(None, "--until", help="Last day counted (inclusive), same forms."),
    where: list[str] = typer.Option([], "--where", help="FIELD=VALUE[,VALUE] filter (repeatable); countries take groups: NATO, EU, FIVE-EYES."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Only this collection (id or alias)."),
    min_confidence: Optional[int] = typer.Option(None, "--min-confidence", help="Only objects with at least this confidence."),
    min_base: int = typer.Option(5, "--min-base", help="Changes in percent only from an earlier count of at least this."),
    explain: bool = typer.Option(False, "--explain", help="List the objects behind every figure."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Counts by type, TLP and collection, versions, and the database size; with KIND, analytics over time.

    Example: threatmesh stats incidents --by sponsor --period year --since 2018 --where victim-country=NATO
    """
    if kind is not None:
        from threatmesh.cli_analytics import run_stats

        with _node(ctx) as node:
            run_stats(node, kind, by=by, period=period, since=since, until=until, where=where,
                      collection=collection, min_confidence=min_confidence, min_base=min_base,
                      json_out=json_out, explain=explain)
        return
    with _node(ctx) as node:
        s = node.store.stats()
        names = {c.id: (c.alias or c.title) for c in node.store.list_collections()}
    data = {
        "objects": s.objects,
        "versions": s.versions,
        "by_type": dict(sorted(s.by_type.items(), key=lambda kv: -kv[1])),
        "by_tlp": s.by_tlp,
        "by_collection": {names.get(k, k): v for k, v in s.by_collection.items()},
        "database_bytes": s.size_bytes,
    }
    if json_out:
        _print_json(data)
        return
    out.print(f"{s.objects:,} objects, {s.versions:,} versions, database {s.size_bytes / 1e6:,.1f} MB")
    for title, counts in (("by type", data["by_type"]), ("by TLP", s.by_tlp), ("by collection", data["by_collection"])):
        table = Table(title=title)
        table.add_column("")
        table.add_column("objects", justify="right")
        for key, value in counts.items():  # type: ignore[attr-defined]
            table.add_row(str(key), f"{value:,}")
        out.print(table)


# -- export -----------------------------------------------------------------------
@app.command()
def export(
    ctx: typer.Context,
    output: str = typer.Option(..., "--output", "-o", help="File to write, or - for stdout."),
    fmt: str = typer.Option("stix", "--format", "-f", help="Output format (see `threatmesh export --help`)."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Only this collection (id or alias)."),
    all_versions: bool = typer.Option(False, "--all-versions", help="Every stored version, not only the latest."),
    types: Optional[str] = typer.Option(None, "--type", help="Comma-separated types to keep (STIX types, or indicator kinds for tool formats)."),
    min_confidence: Optional[int] = typer.Option(None, "--min-confidence", help="Tool formats: only indicators with at least this confidence."),
    since: Optional[str] = typer.Option(None, "--since", help="Only versions added after this STIX timestamp (e.g. 2024-01-01T00:00:00Z)."),
    include_warninglisted: bool = typer.Option(False, "--include-warninglisted", help="Tool formats: keep indicators a warninglist flags."),
    json_out: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Export the operator's own full view (objects exactly as stored).

    Formats: see FORMATS below; every export passes through the node's egress policy.
    """
    from threatmesh.export.formats import FORMATS
    from threatmesh.export.select import ExportOptions
    from threatmesh.share.policy import Recipient
    from threatmesh.share.redact import RedactionSettings

    exporter = FORMATS.get(fmt)
    if exporter is None:
        raise typer.BadParameter(f"unknown format {fmt!r}; choose from {', '.join(sorted(FORMATS))}",
                                 param_hint="--format")
    with _node(ctx) as node:
        options = ExportOptions(
            collection_id=node.collection(collection).id if collection else None,
            all_versions=all_versions,
            types=tuple(t.strip() for t in types.split(",") if t.strip()) if types else (),
            redaction=RedactionSettings.from_settings(node.settings),
            min_confidence=min_confidence,
            since=_since_micros(since),
            extra={"include_warninglisted": "1"} if include_warninglisted else {},
        )
        stream = sys.stdout.buffer if output == "-" else open(output, "wb")
        try:
            with _progress() as progress:
                task = progress.add_task("exporting", total=None, rate="")
                tally = exporter(node.store, stream, recipient=Recipient.operator(),
                                 default_tlp=node.settings.default_tlp, options=options,
                                 progress=lambda n: progress.update(task, advance=n))
        finally:
            if stream is not sys.stdout.buffer:
                stream.close()
    data = {"format": fmt, "written": tally.written, "withheld": tally.withheld, "output": output}
    if json_out:
        _print_json(data)
    elif output != "-":
        err.print(f"wrote {tally.written:,} objects to {output}", markup=False)


def _since_micros(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    from threatmesh.stix.timestamps import timestamp_to_micros

    try:
        return timestamp_to_micros(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


# -- demo / serve -------------------------------------------------------------------
@app.command()
def demo(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the ingest summary as JSON."),
) -> None:
    """Load a small generated demo data set (actors, malware, indicators at every TLP level) into the default collection.

    Running it again changes nothing: the data set is the same every time.
    """
    from threatmesh.demo import demo_bundle
    from threatmesh.ingest.pipeline import SourceReport, ingest_raw
    from threatmesh.ingest.stix_reader import RawObject

    with _node(ctx) as node:
        bundle = demo_bundle()
        report = SourceReport("demo")
        ingest_raw((RawObject("demo", i, o) for i, o in enumerate(bundle["objects"])), node.store, report,
                   collection_id=node.default_collection.id, source="demo")
    if json_out:
        _print_json(report.as_dict())
    else:
        out.print(f"demo data: {report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
                  f"{len(report.rejected)} rejected")
    if report.rejected:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def serve(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default 8470)."),
    tls_cert: Optional[Path] = typer.Option(None, "--tls-cert", help="PEM certificate: serve HTTPS."),
    tls_key: Optional[Path] = typer.Option(None, "--tls-key", help="PEM private key for --tls-cert."),
    insecure_http: bool = typer.Option(False, "--insecure-http", help="Allow plain HTTP on a non-loopback address."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Serve only: do not sync with peers in the background."),
) -> None:
    """Serve the node: TAXII 2.1 API under /taxii2/, the dashboard under /ui/, a health check at /health.

    The sync loop with the node's peers runs while it serves.
    """
    import ipaddress

    from threatmesh.web.app import create_app
    from threatmesh.web.tls import run_server

    with _node(ctx) as node:
        settings = node.settings
        host = host or settings.host
        port = port if port is not None else settings.port
        if bool(tls_cert) != bool(tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        if not tls_cert and not insecure_http and not _is_loopback(host, ipaddress):
            raise ConfigError(f"refusing plain HTTP on {host}: give --tls-cert/--tls-key, or --insecure-http")
        scheme = "https" if tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        err.print(f"threatmesh {__version__} serving {settings.node_name!r} at {scheme}://{shown}:{port}/taxii2/",
                  markup=False, highlight=False)
        err.print(f"  dashboard at {scheme}://{shown}:{port}/ui/; health at {scheme}://{shown}:{port}/health",
                  markup=False)
        err.print(f"  node home {settings.home}", markup=False)
        err.print("  authenticate with the admin API key printed by `threatmesh init`", markup=False)
        from threatmesh.federation.node_sync import start_sync_loop

        # Peers sync in the background while the node serves, and stop with it.
        sync_loop = None if no_sync else start_sync_loop(node)
        # What peers send is searchable at once (a read indexes what is pending first);
        # this indexes it when the node is quiet, off the forwarding path.
        indexer = IdleIndexer(node.store).start()
        collector = None
        try:
            app = create_app(settings, node.store)
            # Cyclic garbage is collected every 30 s (or on growth) rather than every few
            # thousand allocations (a tenth of a node's CPU went to rescanning live batches).
            collector = PacedCollector().start()
            # TLS 1.2+ only, AEAD suites with forward secrecy, no 0-RTT: see threatmesh.web.tls.
            run_server(app, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
        finally:
            if collector is not None:
                collector.stop()
            if sync_loop is not None:
                sync_loop.stop()
            indexer.stop()


def _is_loopback(host: str, ipaddress: Any) -> bool:
    if host == "localhost":
        return True
    try:
        return bool(ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"threatmesh {__version__}")


# -- commands of the other capabilities, each in its own module ----------------------
# (each module's `register(app)` adds its commands or sub-commands)
for _module in ("cli_taxii", "cli_analytics", "cli_match", "cli_peer", "cli_collect", "cli_kb"):
    __import__(f"threatmesh.{_module}", fromlist=["register"]).register(app)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the CLI, turning every error into one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="threatmesh", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except click_exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except typer.Abort:
        err.print("threatmesh: aborted", markup=False)
        return EXIT_ERROR
    except ThreatmeshError as exc:
        if debug:
            raise
        message = exc.describe() if isinstance(exc, InputError) else str(exc)
        print(f"threatmesh: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("threatmesh: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"threatmesh: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return 70
    # without standalone mode, click hands back the code of a `typer.Exit` as the result
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
