"""A node for the dashboard tests: the demo data set, a few incidents, and a TLP:RED secret.

The incidents give the analytics something to count (attribution, victim
countries and sectors, dates); one incident is TLP:RED with a name found
nowhere else, so a test can ask whether a non-admin account ever sees it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threatmesh.auth import hash_key, new_api_key
from threatmesh.demo import TLP2, demo_bundle
from threatmesh.ingest.pipeline import SourceReport, ingest_raw
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.node import Node, init_node
from threatmesh.store.protocol import Account

RED_INCIDENT_NAME = "Operation Crimson Ward"
CLEAR_INCIDENT_NAME = "Operation Glass Harbour"
ACTOR_ALIAS = "GRANITE-7"  # an alias of the demo actor Granite Heron
ACTOR_NAME = "Granite Heron"


@dataclass
class DashboardNode:
    node: Node
    admin_key: str
    reader_key: str  # a non-admin account: a partner cleared for nothing (TLP:CLEAR only)
    red_incident_id: str
    clear_incident_id: str
    actor_id: str


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=0xD45B0A4D << 96 | n, version=4)}"


def _sdo(kind: str, n: int, tlp: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": _id(kind, n), "created": "2025-01-01T00:00:00.000Z",
            "modified": "2025-01-01T00:00:00.000Z", **props, "object_marking_refs": [TLP2[tlp]]}


def _rel(n: int, source: str, kind: str, target: str, tlp: str) -> dict[str, Any]:
    return _sdo("relationship", n, tlp, relationship_type=kind, source_ref=source, target_ref=target)


def extra_objects(actor_ids: dict[str, str]) -> list[dict[str, Any]]:
    granite, lantern = actor_ids["Granite Heron"], actor_ids["Paper Lantern"]
    places = {code: _sdo("location", i, "clear", name=code, country=code)
              for i, code in enumerate(("RU", "CN", "DE", "US", "PL"), start=1)}
    ministry = _sdo("identity", 10, "clear", name="Ministry of Health (demo)", identity_class="organization",
                    sectors=["government", "healthcare"])
    incidents = [
        _sdo("incident", 20, "clear", name="Operation Winter Ward", x_threatmesh_date="2024-03-10"),
        _sdo("incident", 21, "clear", name=CLEAR_INCIDENT_NAME, x_threatmesh_date="2025-06-02"),
        _sdo("incident", 22, "clear", name="Operation Amber Pier", x_threatmesh_date="2025-11-20"),
        _sdo("incident", 23, "red", name=RED_INCIDENT_NAME, x_threatmesh_date="2025-09-01",
             description="Held here only: a TLP:RED incident."),
    ]
    rels = [
        _rel(40, granite, "originates-from", places["RU"]["id"], "clear"),
        _rel(41, lantern, "originates-from", places["CN"]["id"], "clear"),
        _rel(42, incidents[0]["id"], "attributed-to", granite, "clear"),
        _rel(43, incidents[0]["id"], "targets", places["DE"]["id"], "clear"),
        _rel(44, incidents[0]["id"], "targets", ministry["id"], "clear"),
        _rel(45, incidents[1]["id"], "attributed-to", granite, "clear"),
        _rel(46, incidents[1]["id"], "targets", places["US"]["id"], "clear"),
        _rel(47, incidents[2]["id"], "attributed-to", lantern, "clear"),
        _rel(48, incidents[2]["id"], "targets", places["PL"]["id"], "clear"),
        _rel(49, incidents[2]["id"], "targets", ministry["id"], "clear"),
        _rel(50, incidents[3]["id"], "attributed-to", granite, "red"),
        _rel(51, incidents[3]["id"], "targets", places["DE"]["id"], "red"),
    ]
    return [*places.values(), ministry, *incidents, *rels]


def build_node(home: Path) -> DashboardNode:
    created = init_node(home, "Dashboard test node", environ={})
    node = created.node
    bundle = demo_bundle()["objects"]
    actor_ids = {o["name"]: o["id"] for o in bundle if o["type"] == "intrusion-set"}
    objects = [*bundle, *extra_objects(actor_ids)]
    report = SourceReport("dashboard test data")
    ingest_raw((RawObject("test", i, o) for i, o in enumerate(objects)), node.store, report,
               collection_id=node.default_collection.id, source="demo")
    assert not report.rejected, report.rejected
    reader_key = new_api_key()
    node.store.add_account(Account("reader", hash_key(reader_key)))
    return DashboardNode(node, created.admin_key, reader_key, _id("incident", 23), _id("incident", 21),
                         actor_ids[ACTOR_NAME])
