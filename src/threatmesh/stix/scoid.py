"""Deterministic ids of STIX Cyber-observable Objects (STIX 2.1 §2.9).

An SCO's id is UUIDv5 in the SCO namespace over the RFC 8785 canonical JSON of
its id-contributing properties, so two producers who see the same domain or
file mint the same id and the mesh deduplicates them for free.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Mapping

import rfc8785

SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

# The id-contributing properties of each SCO type, in the order the spec lists
# them (the order does not matter for the hash: canonical JSON sorts keys).
# `process` has none, so a process always gets a UUIDv4.
ID_CONTRIBUTING_PROPERTIES: dict[str, tuple[str, ...]] = {
    "artifact": ("hashes", "payload_bin"),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("from_ref", "subject", "body"),
    "file": ("hashes", "name", "extensions", "parent_directory_ref"),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": (
        "start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions",
    ),
    "process": (),
    "software": ("name", "cpe", "swid", "vendor", "version"),
    "url": ("value",),
    "user-account": ("account_type", "user_id", "account_login"),
    "windows-registry-key": ("key", "values"),
    "x509-certificate": ("hashes", "serial_number"),
}

# When `hashes` contributes, only one hash does, picked in this order; a
# dictionary with none of these contributes its first entry.
_HASH_PREFERENCE = ("MD5", "SHA-1", "SHA-256", "SHA-512")


def _one_hash(hashes: Mapping[str, Any]) -> dict[str, Any] | None:
    for name in _HASH_PREFERENCE:
        if name in hashes:
            return {name: hashes[name]}
    for name, value in hashes.items():
        return {name: value}
    return None


def deterministic_sco_id(obj: Mapping[str, Any]) -> str | None:
    """The deterministic id `<type>--<uuidv5>` of an SCO, or None.

    None when the type is not a STIX 2.1 SCO, or when none of its contributing
    properties is present: the spec then says to use a UUIDv4, so the caller
    keeps the id it has. Raises ValueError if a contributing value cannot be
    canonicalised (e.g. an integer beyond I-JSON's range).
    """
    sco_type = obj.get("type")
    if not isinstance(sco_type, str):
        return None
    props = ID_CONTRIBUTING_PROPERTIES.get(sco_type)
    if not props:
        return None
    contributing: dict[str, Any] = {}
    for name in props:
        if name not in obj:
            continue
        value = obj[name]
        if name == "hashes":
            if not isinstance(value, Mapping):
                continue
            value = _one_hash(value)
            if value is None:
                continue
        contributing[name] = value
    if not contributing:
        return None
    try:
        canonical = rfc8785.dumps(contributing)
    except rfc8785.CanonicalizationError as e:
        raise ValueError(f"cannot canonicalise {sco_type} id properties: {e}") from None
    # uuid.uuid5 wants a str; hashing the canonical bytes directly is the same
    # UUIDv5 (RFC 4122 §4.3) without a decode/encode round trip.
    digest = hashlib.sha1(SCO_NAMESPACE.bytes + canonical).digest()
    return f"{sco_type}--{uuid.UUID(bytes=digest[:16], version=5)}"
