"""The store's fact table, kept up to date incrementally, equals a pass over the whole store.

Each step stores a few objects in an order chosen to break a naive incremental
update (a relationship before the actor it names, a victim's country after the
incident, an alias that renames an actor, a sighting that inherits from a
campaign through an indicator), refreshes the table, and compares every fact,
the actor index and the pre-aggregated counts with `build_facts` over the store.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from threatmesh.analytics import KINDS, build_facts
from threatmesh.analytics.source import stored_facts
from threatmesh.analytics.summary import FactSummary
from threatmesh.node import Node, init_node
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import FactsRefresh


def _id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def _sdo(kind: str, modified: str = "2024-01-01T00:00:00.000Z", **props: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": props.pop("id", None) or _id(kind),
            "created": "2024-01-01T00:00:00.000Z", "modified": modified, **props}


def _rel(source: dict[str, Any], kind: str, target: dict[str, Any]) -> dict[str, Any]:
    return _sdo("relationship", relationship_type=kind, source_ref=source["id"], target_ref=target["id"])


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[Node]:
    created = init_node(tmp_path / "node", "facts", environ={}).node
    yield created
    created.close()


def _store(node: Node, *objects: dict[str, Any]) -> FactsRefresh:
    node.store.put_objects([parse_object(o) for o in objects], collection_id=node.default_collection.id,
                           source="test")
    return node.store.refresh_facts()


def _assert_same_as_a_pass(node: Node) -> None:
    store = node.store
    expected = build_facts(store.iter_objects())
    for kind in KINDS.values():
        assert store.load_facts(kind) == expected.of(kind), kind
    actors, sponsors = store.fact_actors()
    assert actors.canonical_by_id == expected.actors.canonical_by_id
    assert actors.aliases == expected.actors.aliases and actors.ids == expected.actors.ids
    assert sponsors == expected.actor_sponsors
    objects = Counter((v.type, v.tlp or "unmarked") for v in store.iter_objects())
    summary, wanted = store.fact_summary(), FactSummary.of(expected, objects)
    assert (dict(summary.objects), dict(summary.counts), summary.recent_sightings) == \
        (dict(wanted.objects), dict(wanted.counts), wanted.recent_sightings)


def test_incremental_refreshes_give_the_facts_of_a_full_pass(node: Node) -> None:
    ru, cn, de = (_sdo("location", name=c, country=c) for c in ("RU", "CN", "DE"))
    ministry = _sdo("identity", name="Ministry", identity_class="organization", sectors=["government"])
    a = _sdo("incident", name="A", x_threatmesh_date="2023-05-01")
    b = _sdo("incident", name="B", x_threatmesh_date="2024-02-01", confidence=80)
    first = _store(node, ru, cn, de, ministry, a, b, _rel(a, "targets", ministry))
    assert first.current and first.full  # the first refresh builds the table
    _assert_same_as_a_pass(node)

    actor = _sdo("intrusion-set", name="APT X", aliases=["Bear"])
    steps: list[tuple[dict[str, Any], ...]] = [
        (_rel(a, "attributed-to", actor),),  # names an actor not stored yet: no actor
        (actor,),  # the actor arrives: A is attributed to it
        (_rel(actor, "originates-from", ru),),  # the actor's sponsor: A inherits RU
        (_rel(ministry, "located-at", de),),  # the victim's country: A's victim country is DE
    ]
    campaign = _sdo("campaign", name="C", first_seen="2024-03-01T00:00:00Z")
    indicator = _sdo("indicator", pattern="[ipv4-addr:value = '198.51.100.7']", pattern_type="stix",
                     valid_from="2024-03-02T00:00:00Z")
    sighting = _sdo("sighting", sighting_of_ref=indicator["id"], where_sighted_refs=[ministry["id"]],
                    first_seen="2024-04-01T00:00:00Z")
    steps += [
        (sighting,),  # before what it is a sighting of
        (indicator, campaign, _rel(campaign, "attributed-to", actor), _rel(campaign, "targets", ministry)),
        (_rel(indicator, "indicates", campaign),),  # the sighting inherits the actor through two hops
        ({**ministry, "modified": "2024-06-01T00:00:00.000Z", "sectors": ["healthcare"]},),  # victim changes
        (_sdo("threat-actor", name="Bear"),),  # an alias object: the actor's canonical name changes
        (_rel(b, "attributed-to", cn),),
        (_sdo("report", name="R", published="2024-05-01T00:00:00Z", object_refs=[actor["id"]]),),
        ({**de, "modified": "2024-07-01T00:00:00.000Z", "country": "PL", "name": "PL"},),  # a location changes
    ]
    for n, objects in enumerate(steps):
        refreshed = _store(node, *objects)
        assert refreshed.current and not refreshed.full, n
        _assert_same_as_a_pass(node)
    facts = {f.name: f for f in node.store.load_facts("incident")}
    assert facts["A"].actor == ("Bear",) and facts["A"].sponsor == ("RU",) and facts["A"].victim_country == ("PL",)
    assert node.store.load_facts("sighting")[0].actor == ("Bear",)


def test_a_refresh_reads_only_what_is_new(node: Node) -> None:
    objects = [_sdo("incident", name=f"I{n}", x_threatmesh_date="2022-01-01") for n in range(50)]
    _store(node, *objects)
    again = node.store.refresh_facts()
    assert again.current and again.versions == 0 and again.recomputed == 0
    one = _store(node, _rel(objects[7], "attributed-to", _sdo("location", country="IR")))
    assert not one.full and one.versions == 1 and one.recomputed == 1
    _assert_same_as_a_pass(node)
    rebuilt = node.store.refresh_facts(full=True)
    assert rebuilt.full and rebuilt.recomputed == 50
    _assert_same_as_a_pass(node)


def test_the_collection_filter_and_the_facts_base(node: Node) -> None:
    from threatmesh.store.protocol import Collection

    other = node.store.add_collection(Collection(id=str(uuid.uuid4()), api_root="default", title="other",
                                                 description="", alias="other", public=False,
                                                 media_types=("application/stix+json;version=2.1",)))
    inside = _sdo("incident", name="inside", x_threatmesh_date="2021-01-01")
    node.store.put_objects([parse_object(inside)], collection_id=other.id, source="test")
    _store(node, _sdo("incident", name="outside", x_threatmesh_date="2021-01-01"))
    base = stored_facts(node.store, collection_id=other.id)
    assert base is not None and [f.name for f in base.of("incidents")] == ["inside"]
    assert sorted(f.name for f in node.store.load_facts("incident")) == ["inside", "outside"]


def test_the_summary_counts_as_top_does() -> None:
    from datetime import date

    from threatmesh.analytics import FIELDS, Fact, top
    from threatmesh.analytics.facts import FactBase
    from threatmesh.analytics.summary import KNOWN, contributions

    facts = [Fact(id=f"incident--{n}", kind="incident", name="", day=date(2020, 1 + n % 12, 1),
                  actor=("A", "B")[: n % 3], sponsor=("RU",), victim_country=("DE", "PL")[: n % 2 + 1],
                  sector=("government", "health")[n % 2:], type=("espionage",), tlp=("clear",), source=("local",))
             for n in range(30)]
    assert {key[2] for key in contributions(facts[5]) if key[1] == KNOWN} == set(FIELDS)
    summary = FactSummary.of(FactBase(facts={"incident": facts}), {})
    for name in FIELDS:
        assert summary.top(["incidents"], name, 5) == [r.__class__(r.value, r.count, r.share)
                                                       for r in top(facts, name, 5)], name
    assert sum(summary.months("incidents").values()) == 30 and summary.total("incident") == 30


def test_ingest_leaves_the_table_current(intel_home: Path) -> None:
    from threatmesh.node import open_node

    opened = open_node(intel_home)
    try:
        refreshed = opened.store.refresh_facts()
        assert refreshed.current and refreshed.versions == 0 and refreshed.recomputed == 0
        assert len(opened.store.load_facts("incident")) == 768
    finally:
        opened.close()


def test_a_read_only_store_behind_its_writes_counts_by_a_pass(node: Node) -> None:
    from threatmesh.analytics.source import operator_facts
    from threatmesh.store.sqlite import SQLiteStore

    _store(node, _sdo("incident", name="first", x_threatmesh_date="2020-01-01"))
    node.store.put_objects([parse_object(_sdo("incident", name="second", x_threatmesh_date="2020-02-01"))],
                           collection_id=node.default_collection.id, source="test")  # not refreshed
    with SQLiteStore(node.settings.db_path, readonly=True) as readonly:
        assert not readonly.refresh_facts().current and stored_facts(readonly) is None
        assert sorted(f.name for f in operator_facts(readonly).of("incidents")) == ["first", "second"]
