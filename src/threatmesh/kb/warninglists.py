"""Warninglists: known-benign values (RFC 1918, top sites, public resolvers...) that suppress false positives.

MISP warninglists (https://github.com/MISP/misp-warninglists) come in five
types: `cidr` (networks), `hostname` (a domain and all its subdomains),
`string` (exact values), `substring` and `regex`. A list applies to the
observable kinds its `matching_attributes` name.

Lookups are dictionary probes: one per prefix length for networks, one per
domain suffix for hostnames, one for strings; substrings use an Aho-Corasick
automaton (pyahocorasick), regexes are searched one by one (there are few).

Loaded lists live in the store's metadata (`kb.warninglist:<slug>`), so every
process of the node sees the same ones; objects that hit a list are recorded
in `kb.warninglist_hits` ({object id: [list names]}), which exporters and the
matcher read through `flagged_ids` / `warninglist_hits`. Flagged objects are
kept, never deleted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ahocorasick
import orjson

from threatmesh.errors import InputError
from threatmesh.stix.index import pattern_observables
from threatmesh.stix.model import StixObject
from threatmesh.store.protocol import PutOutcome, PutResult, Store

META_INDEX = "kb.warninglists"
META_LIST = "kb.warninglist:"
META_HITS = "kb.warninglist_hits"
LIST_TYPES = ("cidr", "hostname", "string", "substring", "regex")

# Observable kinds (as the store indexes them) -> the MISP attribute types they are checked as.
KIND_ATTRIBUTES: dict[str, frozenset[str]] = {
    "ipv4-addr": frozenset({"ip-src", "ip-dst", "ip", "domain|ip", "ip-src|port", "ip-dst|port"}),
    "ipv6-addr": frozenset({"ip-src", "ip-dst", "ip", "domain|ip", "ip-src|port", "ip-dst|port"}),
    "domain-name": frozenset({"domain", "hostname", "domain|ip"}),
    "url": frozenset({"url", "uri", "link"}),
    "email-addr": frozenset({"email", "email-src", "email-dst", "target-email"}),
    "file:hashes.MD5": frozenset({"md5", "filename|md5"}),
    "file:hashes.SHA-1": frozenset({"sha1", "filename|sha1"}),
    "file:hashes.SHA-256": frozenset({"sha256", "filename|sha256"}),
    "file:hashes.SHA-512": frozenset({"sha512", "filename|sha512"}),
}


@dataclass(frozen=True, slots=True)
class Warninglist:
    name: str
    type: str
    entries: tuple[str, ...]
    matching_attributes: tuple[str, ...] = ()
    description: str = ""
    version: int = 0

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def applies_to(self, kind: str) -> bool:
        if not self.matching_attributes:
            return True
        return bool(KIND_ATTRIBUTES.get(kind, frozenset({kind})) & set(self.matching_attributes))

    def as_json(self) -> bytes:
        return orjson.dumps({"name": self.name, "type": self.type, "list": list(self.entries),
                             "matching_attributes": list(self.matching_attributes),
                             "description": self.description, "version": self.version})


def parse_warninglist(data: Mapping[str, Any], source: str) -> Warninglist:
    """A warninglist from MISP's list.json layout; InputError naming the file when it is not one."""
    kind = data.get("type")
    if kind not in LIST_TYPES:
        raise InputError(f"unknown warninglist type {kind!r} (known: {', '.join(LIST_TYPES)})", source=source)
    entries = data.get("list")
    if not isinstance(data.get("name"), str) or not isinstance(entries, list):
        raise InputError("a warninglist needs a `name` and a `list`", source=source)
    return Warninglist(
        name=data["name"], type=str(kind),
        entries=tuple(str(e).strip() for e in entries if isinstance(e, (str, int)) and str(e).strip()),
        matching_attributes=tuple(str(a) for a in data.get("matching_attributes") or []),
        description=str(data.get("description", "")),
        version=int(data["version"]) if str(data.get("version", "")).isdigit() else 0,
    )


def read_warninglists(path: Path) -> Iterator[Warninglist | InputError]:
    """Every list.json under a folder (MISP's `lists/<name>/list.json`), or one file; bad ones as errors."""
    files = [path] if path.is_file() else sorted(path.rglob("list.json"))
    if not files:
        yield InputError("no list.json found", source=str(path))
    for file in files:
        try:
            yield parse_warninglist(orjson.loads(file.read_bytes()), str(file))
        except InputError as exc:
            yield exc
        except (OSError, orjson.JSONDecodeError) as exc:
            yield InputError(f"cannot read warninglist: {exc}", source=str(file))


def builtin_warninglists() -> list[Warninglist]:
    """The small default set every node has: special-use networks, localhost, example and reserved names."""
    special_v4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                  "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
                  "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32")
    special_v6 = ("::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10",
                  "ff00::/8")
    ip_attrs = ("ip-src", "ip-dst", "domain|ip", "ip-src|port", "ip-dst|port")
    return [
        Warninglist("threatmesh built-in: special-use IP ranges (RFC 1918, RFC 6890, documentation)", "cidr",
                    special_v4 + special_v6, ip_attrs, "private, loopback, link-local, documentation and reserved"),
        Warninglist("threatmesh built-in: localhost and reserved names (RFC 2606, RFC 6761)", "hostname",
                    ("localhost", "localdomain", "example", "example.com", "example.net", "example.org", "test",
                     "invalid", "local"),
                    ("hostname", "domain", "domain|ip", "url", "email-src", "email-dst"),
                    "names that never point to a real adversary"),
    ]


@dataclass
class WarninglistIndex:
    """The lookup structure over a set of warninglists."""

    lists: list[Warninglist] = field(default_factory=list)
    _networks: dict[int, dict[int, dict[int, list[int]]]] = field(default_factory=dict)  # version -> prefix -> net -> lists
    _hostnames: dict[str, list[int]] = field(default_factory=dict)
    _strings: dict[str, list[int]] = field(default_factory=dict)
    _substrings: Any = None
    _regexes: list[tuple[re.Pattern[str], int]] = field(default_factory=list)

    @classmethod
    def build(cls, lists: Iterable[Warninglist]) -> WarninglistIndex:
        index = cls()
        for wl in lists:
            index.add(wl)
        if index._substrings is not None:
            index._substrings.make_automaton()
        return index

    def add(self, wl: Warninglist) -> None:
        n = len(self.lists)
        self.lists.append(wl)
        for entry in wl.entries:
            if wl.type == "cidr":
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    continue  # a list entry that is not a network cannot match one
                by_prefix = self._networks.setdefault(net.version, {}).setdefault(net.prefixlen, {})
                by_prefix.setdefault(int(net.network_address), []).append(n)
            elif wl.type == "hostname":
                self._hostnames.setdefault(entry.lower().strip(".").removeprefix("*."), []).append(n)
            elif wl.type == "string" and entry.startswith("."):
                # '.google.com' in a string list names the domain's subdomains (and itself)
                self._hostnames.setdefault(entry.lower().strip("."), []).append(n)
            elif wl.type == "string":
                self._strings.setdefault(entry.lower(), []).append(n)
            elif wl.type == "substring":
                if self._substrings is None:
                    self._substrings = ahocorasick.Automaton()
                key = entry.lower()
                found = self._substrings.get(key, [])
                self._substrings.add_word(key, found + [n])
            elif wl.type == "regex":
                # MISP writes PCRE with delimiters and flags: /^abuse@.*$/i
                delimited = re.fullmatch(r"/(.*)/([a-z]*)", entry, re.DOTALL)
                body = delimited.group(1) if delimited else entry
                try:
                    self._regexes.append((re.compile(body, re.IGNORECASE), n))
                except re.error:
                    continue

    def hits(self, kind: str, value: str) -> list[str]:
        """Names of the lists that `value` (an observable of `kind`) is on."""
        found: set[int] = set()
        text = value.strip().lower()
        host = text
        if kind == "url":
            host = (urlsplit(text if "://" in text else "http://" + text).hostname or "")
        elif kind == "email-addr":
            host = text.rpartition("@")[2]
        found.update(self._ip_hits(host))
        if kind in ("domain-name", "url", "email-addr"):
            labels = host.strip(".").split(".")
            for i in range(len(labels)):
                found.update(self._hostnames.get(".".join(labels[i:]), ()))
        found.update(self._strings.get(text, ()))
        if kind == "url":
            found.update(self._strings.get(host, ()))
        if self._substrings is not None:
            for _, lists in self._substrings.iter(text):
                found.update(lists)
        for regex, n in self._regexes:
            if regex.search(value):
                found.add(n)
        return sorted({self.lists[n].name for n in found if self.lists[n].applies_to(kind)})

    def _ip_hits(self, host: str) -> Iterator[int]:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        number, width = int(address), address.max_prefixlen
        for prefix, nets in self._networks.get(address.version, {}).items():
            mask = ((1 << prefix) - 1) << (width - prefix) if prefix else 0
            yield from nets.get(number & mask, ())

    def is_warninglisted(self, kind: str, value: str) -> bool:
        return bool(self.hits(kind, value))


# -- kept in the store ----------------------------------------------------------------


def save_warninglists(store: Store, lists: Sequence[Warninglist]) -> None:
    """Keep lists in the store's metadata (a list with the same name is replaced)."""
    slugs = set(_slugs(store))
    for wl in lists:
        store.set_meta(META_LIST + wl.slug, wl.as_json().decode())
        slugs.add(wl.slug)
    store.set_meta(META_INDEX, orjson.dumps(sorted(slugs)).decode())


def _slugs(store: Store) -> list[str]:
    raw = store.get_meta(META_INDEX)
    return list(orjson.loads(raw)) if raw else []


def stored_warninglists(store: Store, *, builtin: bool = True) -> list[Warninglist]:
    """The built-in lists and every list loaded into the store."""
    lists = builtin_warninglists() if builtin else []
    for slug in _slugs(store):
        raw = store.get_meta(META_LIST + slug)
        if raw:
            lists.append(parse_warninglist(orjson.loads(raw), f"store meta {META_LIST + slug}"))
    return lists


def load_index(store: Store) -> WarninglistIndex:
    return WarninglistIndex.build(stored_warninglists(store))


def object_observables(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) pairs of an indicator's pattern or of an SCO."""
    if obj.get("type") == "indicator" and obj.get("pattern_type", "stix") == "stix":
        return pattern_observables(str(obj.get("pattern", "")))
    if obj.get("type") in ("ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr") and obj.get("value"):
        return [(str(obj["type"]), str(obj["value"]))]
    if obj.get("type") == "file" and isinstance(obj.get("hashes"), Mapping):
        return [(f"file:hashes.{k}", str(v)) for k, v in obj["hashes"].items()]
    return []


def flag_store(store: Store, index: WarninglistIndex | None = None) -> dict[str, list[str]]:
    """Check every latest indicator and SCO against the lists; record and return {id: [list names]}.

    An indicator is flagged when any value it names is on a list: one benign value
    in a pattern is enough for a detection built from it to fire on benign traffic.
    """
    index = index or load_index(store)
    hits: dict[str, list[str]] = {}
    for version in store.iter_objects():
        if version.type not in ("indicator", "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file"):
            continue
        names: set[str] = set()
        for kind, value in object_observables(orjson.loads(version.json)):
            names.update(index.hits(kind, value))
        if names:
            hits[version.id] = sorted(names)
    store.set_meta(META_HITS, orjson.dumps(hits).decode())
    return hits


def warninglist_hits(store: Store) -> dict[str, list[str]]:
    """{object id: [list names]} as last recorded by `flag_store`."""
    raw = store.get_meta(META_HITS)
    return dict(orjson.loads(raw)) if raw else {}


def flagged_ids(store: Store) -> set[str]:
    """Ids to keep out of exports and matching by default."""
    return set(warninglist_hits(store))


_CHECKED_TYPES = frozenset({"indicator", "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file"})


class FlaggingStore:
    """The ingest hook: a Store that checks each newly written indicator or observable against the lists.

    Wrap the store handed to the ingest pipeline, then call `record()`. It uses the
    observables the core already extracted for indexing (`StixObject.index`), so it
    costs a dictionary probe or two per new value and no extra read of the store;
    the lists are read from the store only when a candidate object is written.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._index: WarninglistIndex | None = None
        self.hits: dict[str, list[str]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_objects(self, objects: Sequence[StixObject], *, collection_id: str, source: str,
                    tlp: str | None = None, defer_index: bool = False) -> list[PutResult]:
        results = self._store.put_objects(objects, collection_id=collection_id, source=source, tlp=tlp,
                                          defer_index=defer_index)
        for obj, result in zip(objects, results):
            if result.outcome in (PutOutcome.NEW, PutOutcome.UPDATED) and obj.type in _CHECKED_TYPES \
                    and obj.index.observables:
                if self._index is None:
                    self._index = load_index(self._store)
                names = {n for kind, value in obj.index.observables for n in self._index.hits(kind, value)}
                if names:
                    self.hits[obj.id] = sorted(names)
                else:
                    self.hits.pop(obj.id, None)
        return results

    def record(self) -> dict[str, list[str]]:
        """Add this ingest's hits to the recorded ones; return this ingest's."""
        if self.hits:
            recorded = warninglist_hits(self._store)
            recorded.update(self.hits)
            self._store.set_meta(META_HITS, orjson.dumps(recorded).decode())
        return dict(self.hits)
