"""Random topologies, link rules, group memberships and markings (hypothesis, a few
cases, each a mesh of real nodes): after convergence every object is exactly
where tests/federation/rules.py puts it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.federation.mesh import Link, Mesh, indicator, malware, relationship
from tests.federation.test_mesh import _describe, check_invariants, expected_for

LEVELS = ["clear", "green", "amber", "amber+strict", "red", None]


@st.composite
def meshes(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=3, max_value=4))
    names = [f"r{i}" for i in range(n)]
    edges = {(names[draw(st.integers(0, i - 1))], names[i]) for i in range(1, n)}  # a random tree...
    for a, b in draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=2)):
        if a != b and (b, a) not in edges:
            edges.add((a, b))  # ...plus a chord or two: cycles
    links = [Link(a, b, role=draw(st.sampled_from(["community", "partner"])),
                  cleared_for=draw(st.sampled_from([(), ("amber",), ("amber", "amber+strict")])))
             for a, b in sorted(edges)]
    groups = {g: set(draw(st.lists(st.sampled_from(names), min_size=1, max_size=n, unique=True)))
              for g in ("ga", "gb")}
    objects: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        objs: list[dict[str, Any]] = []
        for k in range(draw(st.integers(1, 4))):
            level = draw(st.sampled_from(LEVELS))
            marked = draw(st.sampled_from([(), ("ga",), ("gb",)]))
            # A node marks for groups it is in (it knows those groups' definitions).
            marked = tuple(g for g in marked if name in groups[g])
            target = malware(f"{name}-m{k}", draw(st.sampled_from(LEVELS)))
            source = indicator(f"{name}-i{k}", level, marked)
            objs += [source, target,
                     relationship(f"{name}-rel{k}", source, target, draw(st.sampled_from(LEVELS)), marked)]
        objects[name] = objs
    return {"names": names, "links": links, "groups": groups, "objects": objects}


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(meshes())
def test_random_meshes_converge_to_what_the_rules_allow(case: dict[str, Any]) -> None:
    from tests.federation.mesh import group_definition

    with tempfile.TemporaryDirectory(prefix="tm-random-mesh-") as tmp:
        mesh = Mesh(Path(tmp), case["names"], case["links"], case["groups"])
        try:
            seeds: dict[str, list[dict[str, Any]]] = {}
            for name, node in mesh.nodes.items():
                own = [group_definition(g) for g in mesh.groups_of(name)] + case["objects"][name]
                node.seed(own)
                seeds[name] = own + [_identity(node)]
            expected = expected_for(mesh, seeds)
            mesh.start()
            seen = mesh.wait_until(expected, timeout=60)
            assert seen == expected, _describe(seen, expected)
            check_invariants(mesh, seeds, seen)
        finally:
            mesh.close()


def _identity(node: Any) -> dict[str, Any]:
    import orjson

    from threatmesh.store.sqlite import SQLiteStore

    with SQLiteStore(node.db, readonly=True) as store:
        latest = store.get_latest(node.identity_id)
        assert latest is not None
        return dict(orjson.loads(latest.json))
