"""CLI for accounts, collections and the TAXII client: `threatmesh account|collection|taxii ...`.

A thin layer over the store and `threatmesh.taxii.client`. The root command
(cli.py) mounts the three sub-apps and sets `ctx.obj.home`; errors are raised
as ThreatmeshError and printed as one line by its `main`.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional

import typer

from threatmesh.cli_support import open_cli_node, print_json
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from threatmesh.auth import hash_key, new_api_key
from threatmesh.errors import NotFound
from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.stix.timestamps import micros_to_timestamp, timestamp_to_micros
from threatmesh.store.protocol import Account, ApiRoot, Collection

account_app = typer.Typer(help="API accounts, their rights per collection, and the audit log.", no_args_is_help=True)
collection_app = typer.Typer(help="Collections and API roots served over TAXII.", no_args_is_help=True)
taxii_app = typer.Typer(help="Talk to other TAXII 2.1 servers: discover, pull, push.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


_node = open_cli_node
_print_json = print_json


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} objects"),
        TimeElapsedColumn(),
        console=err,
    )


# -- accounts ---------------------------------------------------------------------

@account_app.command("add")
def account_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Account name (a peer, a person, a tool)."),
    admin: bool = typer.Option(False, "--admin", help="Full rights on every collection."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create an account and print its API key (shown once; only its hash is stored)."""
    key = new_api_key()
    with _node(ctx) as node:
        node.store.add_account(Account(name=name, key_hash=hash_key(key), is_admin=admin))
    if json_out:
        _print_json({"name": name, "admin": admin, "api_key": key})
        return
    out.print(f"Created account [bold]{name}[/]{' (admin)' if admin else ''}")
    out.print(f"  API key  [bold]{key}[/]  (shown once; send it as Bearer, or as the Basic password)")


@account_app.command("list")
def account_list(
    ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List accounts (never their keys)."""
    with _node(ctx) as node:
        accounts = node.store.list_accounts()
    if json_out:
        _print_json([
            {"name": a.name, "admin": a.is_admin, "revoked": a.revoked, "created": micros_to_timestamp(a.created)}
            for a in accounts
        ])
        return
    table = Table("name", "admin", "revoked", "created")
    for a in accounts:
        table.add_row(a.name, "yes" if a.is_admin else "", "revoked" if a.revoked else "",
                      micros_to_timestamp(a.created))
    out.print(table)


@account_app.command("revoke")
def account_revoke(ctx: typer.Context, name: str = typer.Argument(..., help="Account name.")) -> None:
    """Revoke an account: its key stops working at once."""
    with _node(ctx) as node:
        node.store.revoke_account(name)
    out.print(f"Revoked account {name}", markup=False)


def _parse_rights(text: str) -> tuple[bool, bool]:
    parts = {p.strip() for p in text.lower().split(",") if p.strip()}
    if parts == {"none"}:
        return False, False
    if not parts or not parts <= {"read", "write"}:
        raise typer.BadParameter("give read, write, read,write or none")
    return "read" in parts, "write" in parts


@account_app.command("grant")
def account_grant(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Account name."),
    collection: str = typer.Argument(..., help="Collection id or alias."),
    rights: str = typer.Argument(..., help="read, write, read,write, or none to take rights away."),
) -> None:
    """Set an account's rights on a collection (replacing what it had)."""
    read, write = _parse_rights(rights)
    with _node(ctx) as node:
        found = node.store.get_collection(collection)
        node.store.grant(name, found.id, read=read, write=write)
    out.print(f"{name} on {found.title} ({found.id}): read={'yes' if read else 'no'} write={'yes' if write else 'no'}",
              markup=False, highlight=False)


@account_app.command("audit")
def account_audit(
    ctx: typer.Context,
    account: Optional[str] = typer.Option(None, "--account", help="Only this account's requests."),
    since: Optional[str] = typer.Option(None, "--since", help="Only requests after this timestamp."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many entries (newest first)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the audit log: every TAXII request with its account, status and object count."""
    try:
        since_us = timestamp_to_micros(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    with _node(ctx) as node:
        entries = node.store.audit_log(account=account, since=since_us, limit=limit)
    if json_out:
        _print_json([
            {"time": micros_to_timestamp(e.time), "account": e.account, "method": e.method,
             "endpoint": e.endpoint, "status": e.status, "objects": e.objects}
            for e in entries
        ])
        return
    table = Table("time", "account", "method", "endpoint", "status", "objects")
    for e in entries:
        table.add_row(micros_to_timestamp(e.time), e.account or "(anonymous)", e.method, e.endpoint,
                      str(e.status), str(e.objects))
    out.print(table)


# -- collections ------------------------------------------------------------------

@collection_app.command("add")
def collection_add(
    ctx: typer.Context,
    title: str = typer.Argument(..., help="Collection title."),
    collection_id: Optional[str] = typer.Option(None, "--id", help="Collection id (a UUID v4); new if absent."),
    api_root: str = typer.Option("default", "--api-root", help="API root NAME (created if missing)."),
    public: bool = typer.Option(False, "--public", help="Anyone may read it, without an API key."),
    description: str = typer.Option("", "--description", help="What the collection holds."),
    alias: Optional[str] = typer.Option(None, "--alias", help="Short unique name (also a URL)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a collection (and its API root if it does not exist yet)."""
    if collection_id is None:
        collection_id = str(uuid.uuid4())
    else:
        try:
            parsed = uuid.UUID(collection_id)
        except ValueError:
            raise typer.BadParameter("not a UUID", param_hint="--id") from None
        if parsed.version != 4 or str(parsed) != collection_id.lower():
            raise typer.BadParameter("TAXII collection ids are UUID v4", param_hint="--id")
        collection_id = str(parsed)
    with _node(ctx) as node:
        try:
            node.store.get_api_root(api_root)
        except NotFound:
            node.store.add_api_root(ApiRoot(name=api_root, title=api_root))
        created = node.store.add_collection(
            Collection(id=collection_id, title=title, api_root=api_root, description=description,
                       alias=alias, public=public)
        )
    if json_out:
        _print_json({"id": created.id, "title": created.title, "api_root": created.api_root,
                     "alias": created.alias, "public": created.public})
        return
    out.print(f"Created collection {created.title} ({created.id}) in API root {api_root}"
              + (" (public)" if public else ""), markup=False, highlight=False)


@collection_app.command("list")
def collection_list(
    ctx: typer.Context,
    api_root: Optional[str] = typer.Option(None, "--api-root", help="Only this API root."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List collections with their API root, alias and visibility."""
    with _node(ctx) as node:
        found = node.store.list_collections(api_root)
        counts = node.store.stats().by_collection
    if json_out:
        _print_json([
            {"id": c.id, "title": c.title, "api_root": c.api_root, "alias": c.alias, "public": c.public,
             "objects": counts.get(c.id, 0)}
            for c in found
        ])
        return
    table = Table("id", "title", "api root", "alias", "public", "objects")
    for c in found:
        table.add_row(c.id, c.title, c.api_root, c.alias or "", "yes" if c.public else "",
                      f"{counts.get(c.id, 0):,}")
    out.print(table)


# -- TAXII client -------------------------------------------------------------------

def _credentials(user: Optional[str], password: Optional[str], key: Optional[str], insecure: bool) -> Any:
    from threatmesh.taxii.client import Credentials

    return Credentials(user=user, password=password, key=key, verify=not insecure)


_USER = typer.Option(None, "--user", envvar="THREATMESH_TAXII_USER", help="HTTP Basic user name.")
_PASSWORD = typer.Option(None, "--password", envvar="THREATMESH_TAXII_PASSWORD", help="HTTP Basic password.")
_KEY = typer.Option(None, "--key", envvar="THREATMESH_TAXII_KEY", help="API key sent as Bearer.")
_INSECURE = typer.Option(False, "--insecure", help="Do not verify the server's TLS certificate.")


@taxii_app.command("discover")
def taxii_discover(
    url: str = typer.Argument(..., help="Discovery URL (…/taxii2/) of a TAXII 2.1 server."),
    user: Optional[str] = _USER,
    password: Optional[str] = _PASSWORD,
    key: Optional[str] = _KEY,
    insecure: bool = _INSECURE,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a server's API roots and the collections these credentials see."""
    from threatmesh.taxii.client import discover

    found = discover(url, _credentials(user, password, key, insecure))
    if json_out:
        _print_json(found)
        return
    out.print(f"{found['title']}  {found['url']}", markup=False, highlight=False)
    for root in found["api_roots"]:
        marker = " (default)" if root["url"] == found["default"] else ""
        out.print(f"  API root {root['url']}{marker}  {root.get('title', '')}", markup=False, highlight=False)
        if "error" in root:
            out.print(f"    error: {root['error']}", markup=False)
        for c in root.get("collections", []):
            rights = "+".join(r for r, ok in (("read", c["can_read"]), ("write", c["can_write"])) if ok) or "none"
            out.print(f"    {c['id']}  {c['title']}  [{rights}]", markup=False, highlight=False)


@taxii_app.command("pull")
def taxii_pull(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="API root URL (or a discovery URL with a default root)."),
    collection: str = typer.Option(..., "--collection", help="Remote collection id."),
    into: Optional[str] = typer.Option(None, "--into", help="Local collection (default: the node's default)."),
    added_after: Optional[str] = typer.Option(None, "--added-after", help="Start after this time, not where the last pull stopped."),
    peer: Optional[str] = typer.Option(None, "--peer", help="Name recorded as the objects' source (default: URL)."),
    page_size: int = typer.Option(1000, "--page-size", min=1, help="Objects per request."),
    user: Optional[str] = _USER,
    password: Optional[str] = _PASSWORD,
    key: Optional[str] = _KEY,
    insecure: bool = _INSECURE,
) -> None:
    """Copy a remote collection into this node; resumes where the previous pull stopped."""
    from threatmesh.taxii.client import pull

    if added_after:
        try:
            timestamp_to_micros(added_after)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--added-after") from None
    with _node(ctx) as node, _progress() as progress:
        local = node.collection(into)
        task = progress.add_task(f"pull {collection}", total=None)
        report = pull(
            node.store, url, collection, into=local.id, peer=peer or url,
            credentials=_credentials(user, password, key, insecure), added_after=added_after,
            page_size=page_size, on_page=lambda n: progress.advance(task, n),
        )
    for reason in report.rejected:
        err.print(f"rejected: {reason}", markup=False, highlight=False)
    out.print(f"pulled {report.received:,} objects in {report.pages} pages: {report.stored:,} stored, "
              f"{report.unchanged:,} already here, {len(report.rejected):,} rejected; "
              f"next pull starts after {report.resume_point or report.resumed_from or 'the beginning'}",
              markup=False, highlight=False)
    if report.rejected:
        raise typer.Exit(3)


@taxii_app.command("push")
def taxii_push(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="API root URL (or a discovery URL with a default root)."),
    collection: str = typer.Option(..., "--collection", help="Remote collection id."),
    source: Optional[str] = typer.Option(None, "--from", help="Local collection to send (default: the node's default)."),
    types: Optional[str] = typer.Option(None, "--type", help="Only these STIX types (comma-separated)."),
    added_after: Optional[str] = typer.Option(None, "--added-after", help="Only objects added here after this time."),
    all_versions: bool = typer.Option(False, "--all-versions", help="Send every version, not only the latest."),
    community: bool = typer.Option(False, "--community", help="The peer is in our community (TLP:GREEN may go)."),
    cleared_for: str = typer.Option("", "--cleared-for", help="TLP levels the peer is cleared for: amber, amber+strict."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Objects per request."),
    user: Optional[str] = _USER,
    password: Optional[str] = _PASSWORD,
    key: Optional[str] = _KEY,
    insecure: bool = _INSECURE,
) -> None:
    """Send local objects to a remote collection; TLP rules decide what may go."""
    from threatmesh.taxii.client import push

    wanted_types = {t.strip() for t in types.split(",") if t.strip()} if types else None
    try:
        after_us = timestamp_to_micros(added_after) if added_after else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--added-after") from None
    levels = frozenset(level.strip().lower() for level in cleared_for.split(",") if level.strip())
    if not levels <= {"amber", "amber+strict"}:
        raise typer.BadParameter("only amber and amber+strict need clearance", param_hint="--cleared-for")
    recipient = Recipient(url, RecipientKind.PEER, role="community" if community else "partner", cleared_for=levels)
    with _node(ctx) as node, _progress() as progress:
        local = node.collection(source)
        selection = (
            v for v in node.store.iter_objects(local.id, all_versions=all_versions)
            if (wanted_types is None or v.type in wanted_types) and (after_us is None or v.date_added > after_us)
        )
        task = progress.add_task(f"push to {collection}", total=None)
        report = push(
            node.store, url, collection, selection, recipient=recipient, default_tlp=node.settings.default_tlp,
            credentials=_credentials(user, password, key, insecure), batch_size=batch_size,
            on_batch=lambda n: progress.advance(task, n),
        )
    for failure in report.failed:
        err.print(f"refused by the server: {failure}", markup=False, highlight=False)
    for rule, count in sorted(report.withheld_rules.items()):
        err.print(f"withheld {count:,}: {rule}", markup=False, highlight=False)
    out.print(f"sent {report.sent:,} objects in {report.envelopes} requests: {report.succeeded:,} accepted, "
              f"{len(report.failed):,} refused, {report.withheld:,} withheld by TLP policy",
              markup=False, highlight=False)
    if report.failed:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Mount the account, collection and taxii command groups on the main CLI."""
    app.add_typer(account_app, name="account")
    app.add_typer(collection_app, name="collection")
    app.add_typer(taxii_app, name="taxii")
