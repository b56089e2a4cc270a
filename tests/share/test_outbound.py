"""The egress path over a real SQLite store: policy, sharing groups, references, redaction."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from threatmesh.share.outbound import Outbound, explain, prepare_outgoing
from threatmesh.share.policy import (
    Recipient,
    RecipientKind,
    is_sharing_group_marking,
    sharing_group_marking,
    sharing_group_marking_id,
)
from threatmesh.share.redact import RedactionSettings
from threatmesh.stix.markings import TLP2_MARKING_IDS
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Collection, ProvenanceRecord
from threatmesh.store.sqlite import SQLiteStore

TS = "2024-01-01T00:00:00.000Z"
COMMUNITY = Recipient("isac", RecipientKind.PEER, role="community", cleared_for=frozenset({"amber"}),
                      groups=frozenset({"health-eu"}))
OUTSIDER = Recipient("vendor", RecipientKind.PEER, role="community", cleared_for=frozenset({"amber"}))
REDACTION = RedactionSettings(internal_domains=("stexample.local",), internal_networks=("10.0.0.0/8",),
                              anonymise_sightings=True, sector="healthcare", country="DE")


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n, version=4)}"


def sdo(kind: str, n: int, tlp: str | None, *, groups: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    marks = ([TLP2_MARKING_IDS[tlp]] if tlp else []) + [sharing_group_marking_id(g) for g in groups]
    obj: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": _id(kind, n), "created": TS, "modified": TS,
                           **extra}
    if marks:
        obj["object_marking_refs"] = marks
    return obj


def malware(n: int, tlp: str | None, **kw: Any) -> dict[str, Any]:
    return sdo("malware", n, tlp, name=f"malware {n}", is_family=True, **kw)


def relationship(n: int, source: str, target: str, tlp: str = "green") -> dict[str, Any]:
    return sdo("relationship", n, tlp, relationship_type="uses", source_ref=source, target_ref=target)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "t.db")
    s.add_collection(Collection(id="c", title="c"))
    yield s
    s.close()


def put(store: SQLiteStore, objects: list[dict[str, Any]], source: str = "test") -> list[Any]:
    store.put_objects([parse_object(o) for o in objects], collection_id="c", source=source)
    return [store.get_latest(o["id"]) for o in objects]


def test_group_marking_ids_are_stable_and_recognisable() -> None:
    assert sharing_group_marking_id("health-eu") == sharing_group_marking_id("health-eu")
    assert sharing_group_marking_id("health-eu") != sharing_group_marking_id("health-us")
    assert is_sharing_group_marking(sharing_group_marking_id("anything"))
    assert not any(is_sharing_group_marking(ref) for ref in TLP2_MARKING_IDS.values())
    parse_object(sharing_group_marking("health-eu"))  # a valid STIX marking-definition
    uuid.UUID(sharing_group_marking_id("x").split("--")[1])


def test_group_objects_reach_members_only_and_tlp_still_applies(store: SQLiteStore) -> None:
    versions = put(store, [
        malware(1, "green", groups=("health-eu",)),
        malware(2, "green", groups=("health-eu", "finance")),  # both groups: members of both only
        malware(3, "red", groups=("health-eu",)),
        malware(4, "green"),
        sharing_group_marking("health-eu"),
    ])
    member = prepare_outgoing(store, versions, COMMUNITY, default_tlp="amber")
    assert [v.id for v in member.items] == [_id("malware", 1), _id("malware", 4), sharing_group_marking_id("health-eu")]
    outsider = prepare_outgoing(store, versions, OUTSIDER, default_tlp="amber")
    assert [v.id for v in outsider.items] == [_id("malware", 4)]
    assert {w.code for w in outsider.withheld} == {"group-nonmember"}
    both = Recipient("both", RecipientKind.PEER, role="community", groups=frozenset({"health-eu", "finance"}))
    assert _id("malware", 2) in [v.id for v in prepare_outgoing(store, versions, both, default_tlp="amber").items]
    assert len(prepare_outgoing(store, versions, Recipient.operator(), default_tlp="amber").items) == 5


def test_no_leak_through_relationships_sightings_or_reports(store: SQLiteStore) -> None:
    red, green, amber_from_peer = malware(1, "red"), malware(2, "green"), malware(3, "amber")
    put(store, [red, green])
    put(store, [amber_from_peer], source="peer:other")
    objects = [
        relationship(10, green["id"], red["id"]),
        relationship(11, green["id"], green["id"]),
        relationship(12, green["id"], amber_from_peer["id"]),
        relationship(13, green["id"], _id("malware", 99)),  # a target not held here leaks nothing
        sdo("sighting", 20, "green", sighting_of_ref=red["id"]),
        sdo("report", 30, "green", name="r", published=TS, object_refs=[green["id"], red["id"]]),
        sdo("report", 31, "green", name="r", published=TS, object_refs=[red["id"]]),
        sdo("note", 40, "green", content="see", object_refs=[red["id"], green["id"]]),
    ]
    versions = put(store, objects)
    batch = prepare_outgoing(store, versions, COMMUNITY, default_tlp="amber")
    sent = {v.id: orjson.loads(v.json) for v in batch.items}
    assert set(sent) == {_id("relationship", 11), _id("relationship", 13), _id("report", 30), _id("note", 40)}
    assert sent[_id("report", 30)]["object_refs"] == [green["id"]]
    assert sent[_id("note", 40)]["object_refs"] == [green["id"]]
    assert sent[_id("report", 30)]["modified"] == TS  # the author's version, cut, not a new version
    assert [batch.items[i].id for i in batch.derived] == [_id("report", 30), _id("note", 40)]
    codes = {w.id: w.code for w in batch.withheld}
    assert codes[_id("relationship", 10)] == "reference" and codes[_id("sighting", 20)] == "reference"
    assert codes[_id("report", 31)] == "reference-container-empty"
    # The peer that sent the AMBER object knows it: the relationship to it may go back to that peer.
    other = Recipient("other", RecipientKind.PEER, role="community")
    assert _id("relationship", 12) in {v.id for v in prepare_outgoing(store, versions, other, default_tlp="amber").items}


def test_unchanged_objects_go_byte_for_byte(store: SQLiteStore) -> None:
    versions = put(store, [malware(1, "clear", description="Loader seen in the wild")])
    batch = prepare_outgoing(store, versions, Recipient.public(), default_tlp="amber", redaction=REDACTION)
    assert batch.items[0].json == versions[0].json and batch.derived == []


def test_redaction_and_anonymised_sightings_on_the_way_out(store: SQLiteStore, caplog: Any) -> None:
    indicator = sdo("indicator", 1, "green", name="C2", pattern="[ipv4-addr:value = '203.0.113.9']",
                    pattern_type="stix", valid_from=TS,
                    description="Seen from 10.2.3.4 (ws1.stexample.local) talking to 203.0.113.9")
    sighting = sdo("sighting", 2, "green", sighting_of_ref=indicator["id"], where_sighted_refs=[_id("identity", 7)],
                   description="Patient: Jane Roe's workstation")
    versions = put(store, [indicator, sighting, sdo("identity", 7, "red", name="St. Example", identity_class="organization")])
    with caplog.at_level("INFO", logger="threatmesh.share.outbound"):
        batch = prepare_outgoing(store, versions[:2], COMMUNITY, default_tlp="amber", redaction=REDACTION)
    sent = {v.id: orjson.loads(v.json) for v in batch.items}
    assert sent[indicator["id"]]["description"] == (
        "Seen from [REDACTED:internal-ip] ([REDACTED:internal-host]) talking to 203.0.113.9")
    anonymous = orjson.loads(batch.extra[0])
    assert sent[sighting["id"]]["where_sighted_refs"] == [anonymous["id"]]
    assert anonymous["sectors"] == ["healthcare"] and "St. Example" not in batch.extra[0].decode()
    assert "[REDACTED:patient-name]" in sent[sighting["id"]]["description"]
    assert {f.kind for f in batch.redactions} == {"internal-ip", "internal-host", "patient-name"}
    assert "rule internal-network:10.0.0.0/8" in caplog.text and "10.2.3.4" not in caplog.text
    # Without anonymising, the sighting points at a RED identity and is withheld.
    plain = prepare_outgoing(store, versions[:2], COMMUNITY, default_tlp="amber")
    assert [w.code for w in plain.withheld] == ["reference"]


def test_explain_names_the_rule(store: SQLiteStore) -> None:
    red, green = malware(1, "red"), malware(2, "green")
    rel = relationship(3, green["id"], red["id"])
    put(store, [red, green, rel])
    assert explain(store, red["id"], COMMUNITY, default_tlp="amber").decision.code == "tlp-red"
    why = explain(store, rel["id"], COMMUNITY, default_tlp="amber").decision
    assert not why.allowed and red["id"] in why.rule and "TLP:RED" in why.rule
    assert explain(store, green["id"], COMMUNITY, default_tlp="amber").decision.allowed


def test_amber_received_from_a_peer_is_not_forwarded_even_via_provenance(store: SQLiteStore) -> None:
    versions = put(store, [malware(1, "amber")], source="peer:a")
    store.record_provenance([ProvenanceRecord(versions[0].id, versions[0].version, "a", 1)])
    assert prepare_outgoing(store, versions, COMMUNITY, default_tlp="amber").withheld[0].code == "tlp-amber-forward"
    assert Outbound(store, COMMUNITY, default_tlp="amber").prepare([]).objects == []


def test_the_egress_cache_gives_every_recipient_what_it_would_get_without_it(store: SQLiteStore) -> None:
    """A hub reuses outcomes between peers of one policy class (share.outbound.EgressCache):
    the result for each recipient must be exactly the uncached one, whatever the order."""
    from threatmesh.share.outbound import EgressCache

    target = malware(1, "red")
    put(store, [
        malware(2, "clear", description="call +44 7911 123456"),  # redacted, cached once
        malware(3, "amber"), malware(4, "green"), malware(5, "clear", groups=("health-eu",)),
        target, relationship(6, _id("malware", 2), target["id"], tlp="clear"),  # refs: never cached
    ])
    partner = Recipient("partner", RecipientKind.PEER, role="partner")
    uncleared = Recipient("other-isac", RecipientKind.PEER, role="community", groups=frozenset({"health-eu"}))
    recipients = [COMMUNITY, OUTSIDER, partner, uncleared, COMMUNITY, partner]
    cache = EgressCache()
    versions = [v for v in store.iter_objects("c", all_versions=True)]

    def shape(batch: Any) -> tuple[Any, ...]:
        return ([(i.id, i.json) for i in batch.items], sorted(batch.derived), sorted((w.id, w.rule) for w in
                batch.withheld), [(f.object_id, f.kind) for f in batch.redactions])

    for recipient in recipients:
        plain = prepare_outgoing(store, versions, recipient, default_tlp="amber", redaction=REDACTION)
        cached = prepare_outgoing(store, versions, recipient, default_tlp="amber", redaction=REDACTION, cache=cache)
        assert shape(cached) == shape(plain), recipient.name
    assert len(cache) > 0
    assert all(key[0] != _id("relationship", 6) for key in cache._entries)


def test_the_egress_cache_numbers_each_recipient_class_once_even_from_many_threads() -> None:
    """Keys carry a number per recipient class; two classes sharing one would hand one
    peer what was decided for another."""
    import threading

    from threatmesh.share.outbound import EgressCache

    cache = EgressCache()
    classes = [("peer", "community", (), frozenset(), "amber", n) for n in range(200)]
    numbers: list[dict[int, int]] = [{} for _ in range(4)]

    def number_all(found: dict[int, int]) -> None:
        for n, recipient_class in enumerate(classes):
            found[n] = cache.class_number(recipient_class)

    threads = [threading.Thread(target=number_all, args=(found,)) for found in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(found == numbers[0] for found in numbers)
    assert len(set(numbers[0].values())) == len(classes)
