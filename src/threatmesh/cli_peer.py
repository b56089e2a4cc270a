"""CLI for federation: `threatmesh peer add|set|list|show|remove|explain` and `threatmesh sync`.

A thin layer over the store's peer records and `threatmesh.federation`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

import typer
from rich.table import Table

from threatmesh.cli_taxii import _node, _print_json, _progress, err, out
from threatmesh.errors import NotFound
from threatmesh.federation.peers import add_peer
from threatmesh.federation.recipients import CLEARANCES, ROLES, peer_recipient
from threatmesh.share.keys import META_PUBLIC_KEY
from threatmesh.share.outbound import explain
from threatmesh.share.redact import RedactionSettings
from threatmesh.stix.timestamps import micros_to_timestamp
from threatmesh.store.protocol import Peer, Store

peer_app = typer.Typer(help="Peers this node shares with over TAXII 2.1, under the egress policy.",
                       no_args_is_help=True)

_KEY = typer.Option(None, "--key", help="What this node presents to the peer: its API key, or user:password.")
_ROLE = typer.Option(None, "--role", help="community (may receive TLP:GREEN) or partner.")
_CLEAR = typer.Option(None, "--clear-for", help="TLP levels the peer is cleared for: amber, amber+strict.")
_GROUPS = typer.Option(None, "--groups", help="Sharing groups the peer belongs to (comma-separated).")
_PULL = typer.Option(None, "--pull", help="Remote collections to pull (ids or aliases; 'none' for none).")
_PUSH = typer.Option(None, "--push", help="Remote collections to push to (ids or aliases; 'none' for none).")
_PUBLIC_KEY = typer.Option(
    None, "--public-key",
    help="The peer's Ed25519 public key (a threatmesh node): once set, what the peer sends is stored only under its "
         "valid signature; unsigned or altered objects are refused and reported.")
_JSON = typer.Option(False, "--json", help="Print JSON.")


def _split(text: str) -> tuple[str, ...]:
    parts = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    return () if parts == ("none",) else parts


def _role(text: str) -> str:
    if text not in ROLES:
        raise typer.BadParameter(f"give one of {', '.join(ROLES)}", param_hint="--role")
    return text


def _clearances(text: str) -> tuple[str, ...]:
    levels = tuple(level.lower() for level in _split(text))
    if not set(levels) <= set(CLEARANCES):
        raise typer.BadParameter("only amber and amber+strict need clearance", param_hint="--clear-for")
    return levels


@peer_app.command("add")
def peer_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A short name for the peer."),
    url: str = typer.Argument(..., help="The peer's TAXII API root URL (or discovery URL)."),
    key: Optional[str] = _KEY,
    role: str = typer.Option("partner", "--role", help="community (may receive TLP:GREEN) or partner."),
    clear_for: str = typer.Option("", "--clear-for", help="TLP levels the peer is cleared for: amber, amber+strict."),
    groups: str = typer.Option("", "--groups", help="Sharing groups the peer belongs to (comma-separated)."),
    pull: str = typer.Option("default", "--pull", help="Remote collections to pull ('none' for none)."),
    push: str = typer.Option("default", "--push", help="Remote collections to push to ('none' for none)."),
    public_key: Optional[str] = _PUBLIC_KEY,
    json_out: bool = _JSON,
) -> None:
    """Register a peer, and create the account it uses to reach this node (its key is printed once)."""
    with _node(ctx) as node:
        collection = node.default_collection
        added = add_peer(node.store, collection.id, Peer(
            name=name, url=url, account="", credential=key, role=_role(role), cleared_for=_clearances(clear_for),
            groups=_split(groups), pull=_split(pull), push=_split(push), public_key=public_key,
        ))
        public = node.store.get_meta(META_PUBLIC_KEY)  # give it to the peer: it verifies what we sign
    peer, peer_key, account = added.peer, added.key, added.peer.account
    if json_out:
        _print_json({"name": peer.name, "key": peer_key, "account": account, "collection": collection.id,
                     "public_key": public})
        return
    out.print(f"Added peer {peer.name} ({peer.url}), {peer.role}"
              + (f", cleared for {', '.join(peer.cleared_for)}" if peer.cleared_for else ""),
              markup=False, highlight=False)
    out.print(f"  the peer reaches this node with key {peer_key}  (shown once)", markup=False, highlight=False)
    if public:
        out.print(f"  this node's public key (for the peer's --public-key): {public}", markup=False, highlight=False)
    out.print(f"  collection it reads and writes: {collection.id} ({collection.alias})", markup=False,
              highlight=False)


@peer_app.command("set")
def peer_set(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Peer name."),
    url: Optional[str] = typer.Option(None, "--url", help="The peer's TAXII API root URL."),
    key: Optional[str] = _KEY,
    role: Optional[str] = _ROLE,
    clear_for: Optional[str] = _CLEAR,
    groups: Optional[str] = _GROUPS,
    pull: Optional[str] = _PULL,
    push: Optional[str] = _PUSH,
    public_key: Optional[str] = _PUBLIC_KEY,
) -> None:
    """Change a peer's settings; options not given stay as they are."""
    with _node(ctx) as node:
        peer = node.store.get_peer(name)
        changed = replace(
            peer,
            url=url if url is not None else peer.url,
            credential=key if key is not None else peer.credential,
            role=_role(role) if role is not None else peer.role,
            cleared_for=_clearances(clear_for) if clear_for is not None else peer.cleared_for,
            groups=_split(groups) if groups is not None else peer.groups,
            pull=_split(pull) if pull is not None else peer.pull,
            push=_split(push) if push is not None else peer.push,
            public_key=public_key if public_key is not None else peer.public_key,
        )
        node.store.update_peer(changed)
    out.print(f"Updated peer {name}", markup=False, highlight=False)


def _when(us: int) -> str:
    return micros_to_timestamp(us) if us else "never"


def _peer_summary(store: Store, peer: Peer, collection_id: str) -> dict[str, Any]:
    from threatmesh.federation.sync import lag_seconds

    state = store.get_sync_state(peer.name)
    return {
        "name": peer.name, "url": peer.url, "role": peer.role, "cleared_for": list(peer.cleared_for),
        "groups": list(peer.groups), "pull": list(peer.pull), "push": list(peer.push), "account": peer.account,
        "signed": bool(peer.public_key), "last_sync": _when(state.last_success), "last_attempt": _when(state.last_attempt),
        "lag_seconds": lag_seconds(store, peer, collection_id), "error": state.last_error,
        "consecutive_failures": state.failures, "sent": state.sent, "received": state.received,
        "refused": state.refused, "failed": state.failed, "rejected": state.rejected,
    }


@peer_app.command("list")
def peer_list(ctx: typer.Context, json_out: bool = _JSON) -> None:
    """Peers with their last sync, lag and errors."""
    with _node(ctx) as node:
        collection_id = node.default_collection.id
        rows = [_peer_summary(node.store, p, collection_id) for p in node.store.list_peers()]
    if json_out:
        _print_json(rows)
        return
    table = Table("name", "url", "role", "cleared", "groups", "last sync", "lag", "sent", "received", "error")
    for r in rows:
        lag = "" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}s"
        table.add_row(r["name"], r["url"], r["role"], ",".join(r["cleared_for"]), ",".join(r["groups"]),
                      r["last_sync"], lag, f"{r['sent']:,}", f"{r['received']:,}", r["error"] or "")
    out.print(table)


@peer_app.command("show")
def peer_show(ctx: typer.Context, name: str = typer.Argument(..., help="Peer name."), json_out: bool = _JSON) -> None:
    """One peer: settings, sync state, cursors and the objects it sent that were refused."""
    from threatmesh.federation.sync import PULL, PUSH

    with _node(ctx) as node:
        peer = node.store.get_peer(name)
        summary = _peer_summary(node.store, peer, node.default_collection.id)
        summary["cursors"] = {
            **{f"pull {c}": node.store.get_sync_cursor(name, PULL, c) for c in peer.pull},
            **{f"push {c}": node.store.get_sync_cursor(name, PUSH, c) for c in peer.push},
        }
        summary["rejections"] = [
            {"time": micros_to_timestamp(r.time), "id": r.object_id, "version": r.version, "reason": r.reason}
            for r in node.store.peer_rejections(name, limit=50)
        ]
    if json_out:
        _print_json(summary)
        return
    for key, value in summary.items():
        if key != "rejections":
            out.print(f"{key:>22}  {value}", markup=False, highlight=False)
    for r in summary["rejections"]:
        out.print(f"  refused {r['time']} {r['id']} {r['version']}: {r['reason']}", markup=False, highlight=False)


@peer_app.command("remove")
def peer_remove(ctx: typer.Context, name: str = typer.Argument(..., help="Peer name.")) -> None:
    """Forget a peer and revoke the account it used to reach this node."""
    with _node(ctx) as node:
        peer = node.store.get_peer(name)
        node.store.remove_peer(name)
        try:
            node.store.revoke_account(peer.account)
        except NotFound:
            pass
    out.print(f"Removed peer {name}; its account {peer.account} is revoked", markup=False, highlight=False)


@peer_app.command("explain")
def peer_explain(
    ctx: typer.Context,
    object_id: str = typer.Argument(..., help="A STIX id."),
    name: str = typer.Argument(..., help="Peer name."),
    json_out: bool = _JSON,
) -> None:
    """Whether an object's latest version may go to a peer, and which rule decided."""
    with _node(ctx) as node:
        peer = node.store.get_peer(name)
        found = explain(node.store, object_id, peer_recipient(peer), default_tlp=node.settings.default_tlp,
                        redaction=RedactionSettings.from_settings(node.settings))
    result = {"object": object_id, "version": found.version, "peer": name, "allowed": found.decision.allowed,
              "rule": found.decision.rule, "code": found.decision.code, "refs_dropped": list(found.refs_dropped),
              "redactions": len(found.redactions)}
    allowed, rule = found.decision.allowed, found.decision.rule
    if json_out:
        _print_json(result)
        return
    verdict = "may go to" if allowed else "may NOT go to"
    out.print(f"{object_id} ({found.version}) {verdict} {name}: {rule}", markup=False, highlight=False)


def sync_command(
    ctx: typer.Context,
    peer: Optional[str] = typer.Option(None, "--peer", help="Only this peer."),
    json_out: bool = _JSON,
) -> None:
    """One sync round now with every peer (or one): pull, then push; per-peer summary."""
    from threatmesh.federation.node_sync import context_for
    from threatmesh.federation.sync import sync_peer

    with _node(ctx) as node:
        peers = [node.store.get_peer(peer)] if peer else node.store.list_peers()
        sync_ctx = context_for(node)
        reports = []
        with _progress() as progress:
            for p in peers:
                task = progress.add_task(f"sync {p.name}", total=None)

                def advance(_what: str, n: int, task: Any = task) -> None:
                    progress.advance(task, n)

                reports.append(sync_peer(sync_ctx, p, progress=advance))
    if json_out:
        _print_json([r.as_dict() for r in reports])
    else:
        table = Table("peer", "sent", "received", "refused by policy", "failed", "rejected", "bytes out", "bytes in",
                      "error")
        for r in reports:
            table.add_row(r.peer, f"{r.sent:,}", f"{r.received:,}", f"{r.refused:,}", f"{r.failed:,}",
                          f"{r.rejected:,}", f"{r.bytes_sent:,}", f"{r.bytes_received:,}", r.error or "")
        out.print(table)
        for r in reports:
            for rule, count in sorted(r.refused_rules.items()):
                err.print(f"{r.peer}: withheld {count:,}: {rule}", markup=False, highlight=False)
            for line in r.failures[:20] + r.rejections[:20]:
                err.print(f"{r.peer}: {line}", markup=False, highlight=False)
    if any(r.error or r.failed or r.rejected for r in reports):
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Mount `peer` and `sync` on the main CLI."""
    app.add_typer(peer_app, name="peer")
    app.command("sync")(sync_command)
