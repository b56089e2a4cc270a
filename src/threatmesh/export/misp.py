"""MISP JSON export: `{"response": [{"Event": ...}, ...]}`, loadable by PyMISP and MISP.

Each STIX report becomes one MISP event holding the objects it references;
exportable objects that no report references go into one more event named
after the export. What came from MISP (objects with `x_misp_attribute` /
`x_misp_object` / `x_misp_galaxy`) goes back exactly as received: value,
type, category, to_ids, tags, uuids. Indicators from elsewhere are turned into
attributes from the equality comparisons of their patterns.

Objects are read only through `export.select.outgoing` (the egress policy);
indicators that hit a warninglist are left out unless the caller asks for them
(`options.extra["include_warninglisted"] = "1"`). The export holds the
outgoing objects in memory to group them into events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from threatmesh.export.select import ExportOptions, Progress, Tally, outgoing
from threatmesh.ingest.misp_types import MISP_HASH_TYPE
from threatmesh.share.policy import Recipient
from threatmesh.stix.markings import tlp_of
from threatmesh.stix.timestamps import normalize_timestamp, timestamp_to_micros
from threatmesh.store.protocol import Store

EXPORT_NAMESPACE = uuid.UUID("b8e3c1f0-7d2a-5c4b-9e1f-2a3b4c5d6e7f")

# (SCO type, property) of a pattern comparison -> (MISP type, MISP category).
_PATH_TYPES: dict[tuple[str, str], tuple[str, str]] = {
    ("domain-name", "value"): ("domain", "Network activity"),
    ("ipv4-addr", "value"): ("ip-dst", "Network activity"),
    ("ipv6-addr", "value"): ("ip-dst", "Network activity"),
    ("url", "value"): ("url", "Network activity"),
    ("email-addr", "value"): ("email-src", "Payload delivery"),
    ("email-message", "subject"): ("email-subject", "Payload delivery"),
    ("file", "name"): ("filename", "Payload delivery"),
    ("mutex", "name"): ("mutex", "Artifacts dropped"),
    ("windows-registry-key", "key"): ("regkey", "Persistence mechanism"),
    ("mac-addr", "value"): ("mac-address", "Network activity"),
    ("autonomous-system", "number"): ("AS", "Network activity"),
}
_COMPARISON = re.compile(r"([a-z0-9-]+):([A-Za-z0-9_.'\-\[\]*]+)\s*=\s*('(?:[^'\\]|\\.)*'|\d+)")
_ESCAPE = re.compile(r"\\(.)")

# STIX SDO type -> the MISP galaxy its clusters go to when they did not come from MISP.
_GALAXY_OF_TYPE = {"intrusion-set": "threat-actor", "threat-actor": "threat-actor", "malware": "malpedia",
                   "tool": "tool", "attack-pattern": "mitre-attack-pattern",
                   "course-of-action": "mitre-course-of-action"}
_TLP_TAG = {"clear": "tlp:clear", "green": "tlp:green", "amber": "tlp:amber", "amber+strict": "tlp:amber+strict",
            "red": "tlp:red"}


def _epoch(timestamp: str | None) -> str:
    if not timestamp:
        return "0"
    try:
        return str(timestamp_to_micros(normalize_timestamp(timestamp)) // 1_000_000)
    except (ValueError, TypeError):
        return "0"


def _uuid_of(stix_id: str) -> str:
    return stix_id.split("--", 1)[1]


def _tags(obj: Mapping[str, Any]) -> list[dict[str, str]]:
    names = [str(label) for label in obj.get("labels") or []]
    level = tlp_of(obj)
    if level and not any(n.lower().startswith("tlp:") for n in names):
        names.append(_TLP_TAG[level])
    return [{"name": n} for n in dict.fromkeys(names)]


def _attribute(record: Mapping[str, Any], obj: Mapping[str, Any], tags: list[dict[str, str]] | None) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "uuid": record.get("uuid") or str(uuid.uuid5(EXPORT_NAMESPACE, obj["id"])),
        "type": record["type"],
        "category": record.get("category") or "Other",
        "value": record["value"],
        "to_ids": bool(record.get("to_ids")),
        "timestamp": str(record.get("timestamp") or _epoch(obj.get("modified"))),
        "distribution": "5",
        "disable_correlation": False,
        "deleted": False,
        "comment": str(record.get("comment", "")),
    }
    if record.get("object_relation"):
        attribute["object_relation"] = record["object_relation"]
    for key in ("first_seen", "last_seen"):
        if record.get(key):
            attribute[key] = record[key]
    chosen = tags if tags is not None else [{"name": t} for t in record.get("tags") or []]
    if chosen:
        attribute["Tag"] = chosen
    return attribute


def pattern_attributes(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Attributes for an indicator that did not come from MISP: one per equality comparison."""
    out: list[dict[str, Any]] = []
    for n, (sco_type, path, raw) in enumerate(_COMPARISON.findall(str(obj.get("pattern", "")))):
        value = _ESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith("'") else raw
        if path.startswith("hashes."):
            misp_type = MISP_HASH_TYPE.get(path[len("hashes."):].strip("'"))
            found = (misp_type, "Payload delivery") if misp_type else None
        else:
            found = _PATH_TYPES.get((sco_type, path))
        if found is None or found[0] is None:
            continue
        record = {"uuid": str(uuid.uuid5(EXPORT_NAMESPACE, f"{obj['id']}|{n}")), "type": found[0],
                  "category": found[1], "value": value, "to_ids": True,
                  "comment": str(obj.get("name") or obj.get("description") or "")}
        out.append(_attribute(record, obj, _tags(obj)))
    return out


def _cluster(obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    galaxy = obj.get("x_misp_galaxy")
    if isinstance(galaxy, Mapping):
        galaxy_type = str(galaxy.get("type"))
        value = str(galaxy.get("value") or obj.get("name"))
        meta = dict(galaxy.get("meta") or {})
        tag_name = str(galaxy.get("tag_name") or f'misp-galaxy:{galaxy_type}="{value}"')
    elif obj.get("type") in _GALAXY_OF_TYPE and obj.get("name"):
        galaxy_type = _GALAXY_OF_TYPE[str(obj["type"])]
        value = str(obj["name"])
        meta = {"synonyms": list(obj["aliases"])} if obj.get("aliases") else {}
        tag_name = f'misp-galaxy:{galaxy_type}="{value}"'
    else:
        return None
    cluster: dict[str, Any] = {"uuid": _uuid_of(str(obj["id"])), "type": galaxy_type, "value": value,
                               "tag_name": tag_name, "description": str(obj.get("description", ""))}
    if meta:
        cluster["meta"] = meta
    return galaxy_type, cluster


def event_for(report: Mapping[str, Any] | None, members: Iterable[Mapping[str, Any]], *, name: str,
              fallback_uuid: str, objects: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One MISP event from a report (or None: the objects no report holds) and its member objects."""
    misp = dict(report.get("x_misp_event") or {}) if report else {}
    modified = str(report.get("modified")) if report else None
    event: dict[str, Any] = {
        "uuid": _uuid_of(str(report["id"])) if report else fallback_uuid,
        "info": str(report.get("name")) if report else name,
        "date": misp.get("date") or (str(report.get("published") or modified or "")[:10] if report else None)
        or datetime.now().strftime("%Y-%m-%d"),
        "timestamp": _epoch(modified) if report else str(int(datetime.now().timestamp())),
        "published": bool(misp.get("published", False)),
        "threat_level_id": str(misp.get("threat_level_id", "4")),
        "analysis": str(misp.get("analysis", "2")),
        "distribution": str(misp.get("distribution", "0")),
        "Attribute": [],
        "Object": [],
        "Galaxy": [],
    }
    creator = objects.get(str(report.get("created_by_ref"))) if report else None
    if creator:
        org = {"name": str(creator.get("name", "")), "uuid": _uuid_of(str(creator["id"]))}
        event["Orgc"] = org
    if report:
        tags = _tags(report)
        if tags:
            event["Tag"] = tags
    galaxies: dict[str, dict[str, Any]] = {}
    for obj in members:
        record = obj.get("x_misp_attribute")
        misp_object = obj.get("x_misp_object")
        if isinstance(record, Mapping):
            # the tags recorded at ingest, exactly: labels may have gained a TLP of the event
            event["Attribute"].append(_attribute(record, obj, None))
        elif isinstance(misp_object, Mapping):
            event["Object"].append({
                "uuid": misp_object.get("uuid") or _uuid_of(str(obj["id"])),
                "name": misp_object.get("name", ""),
                "meta-category": misp_object.get("meta-category", ""),
                "template_uuid": misp_object.get("template_uuid", ""),
                **({"template_version": str(misp_object["template_version"])}
                   if misp_object.get("template_version") else {}),
                "comment": misp_object.get("comment", ""),
                "timestamp": _epoch(str(obj.get("modified"))),
                "distribution": "5",
                "Attribute": [_attribute(r, obj, None) for r in misp_object.get("attributes") or []
                              if isinstance(r, Mapping)],
            })
        elif obj.get("type") == "indicator" and obj.get("pattern_type") == "stix":
            event["Attribute"].extend(pattern_attributes(obj))
        else:
            found = _cluster(obj)
            if found:
                galaxy_type, cluster = found
                galaxy = galaxies.setdefault(galaxy_type, {"type": galaxy_type, "name": galaxy_type,
                                                           "GalaxyCluster": []})
                galaxy["GalaxyCluster"].append(cluster)
    event["Galaxy"] = list(galaxies.values())
    event["attribute_count"] = str(len(event["Attribute"]) + sum(len(o["Attribute"]) for o in event["Object"]))
    return {key: value for key, value in event.items() if value != [] or key == "Attribute"}


def export_misp(
    store: Store,
    out: BinaryIO,
    *,
    recipient: Recipient,
    default_tlp: str,
    options: ExportOptions,
    progress: Progress | None = None,
) -> Tally:
    tally = Tally()
    objects: dict[str, dict[str, Any]] = {}
    suppressed = _suppressed(store, options)
    for version in outgoing(store, recipient, default_tlp=default_tlp, options=options, tally=tally):
        if version.id in suppressed:
            tally.withheld += 1
            continue
        objects[version.id] = orjson.loads(version.json)
    reports = [o for o in objects.values() if o.get("type") == "report"]
    claimed: set[str] = set()
    events: list[dict[str, Any]] = []
    for report in reports:
        refs = [str(r) for r in report.get("object_refs") or []]
        claimed.update(refs)
        members = [objects[r] for r in refs if r in objects]
        events.append(event_for(report, members, name="", fallback_uuid="", objects=objects))
    loose = [o for i, o in objects.items() if i not in claimed and o.get("type") != "report"]
    exportable = [o for o in loose if o.get("x_misp_attribute") or o.get("x_misp_object")
                  or o.get("type") == "indicator" or _cluster(o)]
    if exportable:
        events.append(event_for(None, exportable, name="threatmesh export",
                                fallback_uuid=str(uuid.uuid5(EXPORT_NAMESPACE, "|".join(sorted(o["id"] for o in exportable)))),
                                objects=objects))
    out.write(b'{"response":[')
    for n, event in enumerate(events):
        if n:
            out.write(b",")
        out.write(orjson.dumps({"Event": event}))
        tally.written += 1
        if progress:
            progress(1)
    out.write(b"]}\n")
    return tally


def _suppressed(store: Store, options: ExportOptions) -> set[str]:
    """Ids flagged by a warninglist, unless the export asks to include them."""
    if options.extra.get("include_warninglisted") == "1":
        return set()
    from threatmesh.kb.warninglists import flagged_ids

    return flagged_ids(store)
