"""`threatmesh account|collection|taxii`: the CLI over the store and the TAXII client."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from tests.taxii.support import LiveServer, indicator
from threatmesh.cli_taxii import account_app, collection_app, taxii_app
from threatmesh.node import init_node, open_node
from threatmesh.stix.parse import parse_object
from threatmesh.web.app import create_app


@dataclass
class _Obj:
    home: Path


def _cli(home: Path) -> typer.Typer:
    """The three sub-apps mounted as cli.py mounts them, with --home resolved to `home`."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = _Obj(home)

    app.add_typer(account_app, name="account")
    app.add_typer(collection_app, name="collection")
    app.add_typer(taxii_app, name="taxii")
    return app


def run(home: Path, *args: str) -> Any:
    result = CliRunner().invoke(_cli(home), list(args), catch_exceptions=False)
    return result


def test_accounts_collections_rights_and_audit(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home, "cli node", environ={}).node.close()
    added = run(home, "account", "add", "peer", "--json")
    assert added.exit_code == 0, added.output
    key = json.loads(added.output)["api_key"]
    made = run(home, "collection", "add", "Shared", "--api-root", "allies", "--public", "--alias", "shared", "--json")
    assert made.exit_code == 0, made.output
    collection = json.loads(made.output)
    assert collection["api_root"] == "allies" and collection["public"] is True
    assert run(home, "account", "grant", "peer", "shared", "read,write").exit_code == 0
    bad = run(home, "account", "grant", "peer", "shared", "everything")
    assert bad.exit_code != 0
    listed = json.loads(run(home, "collection", "list", "--json").output)
    assert {c["title"] for c in listed} == {"Default", "Shared"}
    accounts = json.loads(run(home, "account", "list", "--json").output)
    assert [a["name"] for a in accounts] == ["admin", "peer"]
    assert "api_key" not in accounts[1] and key not in run(home, "account", "list").output

    node = open_node(home, environ={})
    try:
        assert node.store.rights("peer", collection["id"]).write is True
        node.store.audit("peer", "GET", "/taxii2/", 200, 0)
    finally:
        node.close()
    audit = json.loads(run(home, "account", "audit", "--account", "peer", "--json").output)
    assert [(e["method"], e["status"]) for e in audit] == [("GET", 200)]
    assert run(home, "account", "revoke", "peer").exit_code == 0
    assert json.loads(run(home, "account", "list", "--json").output)[1]["revoked"] is True


def test_collection_id_must_be_a_uuid4(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home, "n", environ={}).node.close()
    assert run(home, "collection", "add", "X", "--id", "not-a-uuid").exit_code != 0
    assert run(home, "collection", "add", "X", "--id", str(uuid.uuid1())).exit_code != 0
    wanted = str(uuid.uuid4())
    made = run(home, "collection", "add", "X", "--id", wanted, "--json")
    assert json.loads(made.output)["id"] == wanted


def test_discover_pull_and_push_between_two_nodes(tmp_path: Path) -> None:
    # The serving node holds 150 objects: 120 TLP:CLEAR and 30 TLP:RED.
    remote_home, local_home = tmp_path / "remote", tmp_path / "local"
    served = init_node(remote_home, "remote", environ={})
    remote = served.node
    objects = [indicator(n) for n in range(120)] + [indicator(1000 + n, tlp="red") for n in range(30)]
    remote_collection = remote.default_collection.id
    remote.store.put_objects([parse_object(o) for o in objects], collection_id=remote_collection, source="test")
    init_node(local_home, "local", environ={}).node.close()
    auth = ["--key", served.admin_key]
    try:
        with LiveServer(create_app(remote.settings, remote.store)) as server:
            found = run(local_home, "taxii", "discover", f"{server.url}/taxii2/", *auth, "--json")
            assert found.exit_code == 0, found.output
            roots = json.loads(found.output)["api_roots"]
            assert remote_collection in [c["id"] for c in roots[0]["collections"]]

            url = f"{server.url}/taxii2/default/"
            pulled = run(local_home, "taxii", "pull", url, "--collection", remote_collection, "--page-size", "40", *auth)
            assert pulled.exit_code == 0, pulled.output
            local = open_node(local_home, environ={})
            try:
                # The admin is the operator: everything, node identity included, arrives.
                ids = {v.id for v in local.store.iter_objects(local.default_collection.id)}
                assert {o["id"] for o in objects} <= ids
                assert all(v.source.startswith("peer:") for v in local.store.iter_objects(local.default_collection.id)
                           if v.id.startswith("indicator--"))
            finally:
                local.close()
            # Resumable: a second pull starts after the last page and gets nothing new.
            again = run(local_home, "taxii", "pull", url, "--collection", remote_collection, *auth)
            assert "pulled 0 objects" in again.output

            # Push back into a fresh remote collection: RED received from a peer never goes.
            target = json.loads(run(remote_home, "collection", "add", "Inbox", "--json").output)["id"]
            pushed = run(local_home, "taxii", "push", url, "--collection", target, "--type", "indicator", *auth)
            assert pushed.exit_code == 0, pushed.output
            assert "120 accepted" in pushed.output and "30 withheld" in pushed.output
            received = {v.id for v in remote.store.iter_objects(target)}
            assert received == {indicator(n)["id"] for n in range(120)}
    finally:
        remote.close()
