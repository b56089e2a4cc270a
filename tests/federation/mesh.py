"""A mesh of real threatmesh nodes for the federation tests.

Every node is a separate `threatmesh serve` process with its own home (its
own SQLite file) and its own port on 127.0.0.1. Nodes are created and linked
through the library before they start (the same `add_peer` the CLI calls),
seeded through the store, and read back read-only while they run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson
import requests

from threatmesh.federation.peers import add_peer
from threatmesh.node import init_node, open_node
from threatmesh.share.policy import sharing_group_marking, sharing_group_marking_id
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Peer
from threatmesh.store.sqlite import SQLiteStore

TLP_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
THREATMESH = [sys.executable, "-m", "threatmesh.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stix_id(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(map(str, parts)))}"


def ts(n: int = 0) -> str:
    return f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000Z"


def markings(tlp: str | None, groups: Iterable[str] = ()) -> dict[str, Any]:
    refs = ([TLP_IDS[tlp]] if tlp else []) + [sharing_group_marking_id(g) for g in groups]
    return {"object_marking_refs": refs} if refs else {}


def indicator(key: str, tlp: str | None, groups: Iterable[str] = (), version: int = 0, **extra: Any) -> dict[str, Any]:
    n = uuid.uuid5(uuid.NAMESPACE_URL, key).int
    return {
        "type": "indicator", "spec_version": "2.1", "id": stix_id("indicator", key), "created": ts(0),
        "modified": ts(version), "name": f"indicator {key}", "pattern_type": "stix", "valid_from": ts(0),
        "pattern": f"[ipv4-addr:value = '198.51.{n % 250}.{n // 250 % 250}']", **markings(tlp, groups), **extra,
    }


def malware(key: str, tlp: str | None, groups: Iterable[str] = ()) -> dict[str, Any]:
    return {"type": "malware", "spec_version": "2.1", "id": stix_id("malware", key), "created": ts(0),
            "modified": ts(0), "name": f"malware {key}", "is_family": True, **markings(tlp, groups)}


def identity(key: str, tlp: str | None) -> dict[str, Any]:
    return {"type": "identity", "spec_version": "2.1", "id": stix_id("identity", key), "created": ts(0),
            "modified": ts(0), "name": f"org {key}", "identity_class": "organization", **markings(tlp)}


def relationship(key: str, source: dict[str, Any], target: dict[str, Any], tlp: str | None,
                 groups: Iterable[str] = ()) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": stix_id("relationship", key), "created": ts(0),
            "modified": ts(0), "relationship_type": "indicates", "source_ref": source["id"],
            "target_ref": target["id"], **markings(tlp, groups)}


def sighting(key: str, of: dict[str, Any], where: dict[str, Any], tlp: str | None) -> dict[str, Any]:
    return {"type": "sighting", "spec_version": "2.1", "id": stix_id("sighting", key), "created": ts(0),
            "modified": ts(0), "sighting_of_ref": of["id"], "where_sighted_refs": [where["id"]], "count": 1,
            **markings(tlp)}


def group_definition(group: str) -> dict[str, Any]:
    return sharing_group_marking(group)


@dataclass
class Link:
    """What `a` knows of `b` (and `b` of `a`: links are symmetric in these tests)."""

    a: str
    b: str
    role: str = "community"
    cleared_for: tuple[str, ...] = ()


@dataclass
class MeshNode:
    name: str
    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    identity_id: str = ""
    collection_id: str = ""
    public_key: str | None = None
    admin_key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/taxii2/default/"

    @property
    def db(self) -> Path:
        return self.home / "threatmesh.db"

    def init(self) -> None:
        created = init_node(self.home, self.name, environ={})
        self.identity_id = created.node.identity_id
        self.admin_key = created.admin_key
        self.public_key = created.node.store.get_meta("node_public_key")
        self.collection_id = created.node.default_collection.id
        created.node.close()

    def start(self, env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> None:
        log = open(self.home / "serve.log", "ab")
        self.proc = subprocess.Popen(
            [*THREATMESH, "--home", str(self.home), "serve", "--port", str(self.port), *(extra_args or [])],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        log.close()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: {(self.home / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"node {self.name} did not start")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None

    def seed(self, objects: list[dict[str, Any]], source: str = "seed") -> None:
        node = open_node(self.home, environ={})
        try:
            node.store.put_objects([parse_object(o) for o in objects], collection_id=self.collection_id,
                                   source=source)
        finally:
            node.close()

    def holdings(self) -> set[tuple[str, str]]:
        """(id, `modified`) of every version in the node's default collection."""
        with SQLiteStore(self.db, readonly=True) as store:
            return {(v.id, str(orjson.loads(v.json).get("modified", ""))) for v in
                    store.iter_objects(self.collection_id, all_versions=True)}

    def duplicates(self) -> int:
        """Versions stored more than once (by id and modified): must always be 0."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            (dupes,) = conn.execute(
                "SELECT count(*) FROM (SELECT id, json_extract(json, '$.modified') m, count(*) c FROM objects"
                " GROUP BY id, m HAVING c > 1)").fetchone()
            (members,) = conn.execute(
                "SELECT count(*) FROM (SELECT collection_id, pk, count(*) c FROM memberships"
                " GROUP BY collection_id, pk HAVING c > 1)").fetchone()
        finally:
            conn.close()
        return int(dupes) + int(members)


class Mesh:
    """Nodes and links; `start()` runs every node, `close()` stops them all."""

    def __init__(self, base: Path, names: list[str], links: list[Link], groups: dict[str, set[str]]) -> None:
        self.nodes = {n: MeshNode(n, base / n) for n in names}
        self.links = links
        self.groups = groups  # group -> member node names
        for node in self.nodes.values():
            node.init()
        keys: dict[tuple[str, str], str] = {}
        for link in links:
            for here, there in ((link.a, link.b), (link.b, link.a)):
                keys[(here, there)] = self._register(here, there, link)
        # Each side presents the key the other side made for it.
        for (here, there), _ in keys.items():
            node = open_node(self.nodes[here].home, environ={})
            try:
                peer = node.store.get_peer(there)
                node.store.update_peer(Peer(**{**_peer_fields(peer), "credential": keys[(there, here)],
                                                "public_key": self.nodes[there].public_key}))
            finally:
                node.close()

    def groups_of(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(g for g, members in self.groups.items() if name in members))

    def _register(self, here: str, there: str, link: Link) -> str:
        node = open_node(self.nodes[here].home, environ={})
        try:
            added = add_peer(node.store, node.default_collection.id, Peer(
                name=there, url=self.nodes[there].url, account="", role=link.role,
                cleared_for=link.cleared_for, groups=self.groups_of(there),
            ))
        finally:
            node.close()
        return added.key

    def neighbours(self, name: str) -> list[tuple[str, Link]]:
        found = []
        for link in self.links:
            if link.a == name:
                found.append((link.b, link))
            elif link.b == name:
                found.append((link.a, link))
        return found

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_ready()

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def wait_until(self, expected: dict[str, set[tuple[str, str]]], timeout: float = 60.0,
                   settle: float = 2.0) -> dict[str, set[tuple[str, str]]]:
        """Poll until every node holds exactly `expected` (then `settle` seconds more, to see
        that nothing else arrives); returns the last holdings seen either way."""
        deadline = time.monotonic() + timeout
        seen: dict[str, set[tuple[str, str]]] = {}
        while time.monotonic() < deadline:
            seen = {n: node.holdings() for n, node in self.nodes.items()}
            if seen == expected:
                time.sleep(settle)
                return {n: node.holdings() for n, node in self.nodes.items()}
            time.sleep(0.3)
        return seen


def _peer_fields(peer: Peer) -> dict[str, Any]:
    return {f: getattr(peer, f) for f in peer.__dataclass_fields__}
