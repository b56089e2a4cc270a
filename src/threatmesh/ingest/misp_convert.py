"""One MISP event as STIX 2.1 objects.

- the event -> a `report` (id `report--<event uuid>`), its org -> an `identity`;
- an attribute with an observable type -> an `indicator` (to_ids) or an
  `observed-data` with its SCOs; a rule (yara, snort, sigma) -> an indicator in
  that pattern language; `vulnerability` -> a vulnerability; anything else
  (text, link, comment, wallets...) -> a custom `x-misp-attribute`;
- a MISP object -> one indicator / observed-data whose pattern groups the
  comparisons of its attributes by SCO type (`x-misp-object` when none is observable);
  the object is read through its MISP object template (`misp_objects`), whose
  name, uuid and version are kept for the way back to MISP, and the template's
  complaints about the object are kept with it (`x_misp_object.template_problems`)
  and reported by `object_problems`;
- tags -> `labels` (verbatim, so a round trip keeps them), `tlp:*` -> TLP 2.0
  markings, confidence tags -> `confidence`;
- galaxy clusters -> intrusion-set / malware / tool / attack-pattern / course-of-action
  (`x-misp-galaxy-cluster` for the rest) with `indicates` and `uses` relationships;
- sightings -> `sighting` (false positives -> a disagreeing `opinion`).

Ids are the MISP uuids (`indicator--<attribute uuid>`), so the same event read
twice gives the same ids, and `modified` is the MISP `timestamp`, so an edited
event (same uuid, newer timestamp) adds newer versions rather than duplicates.
An element without a timestamp was edited after MISP last saved it; it is dated
one second after the newest timestamp of its event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from stix2patterns.validator import run_validator

from threatmesh.ingest.formats import Rejected
from threatmesh.ingest.misp_objects import read_object
from threatmesh.ingest.misp_templates import ObjectTemplate, TemplateRegistry, default_registry
from threatmesh.ingest.misp_types import (RULE_PATTERN_TYPES, Comparison, build_object_observables, build_pattern,
                                          comparisons)
from threatmesh.stix.markings import TLP2_MARKING_IDS, tlp_marking_definition
from threatmesh.stix.model import stricter_tlp

# Namespace of ids threatmesh derives from MISP content that has no uuid of its own
# (relationships between two ids); fixed so that every node derives the same ids.
MISP_NAMESPACE = uuid.UUID("4f7c2d3e-1b9a-5e2f-8c6d-0a1b2c3d4e5f")
ORG_CREATED = "2000-01-01T00:00:00.000Z"  # MISP orgs carry no date; a fixed one keeps their ids stable
UNDATED = 946684800  # 2000-01-01: the date of an event that carries no timestamp or date at all

TLP_TAGS = {"tlp:white": "clear", "tlp:clear": "clear", "tlp:green": "green", "tlp:amber": "amber",
            "tlp:amber+strict": "amber+strict", "tlp:red": "red"}

# Confidence (0-100, STIX 2.1 Appendix A scales) from the taxonomies MISP uses for it.
_ADMIRALTY_CREDIBILITY = {"1": 90, "2": 70, "3": 50, "4": 30, "5": 10}
_ESTIMATIVE = {"almost-no-chance": 5, "very-unlikely": 15, "unlikely": 30, "roughly-even-chance": 50,
               "likely": 70, "very-likely": 85, "almost-certain": 95}

GALAXY_SDO_TYPES: dict[str, str] = {
    "threat-actor": "intrusion-set",
    "mitre-intrusion-set": "intrusion-set",
    "mitre-enterprise-attack-intrusion-set": "intrusion-set",
    "microsoft-activity-group": "intrusion-set",
    "tidal-groups": "intrusion-set",
    "eset-threat-actor": "intrusion-set",
    "mitre-malware": "malware",
    "mitre-enterprise-attack-malware": "malware",
    "mitre-mobile-attack-malware": "malware",
    "malpedia": "malware",
    "ransomware": "malware",
    "rat": "malware",
    "backdoor": "malware",
    "banker": "malware",
    "stealer": "malware",
    "wiper": "malware",
    "botnet": "malware",
    "android": "malware",
    "exploit-kit": "malware",
    "tool": "tool",
    "mitre-tool": "tool",
    "mitre-enterprise-attack-tool": "tool",
    "mitre-attack-pattern": "attack-pattern",
    "mitre-enterprise-attack-attack-pattern": "attack-pattern",
    "mitre-mobile-attack-attack-pattern": "attack-pattern",
    "mitre-course-of-action": "course-of-action",
    "mitre-enterprise-attack-course-of-action": "course-of-action",
}
_ACTORS = frozenset({"intrusion-set", "threat-actor"})
_USED = frozenset({"malware", "tool", "attack-pattern"})


def stix_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _epoch(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 253402300799 else None  # year 9999: the last a STIX timestamp holds


def _date_epoch(value: Any) -> int | None:
    try:
        return int(datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return None


def _uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def derived_id(stix_type: str, *parts: str) -> str:
    return f"{stix_type}--{uuid.uuid5(MISP_NAMESPACE, '|'.join(parts))}"


def tag_names(element: Mapping[str, Any]) -> list[str]:
    tags = element.get("Tag")
    if not isinstance(tags, list):
        return []
    return [str(t["name"]) for t in tags if isinstance(t, Mapping) and isinstance(t.get("name"), str)]


def tlp_of_tags(tags: list[str]) -> str | None:
    level: str | None = None
    for tag in tags:
        level = stricter_tlp(level, TLP_TAGS.get(tag.strip().lower()))
    return level


def confidence_of_tags(tags: list[str]) -> int | None:
    for tag in tags:
        namespace, _, rest = tag.partition(":")
        predicate, _, value = rest.partition("=")
        value = value.strip('"')
        if namespace == "osint" and predicate == "certainty" and value.isdigit():
            return min(int(value), 100)
        if namespace == "admiralty-scale" and predicate == "information-credibility" and value in _ADMIRALTY_CREDIBILITY:
            return _ADMIRALTY_CREDIBILITY[value]
        if namespace == "estimative-language" and predicate == "likelihood-probability" and value in _ESTIMATIVE:
            return _ESTIMATIVE[value]
    return None


def _max_timestamp(event: Mapping[str, Any]) -> int:
    """The newest timestamp anywhere in the event (0 when none)."""
    newest = _epoch(event.get("timestamp")) or 0
    for element in _all_attributes(event):
        newest = max(newest, _epoch(element.get("timestamp")) or 0)
    for obj in _list(event, "Object"):
        newest = max(newest, _epoch(obj.get("timestamp")) or 0)
    return newest


def _list(element: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = element.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _all_attributes(event: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from _list(event, "Attribute")
    for obj in _list(event, "Object"):
        yield from _list(obj, "Attribute")


@dataclass
class _EventContext:
    source: str
    event_uuid: str
    event_tlp: str | None
    edited_time: int  # the date given to elements that carry no timestamp
    created: int  # the event's date: the `created` of everything it holds
    org_ref: str | None
    templates: TemplateRegistry = field(default_factory=TemplateRegistry)
    objects: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def emit(self, obj: dict[str, Any]) -> None:
        key = obj["id"] + "|" + str(obj.get("modified", ""))
        if key not in self.seen:
            self.seen.add(key)
            self.objects.append(obj)

    def reject(self, where: str, reason: str, object_id: str | None = None) -> None:
        self.rejected.append(Rejected(f"{self.source}, Event {self.event_uuid}{where}", reason, object_id))

    def common(self, element: Mapping[str, Any], tags: list[str]) -> dict[str, Any]:
        """created, modified, creator, markings, labels and confidence of one element."""
        modified = _epoch(element.get("timestamp")) or self.edited_time
        out: dict[str, Any] = {
            "spec_version": "2.1",
            "created": stix_time(min(self.created, modified)),
            "modified": stix_time(modified),
        }
        if self.org_ref:
            out["created_by_ref"] = self.org_ref
        tlp = stricter_tlp(self.event_tlp, tlp_of_tags(tags))
        if tlp:
            out["object_marking_refs"] = [TLP2_MARKING_IDS[tlp]]
        if tags:
            out["labels"] = tags
        confidence = confidence_of_tags(tags)
        if confidence is not None:
            out["confidence"] = confidence
        return out


def _misp_record(attribute: Mapping[str, Any], read_as: str = "") -> dict[str, Any]:
    """What a round trip back to MISP needs of one attribute, beyond the STIX mapping.

    `read_as` is the type an object's template gives the attribute, kept when the attribute has none.
    """
    record: dict[str, Any] = {
        "uuid": str(attribute.get("uuid", "")),
        "type": str(attribute.get("type") or read_as),
        "category": str(attribute.get("category", "")),
        "value": str(attribute.get("value", "")),
        "to_ids": _flag(attribute.get("to_ids")),
    }
    for key in ("object_relation", "comment", "first_seen", "last_seen", "timestamp"):
        if attribute.get(key) not in (None, ""):
            record[key] = str(attribute[key])
    tags = tag_names(attribute)
    if tags:
        record["tags"] = tags
    return record


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _check_pattern(pattern: str) -> str | None:
    errors = run_validator(pattern)
    return "; ".join(str(e) for e in errors) if errors else None


def _observable_objects(
    ctx: _EventContext, base_id: str, to_ids: bool, items: list[Comparison] | list[tuple[Comparison, ...]],
    common: dict[str, Any], extra: dict[str, Any], where: str,
) -> str | None:
    """Emit an indicator (to_ids) or observed-data for comparisons (or terms of alternatives), plus SCOs.

    Returns the STIX id, or None.
    """
    terms = [item if isinstance(item, tuple) else (item,) for item in items]
    scos = build_object_observables(terms)
    for sco in scos:
        ctx.emit(sco)
    if to_ids:
        pattern = build_pattern(terms)
        problem = _check_pattern(pattern)
        if problem:
            ctx.reject(where, "cannot build a valid STIX pattern: " + " ".join(problem.split()), f"indicator--{base_id}")
            return None
        indicator = {
            "type": "indicator", "id": f"indicator--{base_id}", **common,
            "pattern": pattern, "pattern_type": "stix", "valid_from": common["created"], **extra,
        }
        ctx.emit(indicator)
        return indicator["id"]
    if not scos:
        return None
    observed = {
        "type": "observed-data", "id": f"observed-data--{base_id}", **common,
        "first_observed": common["modified"], "last_observed": common["modified"], "number_observed": 1,
        "object_refs": [s["id"] for s in scos], **extra,
    }
    ctx.emit(observed)
    return observed["id"]


def _attribute(ctx: _EventContext, attribute: Mapping[str, Any], index: int) -> str | None:
    attr_uuid = _uuid(attribute.get("uuid"))
    where = f", Attribute {attribute.get('uuid') or index}"
    if attr_uuid is None:
        ctx.reject(where, "attribute without a valid uuid")
        return None
    if _flag(attribute.get("deleted")):
        return None  # deleted in MISP: not intelligence any more
    misp_type = str(attribute.get("type", ""))
    value = attribute.get("value")
    tags = tag_names(attribute)
    common = ctx.common(attribute, tags)
    record = _misp_record(attribute)
    extra = {"x_misp_attribute": record}
    if attribute.get("comment"):
        common["description"] = str(attribute["comment"])
    if not isinstance(value, str) or not value:
        ctx.reject(where, f"{misp_type or 'attribute'} without a value", f"x-misp-attribute--{attr_uuid}")
        return None
    stix_id: str | None
    if misp_type in RULE_PATTERN_TYPES:
        stix_id = f"indicator--{attr_uuid}"
        ctx.emit({"type": "indicator", "id": stix_id, **common, "pattern": value,
                  "pattern_type": RULE_PATTERN_TYPES[misp_type], "valid_from": common["created"], **extra})
    elif misp_type == "vulnerability":
        stix_id = f"vulnerability--{attr_uuid}"
        refs = [{"source_name": "cve", "external_id": value}] if value.upper().startswith("CVE-") else []
        ctx.emit({"type": "vulnerability", "id": stix_id, **common, "name": value,
                  **({"external_references": refs} if refs else {}), **extra})
    else:
        try:
            items = comparisons(misp_type, value)
        except ValueError as exc:
            ctx.reject(where, f"{misp_type} value {value[:80]!r}: {exc}", f"indicator--{attr_uuid}")
            return None
        stix_id = None
        if items:
            stix_id = _observable_objects(ctx, attr_uuid, _flag(attribute.get("to_ids")), items, common, extra, where)
            if stix_id is None and ctx.rejected and ctx.rejected[-1].object_id == f"indicator--{attr_uuid}":
                return None
        if stix_id is None:
            stix_id = f"x-misp-attribute--{attr_uuid}"
            ctx.emit({"type": "x-misp-attribute", "id": stix_id, **common, "name": f"{misp_type}: {value[:200]}",
                      **extra})
    _attribute_extras(ctx, attribute, stix_id, common)
    return stix_id


def _attribute_extras(ctx: _EventContext, element: Mapping[str, Any], stix_id: str, common: dict[str, Any]) -> None:
    """Galaxies attached to one attribute, and its sightings."""
    for cluster_id in _galaxies(ctx, element):
        cluster_type = cluster_id.split("--", 1)[0]
        kind = "indicates" if stix_id.startswith("indicator--") and cluster_type in _USED | _ACTORS else "related-to"
        _relationship(ctx, stix_id, kind, cluster_id, common)
    for n, sighting in enumerate(_list(element, "Sighting")):
        _sighting(ctx, sighting, stix_id, n)


def _relationship(ctx: _EventContext, source: str, kind: str, target: str, common: Mapping[str, Any]) -> None:
    ctx.emit({
        "type": "relationship", "id": derived_id("relationship", source, kind, target),
        "spec_version": "2.1", "created": common["created"], "modified": common["modified"],
        **({"created_by_ref": ctx.org_ref} if ctx.org_ref else {}),
        **({"object_marking_refs": common["object_marking_refs"]} if "object_marking_refs" in common else {}),
        "relationship_type": kind, "source_ref": source, "target_ref": target,
    })


def _sighting(ctx: _EventContext, sighting: Mapping[str, Any], target: str, n: int) -> None:
    sighting_uuid = _uuid(sighting.get("uuid")) or str(uuid.uuid5(MISP_NAMESPACE, f"{target}|sighting|{n}"))
    when = _epoch(sighting.get("date_sighting")) or _epoch(sighting.get("timestamp")) or ctx.edited_time
    org = sighting.get("Organisation")
    where_refs: list[str] = []
    if isinstance(org, Mapping) and _uuid(org.get("uuid")):
        where_refs = [_org_identity(ctx, org)]
    common = {"spec_version": "2.1", "created": stix_time(when), "modified": stix_time(when)}
    kind = str(sighting.get("type", "0"))
    if kind == "1":  # MISP false positive: someone disputes the indicator
        ctx.emit({"type": "opinion", "id": f"opinion--{sighting_uuid}", **common, "opinion": "strongly-disagree",
                  "explanation": "reported as a false positive in MISP", "object_refs": [target],
                  **({"created_by_ref": where_refs[0]} if where_refs else {})})
        return
    ctx.emit({"type": "sighting", "id": f"sighting--{sighting_uuid}", **common, "sighting_of_ref": target,
              "first_seen": stix_time(when), "last_seen": stix_time(when), "count": 1,
              **({"where_sighted_refs": where_refs} if where_refs else {}),
              **({"x_misp_sighting_type": "expiration"} if kind == "2" else {})})


def _org_identity(ctx: _EventContext, org: Mapping[str, Any]) -> str:
    identity_id = f"identity--{_uuid(org.get('uuid'))}"
    ctx.emit({"type": "identity", "id": identity_id, "spec_version": "2.1", "created": ORG_CREATED,
              "modified": ORG_CREATED, "name": str(org.get("name") or "unnamed MISP organisation"),
              "identity_class": "organization"})
    return identity_id


def _galaxies(ctx: _EventContext, element: Mapping[str, Any]) -> list[str]:
    """STIX ids of the galaxy clusters attached to an element (emitted once per event)."""
    out: list[str] = []
    for galaxy in _list(element, "Galaxy"):
        galaxy_type = str(galaxy.get("type", ""))
        for cluster in _list(galaxy, "GalaxyCluster"):
            cluster_id = _cluster(ctx, galaxy_type, cluster)
            if cluster_id:
                out.append(cluster_id)
    return out


def cluster_to_stix(galaxy_type: str, cluster: Mapping[str, Any], created: str, modified: str) -> dict[str, Any] | None:
    """A MISP galaxy cluster as an SDO (None without a value). Also used by the knowledge packs."""
    value = cluster.get("value")
    if not isinstance(value, str) or not value:
        return None
    sdo_type = GALAXY_SDO_TYPES.get(galaxy_type, "x-misp-galaxy-cluster")
    # Clusters exported without their uuid still name one cluster: derive a stable id from it.
    cluster_uuid = _uuid(cluster.get("uuid")) or str(uuid.uuid5(MISP_NAMESPACE, f"galaxy|{galaxy_type}|{value}"))
    raw_meta = cluster.get("meta")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    name = value
    refs: list[dict[str, str]] = []
    if sdo_type in ("attack-pattern", "course-of-action") and " - " in value:
        name, _, external_id = value.rpartition(" - ")
        refs.append({"source_name": "mitre-attack", "external_id": external_id.strip()})
    obj: dict[str, Any] = {"type": sdo_type, "id": f"{sdo_type}--{cluster_uuid}", "spec_version": "2.1",
                           "created": created, "modified": modified, "name": name}
    if isinstance(cluster.get("description"), str) and cluster["description"]:
        obj["description"] = cluster["description"]
    synonyms = [s for s in (meta.get("synonyms") or []) if isinstance(s, str) and s and s != name]
    if synonyms and sdo_type in ("intrusion-set", "threat-actor", "malware", "tool", "x-misp-galaxy-cluster"):
        obj["aliases"] = list(dict.fromkeys(synonyms))
    if sdo_type == "malware":
        obj["is_family"] = True
    for ref in meta.get("refs") or []:
        if isinstance(ref, str) and ref.startswith(("http://", "https://")):
            refs.append({"source_name": "misp-galaxy", "url": ref})
    if refs:
        obj["external_references"] = refs
    obj["x_misp_galaxy"] = {"type": galaxy_type, "value": value,
                            **({"tag_name": cluster["tag_name"]} if cluster.get("tag_name") else {}),
                            **({"meta": dict(meta)} if meta else {})}
    return obj


def _cluster(ctx: _EventContext, galaxy_type: str, cluster: Mapping[str, Any]) -> str | None:
    cluster_uuid = f"{cluster.get('uuid')}|{galaxy_type}|{cluster.get('value')}"
    if cluster_uuid in ctx.clusters:
        return str(ctx.clusters[cluster_uuid]["id"])
    created = stix_time(ctx.created)
    obj = cluster_to_stix(galaxy_type, cluster, created, stix_time(max(ctx.created, ctx.edited_time - 1)))
    if obj is None:
        ctx.reject(f", Galaxy {galaxy_type}", "galaxy cluster without a value")
        return None
    ctx.clusters[cluster_uuid] = obj
    ctx.emit(obj)
    return str(obj["id"])


def _misp_object(ctx: _EventContext, obj: Mapping[str, Any], index: int) -> list[str]:
    """One MISP object, read through its template: one STIX object for the whole, plus what its attributes add."""
    obj_uuid = _uuid(obj.get("uuid"))
    name = str(obj.get("name", ""))
    where = f", Object {obj.get('uuid') or index} ({name})"
    if obj_uuid is None:
        ctx.reject(where, "object without a valid uuid")
        return []
    if _flag(obj.get("deleted")):
        return []
    attributes = [a for a in _list(obj, "Attribute") if not _flag(a.get("deleted"))]
    tags = sorted({t for a in attributes for t in tag_names(a)} | set(tag_names(obj)))
    common = ctx.common(obj, tags)
    if obj.get("comment"):
        common["description"] = str(obj["comment"])
    template = ctx.templates.resolve(obj.get("template_uuid"), name)
    reading = read_object(name, attributes, template)
    for n, reason in reading.bad_values:
        ctx.reject(f"{where}, Attribute {attributes[n].get('uuid') or n}", reason)
    to_ids = any(_flag(attributes[n].get("to_ids")) for n in reading.observable)
    problems = list(reading.problems)
    if template is None:
        problems.append("no known template (read by its attribute types alone)")
    extra = {"x_misp_object": {
        "uuid": obj_uuid, "name": name,
        "meta-category": str(obj.get("meta-category") or (template.meta_category if template else "")),
        **_template_fields(obj, template),
        **({"comment": str(obj["comment"])} if obj.get("comment") else {}),
        **({"template_problems": problems} if problems else {}),
        "attributes": [_misp_record(a, reading.types.get(n, "")) for n, a in enumerate(attributes)]}}
    terms = [term.alternatives for term in reading.terms]
    stix_id = _observable_objects(ctx, obj_uuid, to_ids, terms, common, extra, where) if terms else None
    if stix_id is None:
        # Nothing observable, or a pattern that was rejected (with its reason): the object is
        # still kept, as MISP gave it, for the way back to MISP.
        stix_id = f"x-misp-object--{obj_uuid}"
        if terms and to_ids and ctx.rejected and ctx.rejected[-1].object_id == f"indicator--{obj_uuid}":
            last = ctx.rejected.pop()
            ctx.rejected.append(Rejected(last.location, f"{last.reason}; kept as {stix_id}", last.object_id))
        ctx.emit({"type": "x-misp-object", "id": stix_id, **common, "name": name or "MISP object", **extra})
    ids = [stix_id]
    for attribute in attributes:
        _attribute_extras(ctx, attribute, stix_id, common)
    return ids


def _template_fields(obj: Mapping[str, Any], template: ObjectTemplate | None) -> dict[str, str]:
    """The object's template uuid and version as the object gave them (the resolved template's otherwise)."""
    out: dict[str, str] = {}
    for key, known in (("template_uuid", template.uuid if template else None),
                       ("template_version", str(template.version) if template else None)):
        value = obj.get(key)
        if value not in (None, ""):
            out[key] = str(value)
        elif known:
            out[key] = known
    return out


def object_problems(event: Mapping[str, Any], templates: TemplateRegistry | None = None) -> list[tuple[str, str]]:
    """(object location, problem) for every object of an event that its template finds fault with."""
    registry = templates if templates is not None else default_registry()
    out: list[tuple[str, str]] = []
    for index, obj in enumerate(_list(event, "Object")):
        if _flag(obj.get("deleted")):
            continue
        name = str(obj.get("name", ""))
        where = f"Object {obj.get('uuid') or index} ({name})"
        template = registry.resolve(obj.get("template_uuid"), name)
        if template is None:
            out.append((where, f"no known template (uuid {obj.get('template_uuid') or 'none'})"))
            continue
        attributes = [a for a in _list(obj, "Attribute") if not _flag(a.get("deleted"))]
        out.extend((where, p) for p in template.problems(str(a.get("object_relation") or "") for a in attributes))
    return out


def convert_event(
    event: Mapping[str, Any], source: str, templates: TemplateRegistry | None = None,
) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """STIX objects for one MISP event (a dict with `uuid`, `info`, `Attribute`...), and what was rejected.

    Objects are read with `templates` (default: the MISP object templates PyMISP ships).
    """
    event_uuid = _uuid(event.get("uuid"))
    if event_uuid is None:
        return [], [Rejected(f"{source}, Event {event.get('uuid')!r}", "event without a valid uuid")]
    newest = _max_timestamp(event)
    event_time = _epoch(event.get("timestamp"))
    edited_time = newest + 1 if newest else (_date_epoch(event.get("date")) or 0)
    if not edited_time:
        # Nothing in the event says when (generated events, e.g. stalkerware-indicators):
        # a fixed date keeps ids and versions stable across reads.
        edited_time = UNDATED
    created = _date_epoch(event.get("date")) or event_time or edited_time
    event_tags = tag_names(event)
    ctx = _EventContext(source, event_uuid, tlp_of_tags(event_tags), edited_time, created, None,
                        templates if templates is not None else default_registry())
    orgc = event.get("Orgc")
    if isinstance(orgc, Mapping) and _uuid(orgc.get("uuid")):
        ctx.org_ref = _org_identity(ctx, orgc)
    refs: list[str] = []
    for index, attribute in enumerate(_list(event, "Attribute")):
        stix_id = _attribute(ctx, attribute, index)
        if stix_id:
            refs.append(stix_id)
    for index, obj in enumerate(_list(event, "Object")):
        refs.extend(_misp_object(ctx, obj, index))
    report_common = ctx.common(event, event_tags)
    cluster_ids = _galaxies(ctx, event)
    actors = [c for c in cluster_ids if c.split("--")[0] in _ACTORS]
    for actor in actors:
        for used in (c for c in cluster_ids if c.split("--")[0] in _USED):
            _relationship(ctx, actor, "uses", used, report_common)
    if ctx.event_tlp:
        ctx.emit(tlp_marking_definition(ctx.event_tlp))
    refs = list(dict.fromkeys(refs + [o["id"] for o in ctx.objects if o["type"] != "marking-definition"]))
    published = _epoch(event.get("publish_timestamp")) or created
    report = {
        "type": "report", "id": f"report--{event_uuid}", **report_common,
        "name": str(event.get("info") or f"MISP event {event_uuid}"),
        "report_types": ["threat-report"], "published": stix_time(published),
        "object_refs": refs or ([ctx.org_ref] if ctx.org_ref else [f"report--{event_uuid}"]),
        "x_misp_event": {
            "uuid": event_uuid,
            **{k: str(event[k]) for k in ("date", "threat_level_id", "analysis", "distribution") if k in event},
            "published": _flag(event.get("published")),
            **({"tags": event_tags} if event_tags else {}),
            **({"orgc": str(orgc.get("name", ""))} if isinstance(orgc, Mapping) else {}),
        },
    }
    ctx.objects.append(report)
    levels = {tlp_of_tags(o.get("labels") or []) for o in ctx.objects} - {None, ctx.event_tlp}
    for level in sorted(str(x) for x in levels):
        ctx.emit(tlp_marking_definition(level))
    return ctx.objects, ctx.rejected
