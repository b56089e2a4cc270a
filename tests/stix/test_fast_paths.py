"""The shortcuts of parsing and indexing give what the general code gives.

Each shortcut answers the common case (a canonical IPv4 address or domain
name, a one-comparison IPv4 pattern, a STIX 2.1 type name, building the frozen
result types) without the general steps; these tests run both on the same
values, the awkward ones included, and require the same value or the same error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from threatmesh.stix import observables
from threatmesh.stix.index import (
    _PLAIN_STRING_KEYS,
    _SINGLE_IPV4_PATTERN_RE,
    _comparison_observables,
    _walk_refs,
    _walk_top_refs,
    pattern_observables,
)
from threatmesh.stix.model import ObjectIndex, StixObject, _slot_setters, build_object_index, build_stix_object
from threatmesh.stix.parse import _TYPE_RE, parse_object
from threatmesh.stix.vocab import STIX21_TYPES

TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """A function's value, or its error's type and message, for comparing two paths."""
    try:
        return ("value", fn(*args))
    except ValueError as e:
        return ("error", f"{type(e).__name__}: {e}")


# Octets written the ways feeds write them: plain, zero-padded, out of range,
# empty, in non-ASCII digits (which `int()` would read, and an address must not).
_octets = st.one_of(
    st.integers(0, 255).map(str),
    st.integers(0, 999).map(str),
    st.integers(0, 99).map(lambda n: f"0{n}"),
    st.sampled_from(["", "00", "256", "٣", "１", "²", "-1", "+1", " 1", "0x1"]),
)
_ipv4_like = st.builds(
    lambda parts, before, after: before + ".".join(parts) + after,
    st.lists(_octets, min_size=3, max_size=5),
    st.sampled_from(["", "", " ", "\t", "0"]),
    st.sampled_from(["", "", "", " ", "\n", ".", "/32", "/24", "/33", "\\"]),
)
_TRICKY_IPV4 = ["01.2.3.4", "1.2.3.256", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "١.2.3.4", "1.2.3.04", "0.0.0.0",
                "255.255.255.255", "256.0.0.0", "1.2.3", "1.2.3.4.5", "1..3.4", "", "::1", "1.2.3.4/32"]


@given(st.one_of(_ipv4_like, st.text(alphabet="0123456789./ ١", max_size=20)))
@settings(max_examples=2000)
def test_canonical_ipv4_shortcut_agrees_with_ipaddress(value: str) -> None:
    assert _outcome(observables.normalize, "ipv4-addr", value) == _outcome(observables._parsed_ip, value, 4)


@pytest.mark.parametrize("value", _TRICKY_IPV4)
def test_canonical_ipv4_shortcut_on_known_traps(value: str) -> None:
    assert _outcome(observables.normalize, "ipv4-addr", value) == _outcome(observables._parsed_ip, value, 4)


_labels = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.text(alphabet="aZ09-_éü\u0130ß ", min_size=0, max_size=6),
    st.sampled_from(["xn--bcher-kva", "bücher", "EXAMPLE", "-a", "a-", "_dmarc", "a" * 63, "a" * 64, "١"]),
)
_domain_like = st.builds(
    lambda labels, before, after: before + ".".join(labels) + after,
    st.lists(_labels, min_size=1, max_size=5),
    st.sampled_from(["", "", " ", "."]),
    st.sampled_from(["", "", ".", "..", " ", "\n", ". "]),
)
# Lengths around the 253-character limit, where the shortcut's own length test decides.
_LONG_NAMES = [".".join(["a" * 63] * 3) + "." + "b" * n for n in (60, 61, 62, 63)]


@given(_domain_like)
@settings(max_examples=2000)
@example("EVIL.com.")
@example("bücher.de")
@example("xn--bcher-kva.de")
@example("a..b")
@example("a.com\n")
def test_canonical_domain_shortcut_agrees_with_the_general_steps(value: str) -> None:
    for kind, text in (("domain-name", value), ("email-addr", f"x@{value}")):
        with_shortcut = _outcome(observables.normalize, kind, text)
        with mock.patch.object(observables, "_domain", observables._parsed_domain):
            assert with_shortcut == _outcome(observables.normalize, kind, text)


@pytest.mark.parametrize("value", _LONG_NAMES)
def test_canonical_domain_shortcut_at_the_length_limit(value: str) -> None:
    assert _outcome(observables.normalize, "domain-name", value) == _outcome(observables._parsed_domain, value)


def test_domain_shortcut_returns_a_plain_string() -> None:
    class Name(str):
        pass

    assert type(observables.normalize("domain-name", Name("evil.com"))) is str


_SHAPES = [
    "[ipv4-addr:value = '{}']", "[ipv4-addr:value='{}']", "[ipv4-addr:value \t= \u00a0'{}']",
    "[ipv4-addr:value = '{}'] ", " [ipv4-addr:value = '{}']", "[ipv4-addr:value = '{}']\n",
    "[IPV4-addr:value = '{}']", "[ipv4-addr:value != '{}']", "[ipv4-addr:value = '{}']]",
    "[ipv4-addr:value = '{}' OR ipv4-addr:value = '{}']", "[ipv4-addr:value = '{}'] AND [domain-name:value = 'A.b']",
    "[xipv4-addr:value = '{}']", "[ipv6-addr:value = '{}']", "[ipv4-addr:value = '{}\\'']",
    "[ipv4-addr:value = '{}'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'",
    "[network-traffic:dst_ref.value = '{}']", "[ipv4-addr:value = '{}'",
]


@given(st.sampled_from(_SHAPES), st.one_of(_ipv4_like, st.sampled_from(_TRICKY_IPV4)))
@settings(max_examples=2000)
def test_single_ipv4_pattern_shortcut_agrees_with_the_general_path(shape: str, value: str) -> None:
    pattern = shape.replace("{}", value)
    assert pattern_observables(pattern) == _comparison_observables(pattern)


def test_stix21_type_names_pass_the_type_check() -> None:
    """parse_object skips the type-name expression for these names, so each must pass it."""
    for name in STIX21_TYPES:
        assert _TYPE_RE.match(name) and "--" not in name, name


def test_plain_string_keys_are_not_references() -> None:
    """The top-level walk skips the suffix test for these keys, so none may name a reference."""
    assert _PLAIN_STRING_KEYS and not [key for key in _PLAIN_STRING_KEYS if key.endswith(("_ref", "_refs"))]


def test_builders_make_the_same_frozen_objects() -> None:
    raw = {
        "type": "indicator", "spec_version": "2.1", "id": "indicator--87ba1b3f-0a37-5af1-965b-241aab0f76e7",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "indicator x-0",
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.195.94']", "object_marking_refs": [TLP_CLEAR],
        "description": "benchmark object 0",
    }
    parsed = parse_object(raw)
    assert type(parsed) is StixObject and type(parsed.index) is ObjectIndex
    by_init = StixObject(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(StixObject)})
    assert parsed == by_init and repr(parsed) == repr(by_init)
    assert parsed.index == ObjectIndex(
        refs=(), markings=(TLP_CLEAR,),
        text=(("name", "indicator x-0"), ("description", "benchmark object 0"),
              ("pattern", "[ipv4-addr:value = '198.51.195.94']")),
        observables=(("ipv4-addr", "198.51.195.94"),),
    )
    assert parsed.tlp == "clear" and parsed.version == "2024-01-01T00:00:00.000000Z" and parsed.warnings == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.tlp = "red"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.index.refs = ()  # type: ignore[misc]
    assert dataclasses.replace(parsed, tlp="red").tlp == "red" and parsed.tlp == "clear"
    index = build_object_index((("a_ref", "x--1"),), ("m",), (("name", "n"),), (("url", "u"),))
    assert index == ObjectIndex(refs=(("a_ref", "x--1"),), markings=("m",), text=(("name", "n"),),
                                observables=(("url", "u"),))
    built = build_stix_object("x--1", "x", "2.1", "", {}, b"{}", None, False, None, None, (), index)
    assert built == StixObject(id="x--1", type="x", spec_version="2.1", version="", data={}, json=b"{}", index=index)


def test_slot_setters_refuse_a_field_list_out_of_step_with_the_class() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Pair:
        a: int
        b: int

    assert len(_slot_setters(Pair, "a b")) == 2
    for names in ("b a", "a", "a b c"):
        with pytest.raises(TypeError):
            _slot_setters(Pair, names)


def test_pattern_shortcut_on_real_indicators(corpora_dir: Path) -> None:
    """Unit 42's indicators (many single IPv4 comparisons) index the same by either path."""
    patterns = [
        o["pattern"]
        for path in sorted((corpora_dir / "stix" / "unit42-playbooks" / "playbook_json").glob("*.json"))
        for o in json.loads(path.read_text())["objects"]
        if o.get("type") == "indicator" and isinstance(o.get("pattern"), str)
    ]
    assert len(patterns) > 9000
    assert sum(_SINGLE_IPV4_PATTERN_RE.match(p) is not None for p in patterns) > 100  # the shortcut is exercised
    for pattern in patterns:
        assert pattern_observables(pattern) == _comparison_observables(pattern), pattern


_json_keys = st.sampled_from(["type", "id", "name", "value", "created_by_ref", "x_a_ref", "x_b_refs", "object_refs",
                              "object_marking_refs", "granular_markings", "marking_ref", "external_references",
                              "kill_chain_phases", "extensions", "x_ref_not", "_ref", "_refs"])
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["identity--1", "x", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_json_keys, inner, max_size=4)),
    max_leaves=12,
)


@given(st.dictionaries(_json_keys, _json_values, max_size=8))
@settings(max_examples=1000)
def test_top_level_walk_agrees_with_the_general_walk(obj: dict[str, Any]) -> None:
    fast: list[tuple[str, str]] = []
    general: list[tuple[str, str]] = []
    _walk_top_refs(obj, fast)
    _walk_refs(obj, "", general)
    assert fast == general


def test_top_level_walk_on_real_objects(corpora_dir: Path) -> None:
    paths = [corpora_dir / "attack" / "enterprise-attack-18.1-stix21-converted.json",
             *sorted((corpora_dir / "stix" / "oasis-cti-documentation").rglob("*.json"))]
    checked = 0
    for path in paths:
        data = json.loads(path.read_text())
        for obj in data.get("objects", []) if isinstance(data, dict) else []:
            fast: list[tuple[str, str]] = []
            general: list[tuple[str, str]] = []
            _walk_top_refs(obj, fast)
            _walk_refs(obj, "", general)
            assert fast == general, obj.get("id")
            checked += 1
    assert checked > 24_000
