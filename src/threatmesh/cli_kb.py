"""`threatmesh kb ...`: knowledge packs, actor aliases and warninglists; and `threatmesh misp-feed URL`."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from threatmesh.cli_support import open_cli_node, print_json

from threatmesh.errors import InputError


class Pack(str, enum.Enum):
    attack = "attack"
    misp_galaxy = "misp-galaxy"
    kev = "kev"
    warninglists = "warninglists"
    misp_objects = "misp-objects"


kb_app = typer.Typer(
    name="kb",
    help=("Knowledge packs and false-positive suppression.\n\n"
          "`kb load attack FILE` loads an ATT&CK STIX bundle, `kb load misp-galaxy DIR` the MISP galaxy clusters "
          "(actors with aliases, sponsoring states, victims and sectors; country and sector vocabularies), "
          "`kb load kev FILE` the CISA Known Exploited Vulnerabilities catalog (JSON), all into the `kb` collection. "
          "`kb aliases NAME` resolves an actor name across every source (APT28 = Fancy Bear = Forest Blizzard). "
          "`kb load warninglists DIR` loads MISP warninglists (cidr, hostname, string, substring, regex) and "
          "flags the stored indicators that hit one; flagged indicators are kept but left out of exports. "
          "`kb flag` re-checks everything; `kb check KIND VALUE` tells which lists a value is on. "
          "`kb load misp-objects DIR` adds MISP object templates (`*/definition.json`) to the ones PyMISP ships, "
          "which MISP objects are read with; `kb objects FILE...` checks the objects of MISP events against them."),
    no_args_is_help=True,
    rich_markup_mode=None,
)


_print_json = print_json


@kb_app.command("load")
def load(
    ctx: typer.Context,
    pack: Pack = typer.Argument(..., help="Which pack: attack (an ATT&CK STIX bundle), misp-galaxy (MISP galaxy "
                                "`clusters/` folder), kev (CISA KEV JSON), warninglists (misp-warninglists `lists/`), "
                                "misp-objects (MISP object templates: a folder of */definition.json)."),
    path: Path = typer.Argument(..., help="The pack's folder or file."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Load a knowledge pack into the node. Bad records and files are reported; the rest load (exit 3 if any failed).

    Loading the same pack again changes nothing; a newer release adds newer versions.
    """
    from threatmesh.kb.warninglists import Warninglist, flag_store, read_warninglists, save_warninglists

    if not path.exists():
        raise InputError("no such file or directory", source=str(path))
    if pack is Pack.misp_objects:
        _load_templates(ctx, path, json_out)
        return
    if pack is not Pack.warninglists:
        _load_pack(ctx, pack, path, json_out)
        return
    lists: list[Warninglist] = []
    errors: list[str] = []
    for item in read_warninglists(path):
        if isinstance(item, InputError):
            errors.append(item.describe())
        else:
            lists.append(item)
    with open_cli_node(ctx) as node:
        save_warninglists(node.store, lists)
        hits = flag_store(node.store)
    summary = {"pack": pack.value, "lists": len(lists), "entries": sum(len(w.entries) for w in lists),
               "by_type": {t: sum(1 for w in lists if w.type == t) for t in sorted({w.type for w in lists})},
               "flagged_objects": len(hits), "errors": errors}
    if json_out:
        _print_json(summary)
    else:
        print(f"loaded {summary['lists']} warninglists ({summary['entries']:,} entries); "
              f"{len(hits)} stored objects flagged", file=sys.stderr)
        for error in errors:
            print(f"unreadable: {error}", file=sys.stderr)
    if errors:
        raise typer.Exit(3)


def _load_templates(ctx: typer.Context, path: Path, json_out: bool) -> None:
    from threatmesh.kb.misp_objects import load_misp_objects

    with open_cli_node(ctx) as node:
        result = load_misp_objects(node.store, path)
    if json_out:
        _print_json(result.as_dict())
    else:
        print(f"loaded {result.loaded} MISP object templates ({result.replaced} replace PyMISP's or earlier ones); "
              f"the node keeps {result.stored} beyond PyMISP's", file=sys.stderr)
        for error in result.errors:
            print(f"unreadable: {error}", file=sys.stderr)
    if result.errors:
        raise typer.Exit(3)


@kb_app.command("objects")
def objects(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="MISP event files (any of the three shapes)."),
    json_out: bool = typer.Option(False, "--json", help="Print [{file, object, template, problem}] as JSON."),
) -> None:
    """Check the objects of MISP events against the node's templates, storing nothing (exit 1 on a problem).

    Reports objects whose template is unknown, that lack required relations, hold relations their
    template does not define, or repeat a single-valued one. Ingest keeps such objects as they are.
    """
    from threatmesh.ingest.misp_convert import object_problems
    from threatmesh.ingest.misp_read import events_in_file
    from threatmesh.kb.misp_objects import registry_for_store

    with open_cli_node(ctx) as node:
        registry = registry_for_store(node.store)
    rows: list[dict[str, str]] = []
    checked = 0
    for file in files:
        try:
            for location, event in events_in_file(str(file)):
                checked += len(event.get("Object") or [])
                rows.extend({"file": location, "object": where, "problem": problem}
                            for where, problem in object_problems(event, registry))
        except InputError as exc:  # one unreadable file does not stop the others
            rows.append({"file": str(file), "object": "", "problem": f"unreadable: {exc.describe()}"})
    if json_out:
        _print_json(rows)
    else:
        for row in rows:
            print(", ".join(x for x in (row["file"], row["object"]) if x) + f": {row['problem']}")
        print(f"{checked} objects checked against {len(registry)} templates; {len(rows)} problems", file=sys.stderr)
    if rows:
        raise typer.Exit(1)


@kb_app.command("flag")
def flag(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print {object id: [lists]}.")) -> None:
    """Check every stored indicator and observable against the warninglists, and record the hits."""
    from threatmesh.kb.warninglists import flag_store

    with open_cli_node(ctx) as node:
        hits = flag_store(node.store)
    if json_out:
        _print_json(hits)
    else:
        print(f"{len(hits)} objects on a warninglist", file=sys.stderr)


@kb_app.command("check")
def check(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="Observable kind: ipv4-addr, ipv6-addr, domain-name, url, email-addr, file:hashes.MD5..."),
    value: str = typer.Argument(..., help="The value to look up."),
    json_out: bool = typer.Option(False, "--json", help="Print the list names as JSON."),
) -> None:
    """Which warninglists a value is on (exit 1 when none)."""
    from threatmesh.kb.warninglists import load_index

    with open_cli_node(ctx) as node:
        names = load_index(node.store).hits(kind, value)
    if json_out:
        _print_json(names)
    else:
        for name in names:
            print(name)
    if not names:
        raise typer.Exit(1)


@kb_app.command("list")
def list_(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The warninglists this node uses (built-in ones first)."""
    from threatmesh.kb.warninglists import stored_warninglists

    with open_cli_node(ctx) as node:
        lists = stored_warninglists(node.store)
    rows = [{"name": w.name, "type": w.type, "entries": len(w.entries)} for w in lists]
    if json_out:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['type']:<10} {row['entries']:>8,}  {row['name']}")


def _load_pack(ctx: typer.Context, pack: Pack, path: Path, json_out: bool) -> None:
    import time

    from threatmesh.cli import EXIT_PARTIAL, _print_ingest_summary, _progress, _short
    from threatmesh.kb.packs import load_attack, load_galaxy, load_kev

    loader = {Pack.attack: load_attack, Pack.misp_galaxy: load_galaxy, Pack.kev: load_kev}[pack]
    with open_cli_node(ctx) as node:
        with _progress() as progress:
            task = progress.add_task(f"loading {pack.value}", total=None, rate="")
            started = time.perf_counter()
            done = [0]

            def advance(n: int) -> None:
                done[0] += n
                progress.update(task, advance=n,
                                rate=f"{done[0] / max(time.perf_counter() - started, 1e-6):,.0f} obj/s")

            result = loader(node.store, path, progress=advance,
                            on_source=lambda label: progress.update(task, description=f"loading {_short(label)}"))
            progress.update(task, description=f"loaded {pack.value}")
    if json_out:
        _print_json(result.as_dict())
    else:
        _print_ingest_summary(result.report)
        details = {"actors": result.actors, **result.extra} if pack is not Pack.kev else result.extra
        print("; ".join(f"{k.replace('_', ' ')}: {v if not isinstance(v, list) else ', '.join(v) or 'none'}"
                        for k, v in details.items()), file=sys.stderr)
    if result.report.rejected or result.report.failed_sources:
        raise typer.Exit(EXIT_PARTIAL)


@kb_app.command("aliases")
def aliases(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="An actor name or alias (any case or punctuation), or an actor's STIX id."),
    json_out: bool = typer.Option(False, "--json", help="Print {id, name, attack_id, aliases: {name: [sources]}}."),
) -> None:
    """Resolve an actor across ATT&CK and the MISP galaxies, and list all its names with their sources.

    Needs `kb load attack` and/or `kb load misp-galaxy` first. Exit 1 when the name is unknown.
    """
    from threatmesh.kb.aliases import load_alias_index

    with open_cli_node(ctx) as node:
        actor = load_alias_index(node.store).actor(name)
    if actor is None:
        if json_out:
            _print_json(None)
        else:
            print(f"threatmesh: no actor named {name!r} (load packs with `threatmesh kb load attack|misp-galaxy`)",
                  file=sys.stderr)
        raise typer.Exit(1)
    names = actor.names()
    if json_out:
        _print_json({"id": actor.id, "name": actor.name, "attack_id": actor.attack_id or None, "aliases": names,
                     "members": [{"id": m.id, "name": m.name, "source": m.source} for m in actor.members]})
        return
    print(f"{actor.name}  {actor.id}" + (f"  (ATT&CK {actor.attack_id})" if actor.attack_id else ""))
    for spelling, sources in names.items():
        print(f"  {spelling:<32} {', '.join(s.removeprefix('misp-galaxy:') for s in sources)}")


def misp_feed(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The feed's URL (the folder holding manifest.json)."),
    collection: str = typer.Option(None, "--collection", "-c", help="Collection id or alias (default: the node's)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Ingest every event of a MISP feed served over HTTP(S) (manifest.json + <uuid>.json).

    A feed on disk is ingested with `threatmesh ingest FOLDER`. Exit 3 when an event was rejected.
    """
    from threatmesh.ingest.misp_read import read_feed_url
    from threatmesh.ingest.pipeline import SourceReport, ingest_raw
    from threatmesh.kb.misp_objects import registry_for_store

    with open_cli_node(ctx) as node:
        report = SourceReport(url)
        ingest_raw(read_feed_url(url, templates=registry_for_store(node.store)), node.store, report, collection_id=node.collection(collection).id,
                   source=f"feed:{url}")
    if json_out:
        _print_json(report.as_dict())
    else:
        print(f"{url}: {report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
              f"{len(report.rejected)} rejected", file=sys.stderr)
        if report.error:
            print(f"unreadable: {report.error}", file=sys.stderr)
        for r in report.rejected[:20]:
            print(f"rejected: {r.location}: {r.reason}", file=sys.stderr)
    if report.rejected or report.error:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
    app.command("misp-feed")(misp_feed)
