"""Property: for random collections and random filters, the server answers what a
straightforward reference computation over the same objects says (TAXII 2.1 §3.4)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.taxii.support import POST_HEADERS, bearer, indicator, malware
from threatmesh.node import Node, init_node
from threatmesh.store.protocol import Collection
from threatmesh.web.app import create_app


@pytest.fixture(scope="module")
def node_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, TestClient, str]]:
    created = init_node(tmp_path_factory.mktemp("ref") / "node", "ref", environ={})
    node = created.node
    node.settings = replace(node.settings, page_size_max=50, page_size_default=50)
    with TestClient(create_app(node.settings, node.store)) as client:
        yield node, client, created.admin_key
    node.close()


_object = st.tuples(st.sampled_from(["indicator", "malware"]), st.integers(0, 4), st.integers(0, 3))
_batches = st.lists(st.lists(_object, min_size=1, max_size=8), min_size=1, max_size=3)


def _make(kind: str, n: int, version: int) -> dict[str, Any]:
    return indicator(n, version) if kind == "indicator" else malware(n, version)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=_batches,
    pick_ids=st.none() | st.sets(st.tuples(st.sampled_from(["indicator", "malware"]), st.integers(0, 5)),
                                 min_size=1, max_size=3),
    pick_types=st.none() | st.sets(st.sampled_from(["indicator", "malware", "report"]), min_size=1),
    pick_versions=st.none() | st.just({"all"}) | st.sets(
        st.sampled_from(["first", "last", 0, 1, 2, 3, 7]), min_size=1, max_size=3),
    spec=st.none() | st.sets(st.sampled_from(["2.0", "2.1"]), min_size=1),
    after_index=st.none() | st.integers(0, 20),
    limit=st.none() | st.integers(1, 60),
)
def test_objects_match_the_reference(
    node_app: tuple[Node, TestClient, str],
    batches: list[list[tuple[str, int, int]]],
    pick_ids: set[tuple[str, int]] | None,
    pick_types: set[str] | None,
    pick_versions: set[Any] | None,
    spec: set[str] | None,
    after_index: int | None,
    limit: int | None,
) -> None:
    node, client, key = node_app
    c = node.store.add_collection(Collection(id=str(uuid.uuid4()), title="ref"))
    base = f"/taxii2/default/collections/{c.id}/"

    # Reference state: every (id, modified) in the order it first entered the collection.
    members: list[dict[str, Any]] = []
    for batch in batches:
        objects = [_make(*spec_) for spec_ in batch]
        response = client.post(base + "objects/", headers={**POST_HEADERS, "Authorization": f"Bearer {key}"},
                               json={"objects": objects})
        assert response.status_code == 202
        for obj in objects:
            if not any(m["id"] == obj["id"] and m["modified"] == obj["modified"] for m in members):
                members.append(obj)

    # date_added of each member, from the manifest; it must list them in insertion order.
    manifest = client.get(base + "manifest/?match[version]=all", headers=bearer(key)).json()
    records = manifest["objects"]
    assert [(r["id"], r["version"]) for r in records] == [(m["id"], m["modified"]) for m in members]

    params: list[tuple[str, str]] = []
    selected = list(range(len(members)))
    if pick_ids is not None:
        wanted_ids = {_make(kind, n, 0)["id"] for kind, n in pick_ids}
        params.append(("match[id]", ",".join(sorted(wanted_ids))))
        selected = [i for i in selected if members[i]["id"] in wanted_ids]
    if pick_types is not None:
        params.append(("match[type]", ",".join(sorted(pick_types))))
        selected = [i for i in selected if members[i]["type"] in pick_types]
    if spec is not None:
        params.append(("match[spec_version]", ",".join(sorted(spec))))
        selected = [i for i in selected if "2.1" in spec]
    versions = pick_versions or {"last"}
    if pick_versions is not None:
        values = [v if isinstance(v, str) else indicator(0, v)["modified"] for v in pick_versions]
        params.append(("match[version]", ",".join(sorted(values))))
    by_id: dict[str, list[str]] = {}
    for m in members:
        by_id.setdefault(m["id"], []).append(m["modified"])

    def version_selected(m: dict[str, Any]) -> bool:
        mine = by_id[m["id"]]
        return ("all" in versions
                or ("last" in versions and m["modified"] == max(mine))
                or ("first" in versions and m["modified"] == min(mine))
                or any(not isinstance(v, str) and indicator(0, v)["modified"] == m["modified"] for v in versions))

    selected = [i for i in selected if version_selected(members[i])]
    if after_index is not None and records:
        k = min(after_index, len(records) - 1)
        params.append(("added_after", records[k]["date_added"]))
        selected = [i for i in selected if i > k]
    expected = [(members[i]["id"], members[i]["modified"]) for i in selected]

    def get(extra: list[tuple[str, str]]) -> dict[str, Any]:
        response = client.get(base + "objects/", params=params + extra, headers=bearer(key))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    page_size = min(limit or 50, 50)
    first = get([("limit", str(limit))] if limit else [])
    got = [(o["id"], o["modified"]) for o in first.get("objects", [])]
    assert got == expected[:page_size]
    assert first["more"] == (len(expected) > page_size)

    # Walking every page with next gives exactly the reference, once each.
    walked = list(got)
    body = first
    while body.get("more"):
        body = get([("limit", str(page_size)), ("next", body["next"])])
        walked += [(o["id"], o["modified"]) for o in body.get("objects", [])]
    assert walked == expected

