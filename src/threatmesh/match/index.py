"""The indicator index: every valid indicator's exact values, in hash tables, ready for lookups.

Tables per group (ip, domain, url, hash, email) map a key to an indicator
slot; CIDR ranges are kept per prefix length (`network int -> slot`), so an
address is found in at most one lookup per prefix length in use, however
many ranges there are; a domain is looked up with each of its parent names,
so an indicator on evil.com fires on a.b.evil.com.

Patterns that are a plain disjunction of equalities are read with a regular
expression (the grammar costs ~1 ms a pattern, too slow for a million
indicators); every other pattern goes to the pattern compiler plugged in
through `match.protocol` and is evaluated over the events instead.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import orjson

from threatmesh.match.keys import GROUP_DOMAIN, GROUP_IP, indicator_key, kind_group
from threatmesh.match.protocol import CompiledPattern, ExactKey, PatternCompiler
from threatmesh.stix.index import pattern_observables
from threatmesh.stix.timestamps import timestamp_to_micros


class ObjectSource(Protocol):
    """What the index needs of a store (`Store.iter_objects`); the engine stays free of the store layer."""

    def iter_objects(self) -> Iterator[Any]: ...

NO_END = 1 << 62  # valid_until of an indicator without one

# One comparison `type:value = '...'` / `type:hashes.X = '...'`, as stix.index reads them.
_EQ = r"[a-z0-9-]+:(?:value|hashes\.(?:'[^']+'|[A-Za-z0-9_-]+))\s*=\s*'(?:[^'\\]|\\.)*'"
_EQ_RE = re.compile(_EQ)
# A whole pattern made of such comparisons joined by OR, in one or more observations joined by OR.
_PURE_OR_RE = re.compile(
    rf"\s*\[\s*{_EQ}(?:\s+OR\s+{_EQ})*\s*\](?:\s+OR\s+\[\s*{_EQ}(?:\s+OR\s+{_EQ})*\s*\])*\s*\Z"
)


def _parse_range(value: str) -> tuple[int, int, int]:
    """(IP version, network as an int, prefix length) of 'a.b.c.d/n' or an IPv6 range; ValueError if neither."""
    addr, _, plen = value.partition("/")
    parts = addr.split(".")
    if len(parts) == 4 and plen.isascii() and plen.isdigit() and int(plen) <= 32:
        try:
            a, b, c, d = int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            a = -1
        # str(int(p)) == p: no sign, space or leading zero, as `ipaddress` reads them.
        if 0 <= a <= 255 and 0 <= b <= 255 and 0 <= c <= 255 and 0 <= d <= 255 and \
                f"{a}.{b}.{c}.{d}" == addr:
            prefixlen = int(plen)
            mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
            return 4, (a << 24 | b << 16 | c << 8 | d) & mask, prefixlen
    net = ipaddress.ip_network(value, strict=False)
    return net.version, int(net.network_address), net.prefixlen


@dataclass(frozen=True, slots=True)
class IndicatorInfo:
    id: str
    name: str
    valid_from: int  # µs
    valid_until: int  # µs, exclusive (STIX 2.1 §4.7: no longer valid from then on)

    def valid_at(self, time: int) -> bool:
        return self.valid_from <= time < self.valid_until


@dataclass(frozen=True, slots=True)
class SkippedIndicator:
    id: str
    reason: str


class KeyTable(Protocol):
    """Slots by key, for the bulk-loaded index (`match.hashed.HashedKeys`)."""

    def get(self, key: str) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...


@dataclass
class IndicatorIndex:
    indicators: Sequence[IndicatorInfo] = field(default_factory=list)
    # group -> key -> slots (a tuple: most keys belong to one indicator, a few to several)
    exact: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    # The bulk-loaded index keeps its exact keys here instead, as hashed columns (match.bulk).
    hashed: dict[str, KeyTable] = field(default_factory=dict)
    # IP version -> prefix length -> network as int -> slots
    cidr: dict[int, dict[int, dict[int, tuple[int, ...]]]] = field(default_factory=lambda: {4: {}, 6: {}})
    evaluated: list[tuple[int, CompiledPattern]] = field(default_factory=list)
    skipped: list[SkippedIndicator] = field(default_factory=list)
    warninglisted: int = 0
    max_domain_labels: int = 0
    domain_label_counts: set[int] = field(default_factory=set)  # labels of the indicator names

    # -- building ---------------------------------------------------------------

    def add_key(self, slot: int, kind: str, value: str) -> bool:
        group = kind_group(kind)
        if group is None:
            return False
        if group == GROUP_IP and "/" in value:
            version, key_int, prefixlen = _parse_range(value)
            table = self.cidr[version].setdefault(prefixlen, {})
            table[key_int] = table.get(key_int, ()) + (slot,)
            return True
        key = indicator_key(kind, value)
        assert not self.hashed, "add_key builds dictionary indexes only"
        table_s = self.exact.setdefault(group, {})
        table_s[key] = table_s.get(key, ()) + (slot,)
        if group == GROUP_DOMAIN:
            labels = key.count(".") + 1
            self.domain_label_counts.add(labels)
            self.max_domain_labels = max(self.max_domain_labels, labels)
        return True

    def __len__(self) -> int:
        return len(self.indicators)

    # -- lookups ------------------------------------------------------------------

    def has_group(self, group: str) -> bool:
        return bool(self.exact.get(group) or self.hashed.get(group))

    def lookup(self, group: str, key: str) -> Iterator[int]:
        """Slots of the indicators a normalised value of `group` hits (any time)."""
        table: KeyTable | dict[str, tuple[int, ...]] | None = self.hashed.get(group) or self.exact.get(group)
        if table is not None:
            slots = table.get(key)
            if slots:
                yield from slots
            if group == GROUP_DOMAIN:
                rest = key
                while "." in rest:
                    rest = rest.partition(".")[2]
                    parent = table.get(rest)
                    if parent:
                        yield from parent
        if group == GROUP_IP:
            version = 6 if ":" in key else 4
            by_len = self.cidr[version]
            if by_len:
                addr = int(ipaddress.ip_address(key))
                bits = 32 if version == 4 else 128
                for prefixlen, nets in by_len.items():
                    hit = nets.get(addr >> (bits - prefixlen) << (bits - prefixlen))
                    if hit:
                        yield from hit


# The overwhelmingly common indicator: one comparison in one observation.
_SINGLE_RE = re.compile(r"\[\s*(ipv4-addr|ipv6-addr|domain-name|url|email-addr|file):"
                        r"(value|hashes\.(?:'[^']+'|[A-Za-z0-9_-]+))\s*=\s*'([^'\\]*)'\s*\]\Z")
_DOTTED_QUAD_RE = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                             r"(?:/(?:3[0-2]|[12]?\d))?\Z")
_PLAIN_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]\Z")
_HEX_RE = re.compile(r"[0-9a-f]+\Z")
_HEX_LENGTHS = {"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128}
_HASH_KIND = {"MD5": "MD5", "'MD5'": "MD5", "'SHA-1'": "SHA-1", "SHA1": "SHA-1", "'SHA1'": "SHA-1",
              "'SHA-256'": "SHA-256", "SHA256": "SHA-256", "'SHA256'": "SHA-256",
              "'SHA-512'": "SHA-512", "SHA512": "SHA-512", "'SHA512'": "SHA-512"}


def _fast_single_key(pattern: str) -> ExactKey | None:
    """The key of `[type:prop = 'value']` for the plain spellings that need no library to
    normalise (a dotted quad, a lower-case name, a hex digest); None sends it the long way."""
    m = _SINGLE_RE.match(pattern)
    if m is None:
        return None
    obj_type, prop, value = m.groups()
    if obj_type == "ipv4-addr" and prop == "value" and _DOTTED_QUAD_RE.match(value):
        if "/" in value:
            addr, plen = value.split("/")
            if plen == "32":
                return ("ipv4-addr", addr)
            # A range: its network address must be the range's own (`normalize` keeps host bits as given).
            return None
        return ("ipv4-addr", value)
    if obj_type == "domain-name" and prop == "value":
        name = value.lower().rstrip(".")
        if len(name) <= 253 and _PLAIN_DOMAIN_RE.match(name):
            return ("domain-name", name)
        return None
    if obj_type == "file" and prop != "value":
        name = _HASH_KIND.get(prop.partition(".")[2])
        digest = value.lower()
        if name and len(digest) == _HEX_LENGTHS[name] and _HEX_RE.match(digest):
            return (f"file:hashes.{name}", digest)
    return None


def exact_keys_of(pattern: str) -> frozenset[ExactKey] | None:
    """The keys of a pattern that is a disjunction of indexable equalities; None otherwise."""
    fast = _fast_single_key(pattern)
    if fast is not None:
        return frozenset((fast,))
    if not _PURE_OR_RE.match(pattern):
        return None
    keys = frozenset(pattern_observables(pattern))
    if not keys or any(kind_group(kind) is None for kind, _ in keys):
        return None
    # pattern_observables drops values that do not normalise; a dropped one means not all are indexable.
    if len(keys) < len(set(_EQ_RE.findall(pattern))):
        return None
    return keys


def load_pattern_compiler() -> PatternCompiler | None:
    """The full STIX pattern engine (`threatmesh.match.patterns.compile_pattern`), when it is installed."""
    try:
        from threatmesh.match import patterns  # type: ignore[attr-defined]
    except ImportError:
        return None
    compiler = getattr(patterns, "compile_pattern", None)
    return compiler if callable(compiler) else None


WarninglistCheck = Callable[[str, str], "str | None"]


def load_flagged_ids(store: Any) -> set[str]:
    """Ids of the indicators the knowledge base flagged as warninglisted (`threatmesh.kb.warninglists`).

    Imported lazily: when the knowledge base is not installed, or the store
    cannot answer, nothing is skipped on its account.
    """
    try:
        from threatmesh.kb import warninglists
    except ImportError:
        return set()
    flagged = getattr(warninglists, "flagged_ids", None)
    if not callable(flagged):
        return set()
    return set(flagged(store))


# Properties by which the knowledge base may flag an indicator as a known false positive.
_FLAG_PROPERTIES = ("x_threatmesh_warninglists", "x_threatmesh_warninglist", "x_warninglists")


def _flagged(obj: dict[str, Any]) -> bool:
    for name in _FLAG_PROPERTIES:
        if obj.get(name):
            return True
    return False


_TIME_CACHE: dict[str, int] = {}


def _micros(obj: dict[str, Any], name: str, default: int) -> int:
    value = obj.get(name)
    if not isinstance(value, str):
        return default
    # Bulk feeds share a handful of validity times across thousands of indicators.
    us = _TIME_CACHE.get(value)
    if us is None:
        us = timestamp_to_micros(value)
        if len(_TIME_CACHE) > 100_000:
            _TIME_CACHE.clear()
        _TIME_CACHE[value] = us
    return us


def build_index(
    indicators: Iterable[dict[str, Any]],
    *,
    compiler: PatternCompiler | None = None,
    warninglist: WarninglistCheck | None = None,
    flagged: set[str] | frozenset[str] = frozenset(),
    include_warninglisted: bool = False,
) -> IndicatorIndex:
    """The index of parsed indicator objects; revoked ones and those no pattern key fits are skipped.

    Warninglisted ones are left out (unless `include_warninglisted`): those whose id is in
    `flagged`, those carrying a flag property, and those a `warninglist` check names a list for.
    """
    infos: list[IndicatorInfo] = []
    index = IndicatorIndex(indicators=infos)
    for obj in indicators:
        ind_id = str(obj.get("id", "?"))
        if obj.get("revoked") is True:
            continue
        pattern = obj.get("pattern")
        if obj.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
            index.skipped.append(SkippedIndicator(ind_id, f"pattern type {obj.get('pattern_type')!r} not matched"))
            continue
        if not include_warninglisted and (ind_id in flagged or _flagged(obj)):
            index.warninglisted += 1
            continue
        try:
            info = IndicatorInfo(ind_id, str(obj.get("name", "")), _micros(obj, "valid_from", 0),
                                 _micros(obj, "valid_until", NO_END))
        except ValueError as exc:
            index.skipped.append(SkippedIndicator(ind_id, f"bad validity time: {exc}"))
            continue
        keys = exact_keys_of(pattern)
        compiled: CompiledPattern | None = None
        if keys is None and compiler is not None:
            try:
                compiled = compiler(pattern)
            except Exception as exc:  # the plugged-in compiler's own errors: report, go on
                index.skipped.append(SkippedIndicator(ind_id, f"pattern does not compile: {exc}"))
                continue
            keys = compiled.exact_keys()
        if keys is None and compiled is None:
            index.skipped.append(SkippedIndicator(ind_id, "pattern is not a disjunction of equalities and "
                                                          "no full pattern engine is installed"))
            continue
        if keys is not None and not include_warninglisted and warninglist is not None:
            if any(warninglist(kind, value) for kind, value in keys):
                index.warninglisted += 1
                continue
        slot = len(infos)
        infos.append(info)
        if keys is not None:
            if not any([index.add_key(slot, kind, value) for kind, value in keys]):
                infos.pop()
                index.skipped.append(SkippedIndicator(ind_id, "no observable kind threatmesh can match"))
        elif compiled is not None:
            index.evaluated.append((slot, compiled))
    return index


def load_index(store: ObjectSource, *, include_warninglisted: bool = False, use_compiler: bool = True) -> IndicatorIndex:
    """The index of the latest version of every indicator in the store.

    A store that offers the bulk key read (`indicator_key_rows`) is read with it
    (`match.bulk`: columns, no JSON parsed per indicator); any other is walked object by object.
    """
    bulk_read = getattr(store, "indicator_key_rows", None)
    if callable(bulk_read):
        from threatmesh.match.bulk import index_from_rows

        return index_from_rows(
            bulk_read(),
            compiler=load_pattern_compiler() if use_compiler else None,
            flagged=frozenset() if include_warninglisted else load_flagged_ids(store),
            include_warninglisted=include_warninglisted,
            names=getattr(store, "indicator_names", None),
        )

    def indicators() -> Iterator[dict[str, Any]]:
        for stored in store.iter_objects():
            if stored.type == "indicator" and not stored.revoked:
                yield orjson.loads(stored.json)

    return build_index(
        indicators(),
        compiler=load_pattern_compiler() if use_compiler else None,
        flagged=frozenset() if include_warninglisted else load_flagged_ids(store),
        include_warninglisted=include_warninglisted,
    )
