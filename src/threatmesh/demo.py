"""A small demo data set that threatmesh generates itself (no third-party data).

It exercises what a new operator wants to see: actors with aliases and a
sponsoring country, malware, techniques, indicators at every TLP level,
relationships, a sighting and a report. Values use documentation ranges
(RFC 5737) and reserved names (RFC 2606) so nothing real is pointed at.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

# The OASIS TLP 2.0 marking-definition ids.
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

_ACTORS = [
    ("Granite Heron", ["GRANITE-7", "Heron Team"], "RU", "state-sponsored espionage against health ministries"),
    ("Paper Lantern", ["PL-22"], "CN", "long-running intrusions into hospital research networks"),
    ("Quiet Meridian", ["QM Group", "TA-Meridian"], "KP", "ransomware used for revenue generation"),
    ("Salt Marsh", ["SALTMARSH"], "IR", "destructive operations against public services"),
]
_MALWARE = ["LanternLoader", "HeronRAT", "MeridianLock", "MarshWiper", "QuietDropper"]
_TECHNIQUES = [
    ("Phishing attachment", "DEMO-T1"),
    ("Valid accounts", "DEMO-T2"),
    ("Data encrypted for impact", "DEMO-T3"),
    ("Remote services", "DEMO-T4"),
    ("Exfiltration over web service", "DEMO-T5"),
]
_LEVELS = ["clear", "green", "amber", "amber+strict", "red"]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def demo_bundle(seed: int = 7, indicators: int = 60) -> dict[str, Any]:
    """A STIX 2.1 bundle of demo intelligence, the same for the same seed."""
    rng = random.Random(seed)

    def new_id(kind: str) -> str:
        return f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    base = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    author = new_id("identity")
    objects: list[dict[str, Any]] = [
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": author,
            "created": _ts(base),
            "modified": _ts(base),
            "name": "threatmesh demo analysts",
            "identity_class": "organization",
            "sectors": ["healthcare"],
        }
    ]

    def sdo(kind: str, when: datetime, tlp: str, **props: Any) -> dict[str, Any]:
        obj = {
            "type": kind,
            "spec_version": "2.1",
            "id": new_id(kind),
            "created_by_ref": author,
            "created": _ts(when),
            "modified": _ts(when),
            **props,
            "object_marking_refs": [TLP2[tlp]],
        }
        objects.append(obj)
        return obj

    def relate(source: dict[str, Any], kind: str, target: dict[str, Any], tlp: str, when: datetime) -> None:
        sdo("relationship", when, tlp, relationship_type=kind, source_ref=source["id"], target_ref=target["id"])

    actors = [
        sdo("intrusion-set", base + timedelta(days=i), "clear", name=name, aliases=[name, *aliases],
            description=desc, primary_motivation="organizational-gain" if country == "KP" else "ideology",
            x_threatmesh_sponsor_country=country)
        for i, (name, aliases, country, desc) in enumerate(_ACTORS)
    ]
    malware = [sdo("malware", base + timedelta(days=5 + i), "green", name=name, is_family=True,
                   malware_types=["ransomware" if "Lock" in name else "remote-access-trojan"])
               for i, name in enumerate(_MALWARE)]
    techniques = [sdo("attack-pattern", base + timedelta(days=10 + i), "clear", name=name,
                      external_references=[{"source_name": "threatmesh-demo", "external_id": ext}])
                  for i, (name, ext) in enumerate(_TECHNIQUES)]
    victim = sdo("identity", base + timedelta(days=12), "amber", name="Regional hospital group (demo)",
                 identity_class="organization", sectors=["healthcare"])
    for i, actor in enumerate(actors):
        relate(actor, "uses", malware[i % len(malware)], "green", base + timedelta(days=20 + i))
        relate(actor, "uses", techniques[i % len(techniques)], "clear", base + timedelta(days=20 + i))
        relate(actor, "targets", victim, "amber", base + timedelta(days=20 + i))

    indicator_objects = []
    for i in range(indicators):
        when = base + timedelta(days=30 + i, hours=rng.randrange(24))
        kind = i % 3
        if kind == 0:
            value, pattern = f"update-{i}.portal.example", f"[domain-name:value = 'update-{i}.portal.example']"
        elif kind == 1:
            value = f"203.0.113.{rng.randrange(1, 255)}"
            pattern = f"[ipv4-addr:value = '{value}']"
        else:
            value = f"{rng.getrandbits(256):064x}"
            pattern = f"[file:hashes.'SHA-256' = '{value}']"
        level = _LEVELS[i % len(_LEVELS)]
        actor = actors[i % len(actors)]
        ind = sdo("indicator", when, level, name=f"{actor['name']} infrastructure {value[:24]}",
                  indicator_types=["malicious-activity"], pattern=pattern, pattern_type="stix",
                  valid_from=_ts(when), confidence=rng.choice([40, 60, 85]))
        relate(ind, "indicates", actor, level, when)
        indicator_objects.append(ind)

    sighted = indicator_objects[0]
    sdo("sighting", base + timedelta(days=200), "amber", sighting_of_ref=sighted["id"], count=3,
        first_seen=_ts(base + timedelta(days=199)), last_seen=_ts(base + timedelta(days=200)),
        where_sighted_refs=[victim["id"]])
    sdo("report", base + timedelta(days=210), "green", name="Demo: health-sector intrusions, first half",
        report_types=["threat-actor"], published=_ts(base + timedelta(days=210)),
        description="A generated example report linking actors, malware and indicators.",
        object_refs=[a["id"] for a in actors] + [m["id"] for m in malware] + [x["id"] for x in indicator_objects[:10]])
    return {"type": "bundle", "id": new_id("bundle"), "objects": objects}
