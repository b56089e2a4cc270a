"""The values security tools block on: which indicators qualify, and what each one names.

Tool formats (Zeek intel, Suricata, Snort, RPZ, CSV, plain lists) carry single
values, not patterns. An indicator qualifies when it is a STIX-pattern
indicator that is valid now (`valid_from` <= now < `valid_until`), not
revoked, not flagged by a warninglist (unless asked), at or above
`--min-confidence`, and the egress policy lets it go (it comes from
`export.select.outgoing`). Its values are the pattern's exact keys, the same
ones the matcher indexes: patterns that are not a disjunction of equalities
(`LIKE`, `FOLLOWEDBY`...) cannot be said in these formats and are counted as
not expressible.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import orjson

from threatmesh.errors import BadParameter
from threatmesh.export.select import ExportOptions, Tally, outgoing
from threatmesh.share.policy import Recipient
from threatmesh.stix.timestamps import timestamp_to_micros
from threatmesh.store.protocol import Store

# Short kinds for `--type`, from the matcher's key kinds.
_KIND_OF_KEY = {
    "ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain", "url": "url", "email-addr": "email",
}
_HASH_KINDS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
KINDS = ("ip", "domain", "url", "email", "md5", "sha1", "sha256", "sha512")
_ALIASES = {"ipv4": "ip", "ipv6": "ip", "ipv4-addr": "ip", "ipv6-addr": "ip", "cidr": "ip",
            "domain-name": "domain", "hostname": "domain", "email-addr": "email", "sha-1": "sha1",
            "sha-256": "sha256", "sha-512": "sha512"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One value to block or watch, with the indicator it comes from."""

    kind: str  # one of KINDS
    value: str  # canonical (stix.observables.normalize); IPs may be CIDR ranges
    indicator_id: str
    name: str
    confidence: int | None
    valid_from: str
    valid_until: str | None
    tlp: str | None


@dataclass(slots=True)
class Selection:
    tally: Tally = field(default_factory=Tally)
    not_expressible: int = 0  # qualifying indicators whose pattern is not a set of values
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> indicators left out

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def wanted_kinds(types: tuple[str, ...]) -> frozenset[str]:
    """`--type ip,domain,hash` -> the short kinds; ValueError for an unknown one."""
    if not types:
        return frozenset(KINDS)
    out: set[str] = set()
    for raw in types:
        name = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name == "hash":
            out.update(("md5", "sha1", "sha256", "sha512"))
        elif name in KINDS:
            out.add(name)
        else:
            raise BadParameter("--type", f"unknown indicator type {raw!r}; choose from {', '.join(KINDS)}, hash")
    return frozenset(out)


def _key_kind(kind: str) -> str | None:
    if kind in _KIND_OF_KEY:
        return _KIND_OF_KEY[kind]
    _, sep, name = kind.partition(":hashes.")
    return _HASH_KINDS.get(name) if sep else None


def _warninglisted(store: Store, options: ExportOptions) -> set[str]:
    if options.extra.get("include_warninglisted") == "1":
        return set()
    try:  # the collect capability's flags, when it is installed
        from threatmesh.kb.warninglists import flagged_ids
    except ImportError:
        return set()
    return flagged_ids(store)


def _now(options: ExportOptions) -> int:
    raw = options.extra.get("now")  # tests and reproducible exports fix the clock
    return timestamp_to_micros(raw) if raw else time.time_ns() // 1000


def select_entries(
    store: Store,
    recipient: Recipient,
    *,
    default_tlp: str,
    options: ExportOptions,
    selection: Selection,
) -> Iterator[Entry]:
    """The entries of every qualifying indicator, in store order, deduplicated by (kind, value)."""
    from threatmesh.match.patterns import PatternError, compile_pattern

    kinds = wanted_kinds(options.types)
    flagged = _warninglisted(store, options)
    now = _now(options)
    seen: set[tuple[str, str]] = set()
    # `types` name indicator kinds here, not STIX types; tools want the latest versions only.
    plain_options = replace(options, types=(), all_versions=False)
    for version in outgoing(store, recipient, default_tlp=default_tlp, options=plain_options,
                            tally=selection.tally, stix_types=("indicator",)):
        if version.type != "indicator":
            continue  # objects the egress path adds to keep a package whole; tools do not want them
        obj = orjson.loads(version.json)
        if version.revoked or obj.get("revoked"):
            selection.skip("revoked")
            continue
        if obj.get("pattern_type", "stix") != "stix" or not isinstance(obj.get("pattern"), str):
            selection.skip("not a STIX pattern")
            continue
        if version.id in flagged:
            selection.skip("warninglisted")
            continue
        try:
            valid_from = timestamp_to_micros(obj.get("valid_from") or obj["created"])
            valid_until = timestamp_to_micros(obj["valid_until"]) if obj.get("valid_until") else None
        except (KeyError, ValueError):
            selection.skip("invalid validity window")
            continue
        if valid_from > now or (valid_until is not None and valid_until <= now):
            selection.skip("not valid now")
            continue
        confidence = obj.get("confidence")
        if options.min_confidence is not None and not (
                type(confidence) is int and confidence >= options.min_confidence):
            selection.skip("below --min-confidence")
            continue
        try:
            keys = compile_pattern(obj["pattern"]).exact_keys()
        except PatternError:
            selection.skip("invalid pattern")
            continue
        if keys is None:
            selection.not_expressible += 1
            continue
        for key_kind, value in sorted(keys):
            kind = _key_kind(key_kind)
            if kind is None or kind not in kinds or (kind, value) in seen:
                continue
            seen.add((kind, value))
            yield Entry(kind, value, version.id, str(obj.get("name") or ""), confidence if type(confidence) is int
                        else None, str(obj.get("valid_from") or ""), obj.get("valid_until"), version.tlp)
