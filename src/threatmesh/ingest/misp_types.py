"""MISP attribute types as STIX: the mapping kept as data, and the pattern builder.

Each MISP attribute type that names something observable maps to one or more
comparisons `(SCO type, property path, value)`; composite types (`filename|md5`,
`domain|ip`, `ip-dst|port`) split their value on `|`. The same comparisons give
the indicator's pattern and the observables (SCOs) of observed data, so the two
never disagree. Types with no observable meaning (text, comments, links,
crypto wallets, ...) map to nothing and are kept as custom objects instead.

Patterns follow STIX 2.1 §9: comparisons joined by AND inside one observation
expression must concern the same SCO type, so comparisons are grouped by type
and the groups joined by observation-level AND.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from threatmesh.stix.scoid import deterministic_sco_id


@dataclass(frozen=True, slots=True)
class Comparison:
    sco_type: str
    path: str  # STIX object path, e.g. "value", "hashes.'SHA-256'", "resolves_to_refs[*].value"
    value: str | int


# MISP hash attribute types -> STIX hash names (STIX 2.1 §10.7 vocabulary where it has one).
HASH_NAMES: dict[str, str] = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
    "sha512/224": "SHA-512/224",
    "sha512/256": "SHA-512/256",
    "sha3-224": "SHA3-224",
    "sha3-256": "SHA3-256",
    "sha3-384": "SHA3-384",
    "sha3-512": "SHA3-512",
    "ssdeep": "SSDEEP",
    "tlsh": "TLSH",
    "imphash": "IMPHASH",
    "authentihash": "AUTHENTIHASH",
    "pehash": "PEHASH",
    "impfuzzy": "IMPFUZZY",
    "vhash": "VHASH",
    "telfhash": "TELFHASH",
}
MISP_HASH_TYPE = {stix: misp for misp, stix in HASH_NAMES.items()}

# Types whose value is a rule in another pattern language (STIX 2.1 §10.14 pattern-type-ov).
RULE_PATTERN_TYPES: dict[str, str] = {"yara": "yara", "snort": "snort", "sigma": "sigma", "suricata": "suricata"}


def _ip_type(value: str) -> str:
    host = value.split("/", 1)[0]
    try:
        return "ipv6-addr" if ipaddress.ip_address(host).version == 6 else "ipv4-addr"
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {value!r}")
    return port


def _split(value: str, parts: int = 2) -> list[str]:
    pieces = value.split("|")
    if len(pieces) != parts or not all(pieces):
        raise ValueError(f"expected {parts} values separated by '|', got {value!r}")
    return pieces


def _hash(name: str) -> Callable[[str], list[Comparison]]:
    return lambda v: [Comparison("file", f"hashes.'{name}'", v)]


def _filename_hash(name: str) -> Callable[[str], list[Comparison]]:
    def build(v: str) -> list[Comparison]:
        filename, digest = _split(v)
        return [Comparison("file", "name", filename), Comparison("file", f"hashes.'{name}'", digest)]

    return build


def _ip(v: str) -> list[Comparison]:
    return [Comparison(_ip_type(v), "value", v)]


def _ip_port(side: str) -> Callable[[str], list[Comparison]]:
    def build(v: str) -> list[Comparison]:
        ip, port = _split(v)
        _ip_type(ip)
        return [Comparison("network-traffic", f"{side}_ref.value", ip),
                Comparison("network-traffic", f"{side}_port", _port(port))]

    return build


def _host_port(v: str) -> list[Comparison]:
    host, port = _split(v)
    return [Comparison("network-traffic", "dst_ref.value", host), Comparison("network-traffic", "dst_port", _port(port))]


def _domain_ip(v: str) -> list[Comparison]:
    domain, ip = _split(v)
    _ip_type(ip)
    return [Comparison("domain-name", "value", domain), Comparison("domain-name", "resolves_to_refs[*].value", ip)]


def _regkey_value(v: str) -> list[Comparison]:
    key, _, data = v.partition("|")
    if not key or not data:
        raise ValueError(f"expected key|data, got {v!r}")
    return [Comparison("windows-registry-key", "key", key), Comparison("windows-registry-key", "values[*].data", data)]


def _as_number(v: str) -> list[Comparison]:
    text = v.upper().removeprefix("AS").strip()
    return [Comparison("autonomous-system", "number", int(text))]


def _simple(sco_type: str, path: str) -> Callable[[str], list[Comparison]]:
    return lambda v: [Comparison(sco_type, path, v)]


COMPARISONS: dict[str, Callable[[str], list[Comparison]]] = {
    "ip-src": _ip,
    "ip-dst": _ip,
    "ip": _ip,
    "ip-src|port": _ip_port("src"),
    "ip-dst|port": _ip_port("dst"),
    "hostname|port": _host_port,
    "domain": _simple("domain-name", "value"),
    "hostname": _simple("domain-name", "value"),
    "domain|ip": _domain_ip,
    "url": _simple("url", "value"),
    "uri": _simple("url", "value"),
    "email": _simple("email-addr", "value"),
    "email-src": _simple("email-addr", "value"),
    "email-dst": _simple("email-addr", "value"),
    "target-email": _simple("email-addr", "value"),
    "email-reply-to": _simple("email-addr", "value"),
    "email-subject": _simple("email-message", "subject"),
    "email-attachment": _simple("email-message", "body_multipart[*].body_raw_ref.name"),
    "filename": _simple("file", "name"),
    "mime-type": _simple("file", "mime_type"),
    "size-in-bytes": lambda v: [Comparison("file", "size", int(v))],
    "malware-sample": _filename_hash("MD5"),
    "regkey": _simple("windows-registry-key", "key"),
    "regkey|value": _regkey_value,
    "mutex": _simple("mutex", "name"),
    "AS": _as_number,
    "mac-address": _simple("mac-addr", "value"),
    "user-agent": _simple("network-traffic", "extensions.'http-request-ext'.request_header.'User-Agent'"),
    "port": lambda v: [Comparison("network-traffic", "dst_port", _port(v))],
    "x509-fingerprint-md5": _simple("x509-certificate", "hashes.'MD5'"),
    "x509-fingerprint-sha1": _simple("x509-certificate", "hashes.'SHA-1'"),
    "x509-fingerprint-sha256": _simple("x509-certificate", "hashes.'SHA-256'"),
    **{t: _hash(n) for t, n in HASH_NAMES.items()},
    **{f"filename|{t}": _filename_hash(n) for t, n in HASH_NAMES.items()},
}

def comparisons(misp_type: str, value: str) -> list[Comparison]:
    """The observable comparisons a MISP attribute stands for ([] when it is not observable).

    Raises ValueError when the type is observable but the value does not fit it.
    (Attributes of MISP objects are read through their template: `misp_objects`.)
    """
    build = COMPARISONS.get(misp_type)
    if build is None:
        return []
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty value")
    return build(value.strip())


def _quote(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _test(c: Comparison) -> str:
    return f"{c.sco_type}:{c.path} = {_quote(c.value)}"


def build_pattern(items: Sequence[Comparison | Sequence[Comparison]]) -> str:
    """A STIX pattern: comparisons grouped by SCO type, AND inside and between groups.

    An item that is a sequence holds alternatives of one SCO type, joined by OR.
    """
    groups: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Comparison):
            groups.setdefault(item.sco_type, []).append(_test(item))
        elif len(item) == 1:
            groups.setdefault(item[0].sco_type, []).append(_test(item[0]))
        elif item:
            groups.setdefault(item[0].sco_type, []).append("(" + " OR ".join(_test(c) for c in item) + ")")
    return " AND ".join("[" + " AND ".join(parts) + "]" for parts in groups.values())


def build_observables(items: Sequence[Comparison]) -> list[dict[str, Any]]:
    """SCOs (with deterministic ids) for the comparisons that describe one whole object.

    Comparisons through references or nested extensions that would need invented
    properties (network-traffic needs `protocols`, email-message `is_multipart`)
    give no SCO: the indicator pattern still carries them.
    """
    by_type: dict[str, dict[str, Any]] = {}
    extra: list[dict[str, Any]] = []
    for c in items:
        if c.sco_type == "network-traffic" and c.path in ("src_ref.value", "dst_ref.value"):
            address = _address_sco(str(c.value))
            if address:
                extra.append(address)
            continue
        if c.sco_type in ("network-traffic", "email-message"):
            continue
        sco = by_type.setdefault(c.sco_type, {"type": c.sco_type, "spec_version": "2.1"})
        if c.path.startswith("hashes."):
            sco.setdefault("hashes", {})[c.path[len("hashes."):].strip("'")] = c.value
        elif c.path == "resolves_to_refs[*].value":
            ip: dict[str, Any] = {"type": _ip_type(str(c.value)), "spec_version": "2.1", "value": c.value}
            ip["id"] = deterministic_sco_id(ip)
            extra.append(ip)
            sco.setdefault("resolves_to_refs", []).append(ip["id"])
        elif c.path == "values[*].data":
            sco.setdefault("values", []).append({"data": c.value})
        elif "." in c.path or "[" in c.path:
            continue
        else:
            sco[c.path] = c.value
    out: list[dict[str, Any]] = []
    for sco in by_type.values():
        if len(sco) <= 2:  # only type and spec_version: nothing observable was said
            continue
        sco_id = deterministic_sco_id(sco)
        if sco_id is None:
            continue
        out.append({"id": sco_id, **sco})
    return out + extra


def _address_sco(value: str) -> dict[str, Any] | None:
    """The SCO at one end of a connection (an address, or a domain name), with its id."""
    try:
        sco: dict[str, Any] = {"type": _ip_type(value), "spec_version": "2.1", "value": value}
    except ValueError:
        sco = {"type": "domain-name", "spec_version": "2.1", "value": value}
    sco_id = deterministic_sco_id(sco)
    return {"id": sco_id, **sco} if sco_id else None


def build_object_observables(terms: Sequence[Sequence[Comparison]]) -> list[dict[str, Any]]:
    """SCOs of a MISP object: its single comparisons describe one SCO per type; alternatives one SCO each."""
    out = build_observables([t[0] for t in terms if len(t) == 1])
    for term in terms:
        if len(term) > 1:
            for c in term:
                out.extend(build_observables([c]))
    return list({sco["id"]: sco for sco in out}.values())
