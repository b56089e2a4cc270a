"""What a store indexes about one object: refs, markings, text and observables.

Called on every ingested object, so it walks each object once and reads
indicator patterns with a regular expression rather than the full grammar:
an index may miss an exotic comparison, the matcher (which uses the grammar)
may not.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from threatmesh.stix.model import ObjectIndex, build_object_index
from threatmesh.stix.observables import CANONICAL_IPV4, normalize, normalize_kind

_TEXT_FIELDS = ("name", "description", "aliases", "x_mitre_aliases", "value", "pattern")
_VALUE_KINDS = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"})
_HASHED_TYPES = frozenset({"file", "artifact", "x509-certificate"})
# Spec-defined list types that hold no references (§2.5, §2.6); not walking
# them halves the cost of indexing ATT&CK, whose objects carry long ones.
_NO_REFS_INSIDE = frozenset({"external_references", "kill_chain_phases"})
# Marking references are indexed as `markings`; repeating them as refs would
# double the rows a store writes for every marked object.
_MARKING_KEYS = frozenset({"object_marking_refs", "granular_markings"})
# String properties of STIX 2.1 objects that are not references. Nearly every
# top-level string is one of these, and one set lookup is cheaper than the
# suffix test it replaces (none of them ends in '_ref': a test checks).
_PLAIN_STRING_KEYS = frozenset({
    "type", "spec_version", "id", "created", "modified", "name", "description", "lang",
    "pattern", "pattern_type", "pattern_version", "valid_from", "valid_until",
    "relationship_type", "first_seen", "last_seen", "value", "identity_class", "published",
})

# `<type>:value = '...'` and `<type>:hashes.<name> = '...'` (name bare or quoted).
# Only '=' is taken: other operators do not name one exact value.
_PATTERN_EQ_RE = re.compile(
    r"([a-z0-9-]+):(value|hashes\.(?:'[^']+'|[A-Za-z0-9_-]+))\s*=\s*'((?:[^'\\]|\\.)*)'"
)
_ESCAPE_RE = re.compile(r"\\(.)")
# The pattern of most indicators a node receives: one comparison with an IPv4
# address already in canonical form. Matching it whole gives the same single
# observable as the general path (whose findall finds exactly this comparison,
# and whose normalize returns a canonical address unchanged) at a quarter of the cost.
_SINGLE_IPV4_PATTERN_RE = re.compile(r"\[ipv4-addr:value\s*=\s*'(" + CANONICAL_IPV4 + r")'\]\Z")


def _walk_refs(value: dict[str, Any], path: str, out: list[tuple[str, str]]) -> None:
    # Concrete dict/list checks, not the Mapping ABC: parsed JSON holds only
    # these, and the ABC check made this walk the slowest step of ingest.
    for key, item in value.items():
        if not path and key in _MARKING_KEYS:
            continue
        cls = type(item)
        if cls is str:
            if key.endswith("_ref"):
                out.append((f"{path}.{key}" if path else key, item))
        elif cls is list:
            if key.endswith("_refs"):
                sub = f"{path}.{key}" if path else key
                out.extend((sub, ref) for ref in item if type(ref) is str)
            elif key not in _NO_REFS_INSIDE:
                # List positions are left out of the path: 'granular_markings.marking_ref'
                # is what a query asks for, whatever the position.
                for element in item:
                    if type(element) is dict:
                        _walk_refs(element, f"{path}.{key}" if path else key, out)
        elif cls is dict:
            _walk_refs(item, f"{path}.{key}" if path else key, out)


def _walk_top_refs(obj: dict[str, Any], out: list[tuple[str, str]]) -> None:
    """The same as `_walk_refs(obj, "", out)`, with the top level's tests taken out of the loop's common case.

    Every object pays this walk. At the top the path is the bare key, and the
    marking keys need skipping only where they hold a list or a dict: neither
    ends in '_ref', so a string under them is never taken anyway.
    """
    for key, item in obj.items():
        cls = type(item)
        if cls is str:
            if key not in _PLAIN_STRING_KEYS and key.endswith("_ref"):
                out.append((key, item))
        elif cls is list:
            if key in _MARKING_KEYS:
                continue
            if key.endswith("_refs"):
                out.extend([(key, ref) for ref in item if type(ref) is str])
            elif key not in _NO_REFS_INSIDE:
                for element in item:
                    if type(element) is dict:
                        _walk_refs(element, key, out)
        elif cls is dict:
            if key not in _MARKING_KEYS:
                _walk_refs(item, key, out)


def _markings(obj: Mapping[str, Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    refs = obj.get("object_marking_refs")
    if isinstance(refs, list):
        for ref in refs:
            if isinstance(ref, str):
                seen[ref] = None
    granular = obj.get("granular_markings")
    if isinstance(granular, list):
        for marking in granular:
            if isinstance(marking, Mapping) and isinstance(marking.get("marking_ref"), str):
                seen[marking["marking_ref"]] = None
    return tuple(seen)


def _text(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if type(value) is str:
            if value:
                out.append((name, value))
        elif type(value) is list:
            out.extend((name, v) for v in value if type(v) is str and v)
    refs = obj.get("external_references")
    if type(refs) is list:
        for ref in refs:
            if type(ref) is dict:
                external_id = ref.get("external_id")
                if type(external_id) is str:
                    out.append(("external_id", external_id))
    return out


def _add_observable(kind: str, value: str, out: dict[tuple[str, str], None]) -> None:
    try:
        out[(normalize_kind(kind), normalize(kind, value))] = None
    except ValueError:
        pass  # an index entry is an aid: a value that does not normalise is simply not indexed


def pattern_observables(pattern: str) -> list[tuple[str, str]]:
    """(kind, canonical value) of the equality comparisons in a STIX pattern."""
    single = _SINGLE_IPV4_PATTERN_RE.match(pattern)
    if single is not None:
        return [("ipv4-addr", single.group(1))]
    return _comparison_observables(pattern)


def _comparison_observables(pattern: str) -> list[tuple[str, str]]:
    out: dict[tuple[str, str], None] = {}
    for obj_type, prop, raw in _PATTERN_EQ_RE.findall(pattern):
        value = _ESCAPE_RE.sub(r"\1", raw) if "\\" in raw else raw
        if prop == "value":
            if obj_type in _VALUE_KINDS:
                _add_observable(obj_type, value, out)
        else:
            _add_observable(f"{obj_type}:{prop}", value, out)
    return list(out)


def _observables(obj: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    obj_type = obj.get("type")
    if obj_type == "indicator":
        pattern = obj.get("pattern")
        if isinstance(pattern, str) and obj.get("pattern_type", "stix") == "stix":
            # pattern_observables already drops repeated pairs.
            return tuple(pattern_observables(pattern))
        return ()
    out: dict[tuple[str, str], None] = {}
    if obj_type in _VALUE_KINDS and isinstance(obj.get("value"), str):
        _add_observable(str(obj_type), obj["value"], out)
    elif obj_type in _HASHED_TYPES and isinstance(obj.get("hashes"), Mapping):
        for name, digest in obj["hashes"].items():
            if isinstance(digest, str):
                _add_observable(f"{obj_type}:hashes.{name}", digest, out)
    return tuple(out)


def text_and_observables(obj: Mapping[str, Any]) -> tuple[list[tuple[str, str]], tuple[tuple[str, str], ...]]:
    """The `text` and `observables` of `index_object(obj)`, without its refs and markings."""
    return _text(obj), _observables(obj)


def index_object(obj: Mapping[str, Any]) -> ObjectIndex:
    """The refs, markings, text and observables of one STIX object (see ObjectIndex)."""
    refs: list[tuple[str, str]] = []
    _walk_top_refs(obj if type(obj) is dict else dict(obj), refs)
    return build_object_index(tuple(refs), _markings(obj), tuple(_text(obj)), _observables(obj))
