"""Five real nodes in a line, a ring and a hub with spokes: after sync converges every
object is exactly where the rules put it (tests/federation/rules.py), nothing is
stored twice, no RED object left its node and no AMBER object was forwarded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.federation.mesh import (
    Link,
    Mesh,
    group_definition,
    identity,
    indicator,
    malware,
    relationship,
    sighting,
    ts,
)
from tests.federation.rules import LinkRule, expected_holdings

NAMES = ["n0", "n1", "n2", "n3", "n4"]
GROUPS = {"g1": {"n0", "n1", "n2"}, "g2": {"n2", "n3", "n4"}}


def link_rules(i: int, a: str, b: str) -> Link:
    """A mix of community and partner links, cleared for nothing, AMBER, or both AMBER levels."""
    role = "partner" if i % 3 == 2 else "community"
    cleared = [(), ("amber",), ("amber", "amber+strict")][i % 3 if i % 2 == 0 else (i + 1) % 3]
    return Link(a, b, role=role, cleared_for=cleared)


TOPOLOGIES = {
    "line": [(NAMES[i], NAMES[i + 1]) for i in range(4)],
    "ring": [(NAMES[i], NAMES[(i + 1) % 5]) for i in range(5)],
    "hub": [("n0", n) for n in NAMES[1:]],
}


def seeds_for(name: str, groups: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every TLP level, sharing groups, relationships across levels, sightings."""
    c = indicator(f"{name}-clear", "clear")
    g = indicator(f"{name}-green", "green")
    a = indicator(f"{name}-amber", "amber")
    s = indicator(f"{name}-amber-strict", "amber+strict")
    r = indicator(f"{name}-red", "red")
    u = indicator(f"{name}-unmarked", None)
    m = malware(f"{name}-malware", "clear")
    org = identity(f"{name}-org", "clear")
    objs = [c, g, a, s, r, u, m, org,
            relationship(f"{name}-green-to-clear", g, m, "green"),
            relationship(f"{name}-clear-to-red", c, r, "clear"),  # would leak the red indicator
            relationship(f"{name}-green-to-amber", a, m, "green"),  # goes only where the amber one may
            sighting(f"{name}-sighting-clear", c, org, "clear"),
            sighting(f"{name}-sighting-of-red", r, org, "green")]
    for group in groups:
        objs += [group_definition(group),
                 indicator(f"{name}-{group}-green", "green", [group]),
                 indicator(f"{name}-{group}-clear", "clear", [group])]
    return objs


def build(tmp: Path, topology: list[tuple[str, str]]) -> tuple[Mesh, dict[str, list[dict[str, Any]]]]:
    links = [link_rules(i, a, b) for i, (a, b) in enumerate(topology)]
    mesh = Mesh(tmp, NAMES, links, GROUPS)
    seeds: dict[str, list[dict[str, Any]]] = {}
    for name, node in mesh.nodes.items():
        seeds[name] = seeds_for(name, mesh.groups_of(name))
        node.seed(seeds[name])
        # The node's own identity (unmarked: the AMBER default) is in its collection too.
        from threatmesh.node import open_node

        opened = open_node(node.home, environ={})
        try:
            latest = opened.store.get_latest(opened.identity_id)
            assert latest is not None
            import orjson

            seeds[name].append(orjson.loads(latest.json))
        finally:
            opened.close()
    return mesh, seeds


def expected_for(mesh: Mesh, seeds: dict[str, list[dict[str, Any]]]) -> dict[str, set[tuple[str, str]]]:
    def neighbours(name: str) -> list[tuple[str, LinkRule]]:
        return [(other, LinkRule(link.role, link.cleared_for)) for other, link in mesh.neighbours(name)]

    return expected_holdings(seeds, neighbours, mesh.groups_of)


@pytest.fixture
def mesh_factory(tmp_path: Path) -> Iterator[Any]:
    built: list[Mesh] = []

    def make(topology: list[tuple[str, str]]) -> tuple[Mesh, dict[str, list[dict[str, Any]]]]:
        mesh, seeds = build(tmp_path, topology)
        built.append(mesh)
        return mesh, seeds

    yield make
    for mesh in built:
        mesh.close()


def _describe(seen: dict[str, set[tuple[str, str]]], expected: dict[str, set[tuple[str, str]]]) -> str:
    lines = []
    for node in sorted(expected):
        missing = expected[node] - seen.get(node, set())
        extra = seen.get(node, set()) - expected[node]
        if missing or extra:
            lines.append(f"{node}: missing {sorted(missing)[:5]} ({len(missing)}), extra {sorted(extra)[:5]} ({len(extra)})")
    return "\n".join(lines)


def check_invariants(mesh: Mesh, seeds: dict[str, list[dict[str, Any]]], seen: dict[str, set[tuple[str, str]]]) -> None:
    for name, node in mesh.nodes.items():
        assert node.duplicates() == 0, f"{name} stored a version twice"
    neighbours = {n: {o for o, _ in mesh.neighbours(n)} for n in mesh.nodes}
    for origin, objs in seeds.items():
        for obj in objs:
            key = (obj["id"], str(obj.get("modified", "")))
            refs = obj.get("object_marking_refs", [])
            holders = {n for n, held in seen.items() if key in held}
            if "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1" in refs:
                assert holders == {origin}, f"RED {obj['id']} left {origin}: {holders}"
            amber = {"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
                     "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"}
            if amber & set(refs) or (not refs and obj["type"] != "marking-definition"):
                assert holders <= {origin} | neighbours[origin], f"AMBER {obj['id']} forwarded: {holders}"


@pytest.mark.parametrize("shape", sorted(TOPOLOGIES))
def test_mesh_converges_to_exactly_what_the_rules_allow(mesh_factory: Any, shape: str) -> None:
    mesh, seeds = mesh_factory(TOPOLOGIES[shape])
    expected = expected_for(mesh, seeds)
    # The rules must leave something to share and something to hold back, or the test proves little.
    assert any(len(held) > len(seeds[n]) for n, held in expected.items())
    mesh.start()
    seen = mesh.wait_until(expected, timeout=60)
    assert seen == expected, _describe(seen, expected)
    check_invariants(mesh, seeds, seen)

    if shape == "line":
        # New versions and revocations travel like any object, in near real time.
        first = mesh.nodes["n0"]
        newer = indicator("n0-clear", "clear", version=5, description="second version")
        revoked = indicator("n0-green", "green", version=6, revoked=True)
        first.seed([newer, revoked], source="user:analyst")
        seeds["n0"] += [newer, revoked]
        expected = expected_for(mesh, seeds)
        assert ("indicator--" in newer["id"]) and any((newer["id"], ts(5)) in h for n, h in expected.items() if n != "n0")
        seen = mesh.wait_until(expected, timeout=30)
        assert seen == expected, _describe(seen, expected)
        check_invariants(mesh, seeds, seen)

        # A deletion at the author propagates as a revocation: a new version with revoked: true.
        media = "application/taxii+json;version=2.1"
        answer = requests.delete(f"{first.url}collections/{first.collection_id}/objects/{newer['id']}/",
                                 headers={"Accept": media, "Authorization": f"Bearer {first.admin_key}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        holders = [n for n, held in seen.items() if (newer["id"], ts(5)) in held and n != "n0"]
        assert holders, "the object must have been shared for its deletion to propagate"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(_latest_revoked(mesh.nodes[n], newer["id"]) for n in holders):
                break
            time.sleep(0.3)
        assert all(_latest_revoked(mesh.nodes[n], newer["id"]) for n in holders + ["n0"])
        for node in mesh.nodes.values():
            assert node.duplicates() == 0


def _latest_revoked(node: Any, object_id: str) -> bool:
    from threatmesh.store.sqlite import SQLiteStore

    with SQLiteStore(node.db, readonly=True) as store:
        latest = store.get_latest(object_id)
    return latest is not None and latest.revoked
