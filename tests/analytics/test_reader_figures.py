"""A reader's figures from the fact table's reaches equal the full pass through the egress path.

The store mixes every case the egress policy and the reference rule decide:
TLP levels, unmarked objects under the node default, AMBER received from a
peer (never forwarded, yet a reference to it goes back to that peer),
sharing groups, an incident at CLEAR attributed through a RED relationship,
actors merged through an alias that one of them only has at RED, reports
that lose refs or all of them, sightings of indicators that arrive later,
a re-marked victim, and a name that redaction rewrites. For recipients of
every kind (public, community and partner peers, cleared or not, members of
a group or not) and two node defaults, `Viewer._reader_snapshot` (the table)
must give what `Viewer.pass_snapshot` (the pass) gives: object counts by
type and TLP, withheld, every pre-aggregated count, recent sightings, every
fact, and the actor index; after each incremental ingest too, and in a new
session that reads back what the first one rebuilt through the path (kept
per view until the rows behind it change). A hypothesis test does the same
over random markings.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from threatmesh.analytics.facts import KINDS
from threatmesh.node import Node, init_node
from threatmesh.settings import Settings
from threatmesh.share.policy import Recipient, RecipientKind, sharing_group_marking, sharing_group_marking_id
from threatmesh.stix.markings import TLP2_MARKING_IDS
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Account
from threatmesh.taxii.access import Caller
from threatmesh.web.dashboard.view import Snapshot, SnapshotCache, Viewer

GROUP = "health-eu"
RECIPIENTS = [
    Recipient.public(),
    Recipient("CERT-X", RecipientKind.PEER, role="community"),
    Recipient("CERT-Y", RecipientKind.PEER, role="partner", cleared_for=frozenset({"amber"})),
    Recipient("CERT-A", RecipientKind.PEER, role="community", cleared_for=frozenset({"amber", "amber+strict"}),
              groups=frozenset({GROUP})),
    Recipient("CERT-Z", RecipientKind.PEER, role="community", cleared_for=frozenset({"amber"}),
              groups=frozenset({GROUP, "other"})),
]


def _id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def _sdo(kind: str, tlp: str | None = None, groups: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    marks = ([TLP2_MARKING_IDS[tlp]] if tlp else []) + [sharing_group_marking_id(g) for g in groups]
    obj = {"type": kind, "spec_version": "2.1", "id": props.pop("id", None) or _id(kind),
           "created": "2024-01-01T00:00:00.000Z", "modified": props.pop("modified", "2024-01-01T00:00:00.000Z"),
           **props}
    if marks:
        obj["object_marking_refs"] = marks
    return obj


def _rel(source: dict[str, Any], kind: str, target: dict[str, Any], tlp: str | None = None,
         groups: tuple[str, ...] = ()) -> dict[str, Any]:
    return _sdo("relationship", tlp, groups, relationship_type=kind, source_ref=source["id"],
                target_ref=target["id"])


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[Node]:
    created = init_node(tmp_path / "node", "reader figures", environ={}).node
    yield created
    created.close()


def _put(node: Node, objects: list[dict[str, Any]], source: str = "test") -> None:
    node.store.put_objects([parse_object(o) for o in objects], collection_id=node.default_collection.id,
                           source=source)


def _viewer(node: Node, recipient: Recipient, settings: Settings) -> Viewer:
    account = Account(recipient.name, "not-a-key")
    return Viewer(account, Caller(account), recipient, node.store, settings, SnapshotCache())


def _facts(snap: Snapshot) -> dict[str, list[Any]]:
    return {kind: snap.facts.of(kind) for kind in KINDS.values()}


def _assert_same(node: Node, settings: Settings, recipients: list[Recipient] = RECIPIENTS) -> list[int]:
    rebuilt = []
    for recipient in recipients:
        viewer = _viewer(node, recipient, settings)
        first = viewer._reader_snapshot()
        assert first is not None and first.from_table
        rebuilt.append(first.rebuilt)
        # A new session: what the first request rebuilt through the path is read back from the store.
        fast = _viewer(node, recipient, settings)._reader_snapshot()
        assert fast is not None and fast.rebuilt == 0
        reference = viewer.pass_snapshot()
        who = f"{recipient.name} (default {settings.default_tlp})"
        assert first.summary == fast.summary and _facts(first) == _facts(fast), who
        assert viewer.snapshot().from_table, who  # what the dashboard asks for takes the table's way
        assert dict(fast.summary.objects) == {k: n for k, n in reference.summary.objects.items() if n}, who
        assert (fast.by_type, fast.by_tlp, fast.objects) == (reference.by_type, reference.by_tlp,
                                                              reference.objects), who
        assert fast.withheld == reference.withheld, who
        assert dict(fast.summary.counts) == {k: n for k, n in reference.summary.counts.items() if n}, who
        assert fast.summary.recent_sightings == reference.summary.recent_sightings, who
        assert _facts(fast) == _facts(reference), who
        assert fast.facts.actors.canonical_by_id == reference.facts.actors.canonical_by_id, who
        assert fast.facts.actors.aliases == reference.facts.actors.aliases, who
        assert fast.facts.actors.ids == reference.facts.actors.ids, who
        assert fast.facts.actor_sponsors == reference.facts.actor_sponsors, who
        everything = [f.id for kind in KINDS.values() for f in node.store.load_facts(kind)]
        assert fast.facts_by_id(everything) == reference.facts_by_id(everything), who
    return rebuilt


def _both_defaults(node: Node) -> list[int]:
    rebuilt: list[int] = []
    for default in ("amber", "clear"):
        rebuilt += _assert_same(node, dataclasses.replace(node.settings, default_tlp=default))
    return rebuilt


def test_mixed_markings_equal_the_pass_through_every_ingest(node: Node) -> None:
    loc = {code: _sdo("location", "clear", country=code, name=code) for code in ("RU", "US", "GB", "DE")}
    loc["CN"] = _sdo("location", country="CN", name="CN")  # unmarked: the node default decides
    apt_a = _sdo("intrusion-set", "clear", name="APT Alpha", aliases=["Bear"])
    apt_b = _sdo("intrusion-set", "red", name="Bear Unit", aliases=["Bear"])  # merges with Alpha only at RED
    apt_c = _sdo("intrusion-set", "green", name="APT Gamma")
    apt_d = _sdo("intrusion-set", "amber", name="APT Delta")
    _put(node, [*loc.values(), apt_a, apt_b, apt_c, sharing_group_marking(GROUP)])
    _put(node, [apt_d, _rel(apt_d, "attributed-to", loc["RU"], "amber")], source="peer:CERT-A")
    _put(node, [_rel(apt_a, "attributed-to", loc["RU"], "clear"), _rel(apt_a, "attributed-to", loc["US"], "red"),
                _rel(apt_c, "attributed-to", loc["CN"], "green")])
    _both_defaults(node)

    victim1 = _sdo("identity", "clear", name="Ministry", identity_class="organization", sectors=["government"])
    victim2 = _sdo("identity", "amber", name="Hospital", identity_class="organization", sectors=["healthcare"],
                   x_cta_country="DE")
    victim3 = _sdo("identity", "amber+strict", (GROUP,), name="Clinic", identity_class="organization",
                   sectors=["healthcare"], x_cta_country="GB")
    inc1 = _sdo("incident", "clear", name="Wiper at the ministry", x_threatmesh_date="2023-05-01")
    inc2 = _sdo("incident", "clear", name="Phishing wave", x_threatmesh_date="2023-06-01")
    inc3 = _sdo("incident", "green", name="Ransomware at the hospital", x_threatmesh_date="2024-01-02",
                x_threatmesh_operation_type="sabotage")
    inc4 = _sdo("incident", name="Unmarked intrusion", x_threatmesh_date="2022-02-02")
    inc5 = _sdo("incident", "clear", (GROUP,), name="Clinic outage", x_threatmesh_date="2024-03-03")
    inc6 = _sdo("incident", "clear", name="Leak reported by alice.patient@example.org",
                x_threatmesh_date="2024-04-04")
    camp = _sdo("campaign", "clear", name="Campaign Gamma", first_seen="2023-01-01T00:00:00Z")
    local = [victim1, victim2, victim3, inc1, inc2, inc3, inc4, inc5, inc6, camp,
             _rel(victim1, "located-at", loc["GB"], "green"),
             _rel(inc1, "attributed-to", apt_a, "red"),  # CLEAR incident, RED attribution
             _rel(inc1, "targets", victim1, "clear"),
             _rel(inc2, "attributed-to", loc["RU"], "clear"), _rel(inc2, "attributed-to", apt_a, "clear"),
             _rel(inc2, "targets", loc["US"], "amber"),
             _rel(inc3, "targets", victim2, "green"), _rel(inc3, "attributed-to", apt_c, "green"),
             _rel(inc4, "attributed-to", apt_c), _rel(inc4, "attributed-to", apt_d, "clear"),
             _rel(inc5, "targets", victim3, "clear", (GROUP,)), _rel(inc6, "attributed-to", apt_a, "clear"),
             _rel(camp, "attributed-to", apt_c, "clear"), _rel(camp, "targets", loc["DE"], "amber")]
    _put(node, local)
    peer_victim = _sdo("identity", "amber", name="Peer victim", identity_class="organization", sectors=["energy"])
    peer_inc = _sdo("incident", "amber", name="Peer incident", x_threatmesh_date="2024-05-05")
    _put(node, [peer_victim, peer_inc, _rel(peer_inc, "targets", victim1, "amber")], source="peer:CERT-A")
    # A local CLEAR incident against the peer's AMBER victim: the reference goes back to CERT-A only.
    inc7 = _sdo("incident", "clear", name="Against the peer's victim", x_threatmesh_date="2024-06-06")
    _put(node, [inc7, _rel(inc7, "targets", peer_victim, "clear")])
    rebuilt = _both_defaults(node)
    # Some facts needed the path (something behind them may not go), and never all of them.
    total = sum(len(node.store.load_facts(kind)) for kind in KINDS.values())
    assert any(rebuilt) and max(rebuilt) < total

    ind1 = _sdo("indicator", "clear", pattern="[ipv4-addr:value = '203.0.113.5']", pattern_type="stix",
                valid_from="2023-02-02T00:00:00Z")
    ind2 = _sdo("indicator", "green", pattern="[domain-name:value = 'evil.example']", pattern_type="stix",
                valid_from="2023-03-03T00:00:00Z")
    future = _id("indicator")  # sighted before it is held
    sightings = [
        _sdo("sighting", "clear", sighting_of_ref=ind1["id"], where_sighted_refs=[victim2["id"]],
             first_seen="2024-07-01T00:00:00Z"),
        _sdo("sighting", "clear", sighting_of_ref=ind2["id"], first_seen="2024-07-02T00:00:00Z"),
        _sdo("sighting", "red", sighting_of_ref=ind1["id"], first_seen="2024-07-03T00:00:00Z"),
        _sdo("sighting", "clear", sighting_of_ref=future, first_seen="2024-07-04T00:00:00Z"),
        _sdo("sighting", "clear", sighting_of_ref=ind1["id"]),
    ]
    reports = [_sdo("report", "clear", name="Alpha and Bear", published="2024-02-02T00:00:00Z",
                    object_refs=[apt_a["id"], apt_b["id"], inc1["id"]]),
               _sdo("report", "clear", name="Bear only", published="2024-02-03T00:00:00Z", object_refs=[apt_b["id"]])]
    _put(node, [ind1, ind2, _rel(ind1, "indicates", camp, "amber"), _rel(ind2, "indicates", apt_a, "green"),
                *sightings, *reports])
    _both_defaults(node)

    # Later ingests: the future indicator arrives at RED, a victim is re-marked RED, an alias joins.
    _put(node, [_sdo("indicator", "red", id=future, pattern="[ipv4-addr:value = '198.51.100.7']",
                     pattern_type="stix", valid_from="2024-01-01T00:00:00Z")])
    _both_defaults(node)
    _put(node, [dict(victim1, modified="2024-02-01T00:00:00.000Z", object_marking_refs=[TLP2_MARKING_IDS["red"]])])
    _both_defaults(node)
    _put(node, [_sdo("threat-actor", "clear", name="Gamma Crew", aliases=["APT Gamma"]),
                _rel(inc2, "targets", victim3, "clear")])
    _both_defaults(node)
    # What was rebuilt for a view leaves it: the AMBER victim becomes CLEAR (facts against it are
    # seen whole again), a CLEAR incident with a RED attribution becomes RED (withheld).
    _put(node, [dict(victim2, modified="2024-03-01T00:00:00.000Z", object_marking_refs=[TLP2_MARKING_IDS["clear"]]),
                dict(inc1, modified="2024-03-01T00:00:00.000Z", object_marking_refs=[TLP2_MARKING_IDS["red"]])])
    # The peer's victim goes CLEAR: the reference to it, which went to CERT-A only as its sender's, is whole.
    _put(node, [dict(peer_victim, modified="2024-03-01T00:00:00.000Z",
                     object_marking_refs=[TLP2_MARKING_IDS["clear"]])], source="peer:CERT-A")
    _both_defaults(node)


def test_redaction_settings_rebuild_the_altered_class(node: Node) -> None:
    inc = _sdo("incident", "clear", name="Breach at mail.corp.example", x_threatmesh_date="2024-01-01")
    # An actor whose name holds an internal host, named by an incident that is rebuilt for every
    # reader anyway (its victim is RED): the actor index must carry the redacted name.
    actor = _sdo("intrusion-set", "clear", name="Group behind vpn.corp.example")
    victim = _sdo("identity", "red", name="Secret victim", identity_class="organization", sectors=["energy"])
    other = _sdo("incident", "clear", name="Against a secret victim", x_threatmesh_date="2024-02-01")
    _put(node, [inc, actor, victim, other, _rel(other, "attributed-to", actor, "clear"),
                _rel(other, "targets", victim, "clear")])
    plain = dataclasses.replace(node.settings, default_tlp="clear")
    _assert_same(node, plain)
    internal = dataclasses.replace(plain, internal_domains=("corp.example",))
    rebuilt = _assert_same(node, internal)
    assert all(n == 2 for n in rebuilt)  # both names are rewritten for every reader: rebuilt through the path
    snap = _viewer(node, RECIPIENTS[1], internal)._reader_snapshot()
    assert "REDACTED" in snap.facts_by_id([inc["id"]])[inc["id"]].name
    assert all("REDACTED" in name for name in snap.facts.actors.canonical_by_id.values())


def test_anonymised_sightings_keep_the_pass(node: Node) -> None:
    settings = dataclasses.replace(node.settings, anonymise_sightings=True)
    assert _viewer(node, RECIPIENTS[1], settings)._reader_snapshot() is None
    assert not _viewer(node, RECIPIENTS[1], settings).snapshot().from_table


TLPS = [None, "clear", "green", "amber", "amber+strict", "red"]


@st.composite
def _markings(draw: st.DrawFn, n: int) -> list[tuple[str | None, bool, bool]]:
    """(TLP, received from a peer, marked for the group) for n objects."""
    return [(draw(st.sampled_from(TLPS)), draw(st.booleans()), draw(st.integers(0, 5)) == 0) for _ in range(n)]


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(marks=_markings(40), seed=st.integers(0, 10_000))
def test_random_markings_equal_the_pass(tmp_path_factory: pytest.TempPathFactory,
                                        marks: list[tuple[str | None, bool, bool]], seed: int) -> None:
    rng = random.Random(seed)
    node = init_node(tmp_path_factory.mktemp("random") / "node", "random", environ={}).node
    try:
        it = iter(marks)

        def sdo(kind: str, **props: Any) -> tuple[dict[str, Any], str]:
            tlp, from_peer, grouped = next(it)
            return _sdo(kind, tlp, (GROUP,) if grouped else (), **props), "peer:CERT-A" if from_peer else "test"

        def rel(source: dict[str, Any], kind: str, target: dict[str, Any]) -> tuple[dict[str, Any], str]:
            made, origin = sdo("relationship", relationship_type=kind, source_ref=source["id"],
                               target_ref=target["id"])
            return made, origin

        made = [sdo("location", country=c, name=c) for c in ("RU", "CN")]
        made += [sdo("intrusion-set", name=n, aliases=[a]) for n, a in (("A1", "X"), ("A2", "X"), ("A3", "Y"))]
        made += [sdo("identity", name="V", identity_class="organization", sectors=[s]) for s in ("energy", "health")]
        made += [sdo("incident", name=f"I{i}", x_threatmesh_date=f"202{i}-01-01") for i in range(4)]
        made += [sdo("indicator", pattern="[ipv4-addr:value = '192.0.2.1']", pattern_type="stix",
                     valid_from="2024-01-01T00:00:00Z")]
        objs = [m for m, _ in made]
        locs, actors, victims, incidents, indicator = objs[0:2], objs[2:5], objs[5:7], objs[7:11], objs[11]
        links = [rel(a, "attributed-to", rng.choice(locs)) for a in actors]
        links += [rel(i, "attributed-to", rng.choice(actors)) for i in incidents]
        links += [rel(i, "targets", rng.choice(victims)) for i in incidents[:3]]
        links += [rel(i, "attributed-to", rng.choice(locs)) for i in incidents[:1]]
        links += [rel(indicator, "indicates", rng.choice(actors))]
        later = [sdo("sighting", sighting_of_ref=indicator["id"], where_sighted_refs=[rng.choice(victims)["id"]],
                     first_seen="2024-02-02T00:00:00Z") for _ in range(3)]
        later += [sdo("report", name="R", published="2024-01-01T00:00:00Z",
                      object_refs=[rng.choice(actors)["id"], rng.choice(incidents)["id"]])]
        for batch in (made, links, later):
            for source in ("test", "peer:CERT-A"):
                chosen = [o for o, s in batch if s == source]
                if chosen:
                    _put(node, chosen, source=source)
            _both_defaults(node)
    finally:
        node.close()
