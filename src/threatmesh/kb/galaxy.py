"""MISP galaxy clusters as a knowledge pack: actors with aliases, sponsors, victims and sectors.

Actor galaxies (`threat-actor`, `mitre-intrusion-set`, `microsoft-activity-group`,
Tidal `groups`, ...) become intrusion sets through `cluster_to_stix` (the MISP
event importer's converter), with these additions:

    aliases                    synonyms + the names of `name-attribution` ('Fighting Ursa:<vendor uuid>')
    x_misp_galaxy.uuid         the cluster uuid
    x_misp_galaxy.related      the cluster's alias-like links (similar, same-as, ...) to other clusters
    intrusion-set --attributed-to--> location    `cfr-suspected-state-sponsor`, the sponsoring state
    intrusion-set --originates-from--> location  `country`, the country of origin
    intrusion-set --targets--> location          victims that are countries (`cfr-suspected-victims`,
                                                 Tidal `observed_countries`)
    intrusion-set --targets--> identity          victims that are organisations (identity_class organization)
                                                 and sectors (`cfr-target-category`, `targeted-sector`,
                                                 Tidal `target_categories`: identity_class class, `sectors`)

Locations and relationships have the ids of the incident importer
(`threatmesh.ingest.incidents`): `location` = derived_id('location', 'country', ISO),
relationships = derived_id('relationship', source, type, target); so sponsor and
victim country are counted the same way for incidents and actors. A sponsor is
written only when the galaxy names one; the country of origin is not taken for it.

Ids are the cluster uuids, except in the MITRE galaxies, whose uuids are the
ATT&CK objects' own: those get ids derived from the galaxy and uuid, so a galaxy
never writes versions of MITRE's objects (the alias graph joins them by ATT&CK id).
Galaxy files carry a version number and no date: created/modified is
2000-01-01 plus that many seconds, so a newer galaxy release gives newer versions.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from threatmesh.errors import InputError
from threatmesh.extract.stix import derived_id
from threatmesh.ingest.formats import Rejected
from threatmesh.ingest.misp_convert import cluster_to_stix
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.kb.vocab import CountryVocab, countries_of, name_key, sector_slug

ACTOR_GALAXIES = frozenset({"threat-actor", "mitre-intrusion-set", "mitre-enterprise-attack-intrusion-set",
                            "microsoft-activity-group", "tidal-groups", "eset-threat-actor"})
MITRE_GALAXIES = frozenset({"mitre-intrusion-set", "mitre-enterprise-attack-intrusion-set"})
# `related` link types worth keeping on an actor: the ones that say two clusters are (close to) one group.
ALIAS_LINK_TYPES = frozenset({"same-as", "similar", "overlaps", "linked-to", "associated-with", "part-of",
                              "revoked-by"})
_ATTACK_GROUP = re.compile(r"^G\d{4}$")
_UUID_SUFFIX = re.compile(r":[0-9a-fA-F-]{36}$")
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
# Countries, sectors and victim organisations are shared by many clusters of several galaxies
# (each with its own version): one fixed date keeps them at one version whichever galaxy comes first.
SHARED_TIMESTAMP = "2000-01-01T00:00:00.000Z"


def galaxy_type(data: Mapping[str, Any]) -> str:
    """The galaxy's type; Tidal's group galaxy calls itself 'groups'."""
    kind = str(data.get("type", ""))
    if kind == "groups" and "tidal" in f"{data.get('name', '')} {data.get('authors', '')}".lower():
        return "tidal-groups"
    return kind


def galaxy_timestamp(version: Any) -> str:
    number = int(version) if str(version).isdigit() else 0
    return (_EPOCH + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def country_location(code: str, timestamp: str) -> dict[str, Any]:
    """The location of a country, as the incident importer writes it (same id, same name)."""
    import pycountry

    country = pycountry.countries.get(alpha_2=code)
    label = getattr(country, "common_name", None) or getattr(country, "name", code)
    return {"type": "location", "id": derived_id("location", "country", code), "spec_version": "2.1",
            "created": timestamp, "modified": timestamp, "name": label, "country": code}


def _relationship(source: str, kind: str, target: str, timestamp: str, confidence: int | None = None
                  ) -> dict[str, Any]:
    rel: dict[str, Any] = {"type": "relationship", "id": derived_id("relationship", source, kind, target),
                           "spec_version": "2.1", "created": timestamp, "modified": timestamp,
                           "relationship_type": kind, "source_ref": source, "target_ref": target}
    if confidence is not None:
        rel["confidence"] = confidence
    return rel


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    return []


def attributed_names(meta: Mapping[str, Any]) -> list[str]:
    """Names of `name-attribution` ('APT28:<vendor uuid>'), without ATT&CK group ids."""
    names = [_UUID_SUFFIX.sub("", n).strip() for n in _strings(meta.get("name-attribution"))]
    return [n for n in names if n and not _ATTACK_GROUP.match(n)]


def actor_objects(kind: str, cluster: Mapping[str, Any], timestamp: str, vocab: CountryVocab | None
                  ) -> list[dict[str, Any]]:
    """The intrusion set of one actor cluster and what it links to; [] for a cluster without a value."""
    obj = cluster_to_stix(kind, cluster, timestamp, timestamp)
    if obj is None:
        return []
    meta: Mapping[str, Any] = cluster.get("meta") if isinstance(cluster.get("meta"), Mapping) else {}  # type: ignore[assignment]
    cluster_uuid = str(cluster.get("uuid") or "")
    if kind in MITRE_GALAXIES:
        obj["id"] = derived_id(obj["type"], "misp-galaxy", kind, cluster_uuid or obj["name"])
        external_id = str(meta.get("external_id", ""))
        if _ATTACK_GROUP.match(external_id):
            obj["name"] = re.sub(rf"\s+-\s+{external_id}$", "", obj["name"])
            obj.setdefault("external_references", []).insert(0, {"source_name": "mitre-attack",
                                                                 "external_id": external_id})
    names = [n for n in [*obj.get("aliases", []), *attributed_names(meta)] if name_key(n) != name_key(obj["name"])]
    if names:
        obj["aliases"] = list(dict.fromkeys(names))
    galaxy = obj["x_misp_galaxy"]
    galaxy["uuid"] = cluster_uuid
    related = [{"type": r["type"], "dest-uuid": r["dest-uuid"]} for r in cluster.get("related") or []
               if isinstance(r, Mapping) and r.get("type") in ALIAS_LINK_TYPES and isinstance(r.get("dest-uuid"), str)]
    if related:
        galaxy["related"] = related
    out = [obj]
    actor = obj["id"]

    confidence = int(meta["attribution-confidence"]) if str(meta.get("attribution-confidence", "")).isdigit() else None
    for sponsor in countries_of(_strings(meta.get("cfr-suspected-state-sponsor")), vocab)[0]:
        out += [country_location(sponsor, SHARED_TIMESTAMP),
                _relationship(actor, "attributed-to", derived_id("location", "country", sponsor), timestamp,
                              min(confidence, 100) if confidence is not None else None)]
    for origin in countries_of(_strings(meta.get("country")), vocab)[0]:
        out += [country_location(origin, SHARED_TIMESTAMP),
                _relationship(actor, "originates-from", derived_id("location", "country", origin), timestamp)]
    victim_countries, organisations = countries_of(
        _strings(meta.get("cfr-suspected-victims")) + _strings(meta.get("suspected-victims"))
        + _strings(meta.get("observed_countries")), vocab)
    for code in victim_countries:
        out += [country_location(code, SHARED_TIMESTAMP),
                _relationship(actor, "targets", derived_id("location", "country", code), timestamp)]
    for name in organisations:
        identity: dict[str, Any] = {"type": "identity", "id": derived_id("identity", "organization", name_key(name)),
                    "spec_version": "2.1", "created": SHARED_TIMESTAMP, "modified": SHARED_TIMESTAMP, "name": name,
                    "identity_class": "organization"}
        out += [identity, _relationship(actor, "targets", identity["id"], timestamp)]
    sectors = {sector_slug(s): s for s in _strings(meta.get("cfr-target-category"))
               + _strings(meta.get("targeted-sector")) + _strings(meta.get("target_categories")) if sector_slug(s)}
    for slug, label in sectors.items():
        identity = {"type": "identity", "id": derived_id("identity", "sector", slug), "spec_version": "2.1",
                    "created": SHARED_TIMESTAMP, "modified": SHARED_TIMESTAMP, "name": f"{label} sector",
                    "identity_class": "class", "sectors": [slug]}
        out += [identity, _relationship(actor, "targets", identity["id"], timestamp)]
    return out


def read_actor_galaxy(path: Path, data: Mapping[str, Any], vocab: CountryVocab | None
                      ) -> Iterator[RawObject | Rejected]:
    """RawObjects of every actor cluster in one galaxy file; a bad cluster is one Rejected, the rest go on."""
    kind = galaxy_type(data)
    timestamp = galaxy_timestamp(data.get("version"))
    values = data.get("values")
    if not isinstance(values, list):
        yield Rejected(str(path), "not a MISP galaxy cluster file (no `values` list)")
        return
    emitted: set[str] = set()
    index = 0
    for n, cluster in enumerate(values):
        where = f"{path}, values[{n}]"
        if not isinstance(cluster, Mapping):
            yield Rejected(where, "a cluster must be a JSON object")
            continue
        if cluster.get("uuid") is not None and not _is_uuid(cluster.get("uuid")):
            yield Rejected(where, f"cluster uuid {cluster.get('uuid')!r} is not a UUID")
            continue
        try:
            objects = actor_objects(kind, cluster, timestamp, vocab)
        except (TypeError, ValueError, AttributeError) as exc:
            yield Rejected(where, f"unreadable cluster: {exc}")
            continue
        if not objects:
            yield Rejected(where, "cluster without a `value` (name)")
        for obj in objects:
            if obj["id"] not in emitted:  # countries, sectors and relationships recur across clusters
                emitted.add(obj["id"])
                yield RawObject(str(path), index, obj)
                index += 1


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def galaxy_files(path: Path) -> list[Path]:
    """The cluster files of a galaxy folder (MISP's `clusters/`), or the one file given."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or directory", source=str(path))
    files = sorted(path.glob("*.json"))
    if not files:
        raise InputError("no *.json galaxy cluster files here", source=str(path))
    return files
