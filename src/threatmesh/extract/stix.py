"""Detected values as STIX 2.1 objects, with deterministic ids.

An indicator's id is UUIDv5 over (type, value, source), so re-reading the same
source gives the same ids and the store sees 'unchanged'; the observable next
to it has its spec-defined deterministic SCO id. CVE ids become
`vulnerability` objects and ATT&CK technique ids `attack-pattern` objects, both
keyed on the id alone so every source names the same object.
"""

from __future__ import annotations

import uuid
from typing import Any

from threatmesh.extract.values import Detected, IocType
from threatmesh.stix.scoid import deterministic_sco_id

# The namespace of every id threatmesh derives from content (fixed forever:
# changing it would duplicate every object on re-ingest).
THREATMESH_NAMESPACE = uuid.UUID("6f1e3c55-2d7a-5b8e-9c4f-1a2b3c4d5e6f")

_HASH_NAMES = {IocType.MD5: "MD5", IocType.SHA1: "SHA-1", IocType.SHA256: "SHA-256", IocType.SHA512: "SHA-512"}


def derived_id(stix_type: str, *parts: str) -> str:
    """`<stix_type>--<UUIDv5>` over the parts, for objects threatmesh creates from records."""
    return f"{stix_type}--{uuid.uuid5(THREATMESH_NAMESPACE, chr(31).join((stix_type, *parts)))}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def observable_of(detected: Detected) -> dict[str, Any] | None:
    """The SCO a value names (None for CVE and technique ids)."""
    kind = detected.type
    if kind in _HASH_NAMES:
        sco: dict[str, Any] = {"type": "file", "spec_version": "2.1",
                               "hashes": {_HASH_NAMES[kind]: detected.value}}
    elif kind in (IocType.IPV4, IocType.IPV6, IocType.CIDR):
        ip_type = "ipv6-addr" if ":" in detected.value else "ipv4-addr"
        sco = {"type": ip_type, "spec_version": "2.1", "value": detected.value}
    elif kind is IocType.DOMAIN:
        sco = {"type": "domain-name", "spec_version": "2.1", "value": detected.value}
    elif kind is IocType.URL:
        sco = {"type": "url", "spec_version": "2.1", "value": detected.value}
    elif kind is IocType.EMAIL:
        sco = {"type": "email-addr", "spec_version": "2.1", "value": detected.value}
    else:
        return None
    sco_id = deterministic_sco_id(sco)
    assert sco_id is not None  # every SCO built above has its contributing property
    return {"type": sco["type"], "spec_version": "2.1", "id": sco_id,
            **{k: v for k, v in sco.items() if k not in ("type", "spec_version")}}


def pattern_of(detected: Detected) -> str | None:
    kind = detected.type
    if kind in _HASH_NAMES:
        return f"[file:hashes.'{_HASH_NAMES[kind]}' = '{detected.value}']"
    sco = observable_of(detected)
    if sco is None:
        return None
    return f"[{sco['type']}:value = '{_quote(detected.value)}']"


def objects_for(detected: Detected, *, source: str, timestamp: str, extra: dict[str, Any] | None = None
                ) -> list[dict[str, Any]]:
    """The STIX objects for one value: indicator + SCO, or a vulnerability, or an attack-pattern.

    `timestamp` is the created/modified/valid_from of new objects: callers pass
    something stable for the source (its modification time), so re-ingest is idempotent.
    """
    extra = extra or {}
    common = {"spec_version": "2.1", "created": timestamp, "modified": timestamp}
    if detected.type is IocType.CVE:
        return [{"type": "vulnerability", "id": derived_id("vulnerability", detected.value), **common,
                 "name": detected.value,
                 "external_references": [{"source_name": "cve", "external_id": detected.value}]}]
    if detected.type is IocType.ATTACK_TECHNIQUE:
        return [{"type": "attack-pattern", "id": derived_id("attack-pattern", detected.value), **common,
                 "name": detected.value,
                 "external_references": [{"source_name": "mitre-attack", "external_id": detected.value,
                                          "url": "https://attack.mitre.org/techniques/"
                                                 + detected.value.replace(".", "/")}]}]
    pattern = pattern_of(detected)
    sco = observable_of(detected)
    assert pattern is not None and sco is not None
    indicator = {
        "type": "indicator", "id": derived_id("indicator", detected.type.value, detected.value, source), **common,
        "name": f"{detected.type.value} {detected.value}",
        "pattern": pattern, "pattern_type": "stix", "valid_from": timestamp, **extra,
    }
    return [indicator, sco]
