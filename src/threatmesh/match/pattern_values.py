"""Comparison semantics of STIX 2.1 patterns: object paths and operators (§9.6, §9.7).

Each `Comparison` is compiled once into a closure `test(root, objects) -> bool`
that says whether one cyber-observable object (the root) satisfies it within
its observation; the evaluator in `patterns.py` combines them.

The rules, and why:
- A path selects every value it reaches; `[*]` fans out over a list, `[n]`
  takes one element, a `_ref` / `_refs` step follows references to objects
  of the same observation (unresolvable references select nothing). The
  comparison holds if it holds for one selected value; a path that selects
  nothing makes it false, with or without NOT (§9.6: "the Comparison
  Expression MUST evaluate to false" when the property is absent).
- Properties named `*_hex` / `*_bin` hold binary data and are compared as
  bytes; a string compares with bytes when all its code points are < 256.
- Operands of types that cannot be compared are unequal (so `!=` holds) and
  unordered (so every order comparison, NOT or not, is false): that is what
  the OASIS reference matcher does, and the spec's "MUST evaluate to false".
- `IN` is equality with any member (so a JSON `true` is not in `(1)`).
- `LIKE` is SQL LIKE over the whole string (`%` any run, `_` one character,
  newlines included); `MATCHES` is a regular-expression search (PCRE in the
  spec; Python's `re` agrees on the common subset). Both compare NFC forms.
- `ISSUBSET` / `ISSUPERSET` compare IPv4 or IPv6 addresses and CIDR ranges;
  a value that is not one makes the comparison false.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable, Iterable

from threatmesh.match.pattern_model import STAR, Comparison, PatternError, PathStep, Timestamp
from threatmesh.stix.timestamps import timestamp_to_micros

Objects = dict[str, Any]  # the objects of one observation, by id ('0', '1', ... or SCO ids)
RootTest = Callable[[dict[str, Any], Objects], bool]

_NUMBER = (int, float)


def _number(value: Any) -> bool:
    return type(value) in _NUMBER  # bool is an int subclass, and not a number here


def _latin1(text: str) -> bytes | None:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


@lru_cache(maxsize=4096)
def _json_timestamp(text: str) -> Timestamp | None:
    try:
        return Timestamp(timestamp_to_micros(text))
    except ValueError:
        return None


def _coerce(value: Any, literal: Any) -> Any:
    # A timestamp literal compares with JSON strings that are timestamps.
    if type(literal) is Timestamp and type(value) is str:
        return _json_timestamp(value)
    return value


def values_equal(value: Any, literal: Any) -> bool:
    """Equality of a selected JSON value with a pattern literal (§9.7: same type, or int/float)."""
    value = _coerce(value, literal)
    tv, tl = type(value), type(literal)
    if tv is tl:
        return bool(value == literal)
    if tv in _NUMBER and tl in _NUMBER:
        return bool(value == literal)
    if tv is bytes and tl is str:
        return _latin1(literal) == value
    if tv is str and tl is bytes:
        return _latin1(value) == literal
    return False


def compare(value: Any, literal: Any) -> int | None:
    """-1, 0 or 1; None when the two cannot be ordered."""
    value = _coerce(value, literal)
    tv, tl = type(value), type(literal)
    if tv is bool or tl is bool or value is None:
        return None
    if tv is tl and tv in (int, float, str, bytes, Timestamp):
        pass
    elif tv in _NUMBER and tl in _NUMBER:
        pass
    elif tv is bytes and tl is str:
        literal = _latin1(literal)
        if literal is None:
            return -2  # ordered types, but the string cannot be bytes: false, and NOT makes it true
    elif tv is str and tl is bytes:
        value = _latin1(value)
        if value is None:
            return -2
    else:
        return None
    return (value > literal) - (value < literal)


def like_regex(like: str) -> re.Pattern[str]:
    parts = []
    for char in unicodedata.normalize("NFC", like):
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(parts) + r"\Z", re.S)


def _dotted_quad(text: str) -> int | None:
    """A plain IPv4 address as `ipaddress` reads it (no leading zeros), as an int; None otherwise."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    try:
        a, b, c, d = int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    # Written back the same: no sign, space, leading zero or non-ASCII digit.
    if 0 <= a <= 255 and 0 <= b <= 255 and 0 <= c <= 255 and 0 <= d <= 255 and f"{a}.{b}.{c}.{d}" == text:
        return a << 24 | b << 16 | c << 8 | d
    return None


@lru_cache(maxsize=65536)
def _parse_network(text: str) -> tuple[int, int, int] | None:
    if "/" not in text and ":" not in text:
        quad = _dotted_quad(text)
        if quad is not None:
            return 4, quad, 32
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return network.version, int(network.network_address), network.prefixlen


def _network(text: Any) -> tuple[int, int, int] | None:
    """(IP version, network as an int, prefix length); None for what is not an address or range."""
    # Cached: logs repeat addresses, and parsing with `ipaddress` is the costly part.
    return _parse_network(text) if type(text) is str else None


def _subnet_of(inner: tuple[int, int, int] | None, outer: tuple[int, int, int] | None) -> bool:
    if inner is None or outer is None or inner[0] != outer[0] or inner[2] < outer[2]:
        return False
    shift = (32 if outer[0] == 4 else 128) - outer[2]
    return inner[1] >> shift == outer[1] >> shift


# -- paths ----------------------------------------------------------------------------


def _binary(key: str, value: Any) -> Any:
    # §3.1: `_hex` and `_bin` properties carry bytes; undecodable ones select nothing.
    try:
        if key.endswith("_hex"):
            return binascii.a2b_hex(value)
        if key.endswith("_bin"):
            return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return _NOTHING
    return value


_NOTHING = object()


def select(root: dict[str, Any], path: tuple[PathStep, ...], objects: Objects) -> list[Any]:
    """Every value `path` reaches from `root`, following references inside `objects`."""
    current: list[Any] = [root]
    for step in path:
        nxt: list[Any] = []
        if step == STAR:
            for item in current:
                if type(item) is list:
                    nxt.extend(item)
        elif type(step) is int:
            for item in current:
                if type(item) is list and 0 <= step < len(item):
                    nxt.append(item[step])
        else:
            key = str(step)
            suffixed = key.endswith(("_hex", "_bin"))
            for item in current:
                if type(item) is dict and key in item:
                    value = item[key]
                    if suffixed:
                        value = _binary(key, value)
                        if value is _NOTHING:
                            continue
                    nxt.append(value)
            if key.endswith("_ref"):
                nxt = [objects[ref] for ref in nxt if type(ref) is str and ref in objects]
            elif key.endswith("_refs"):
                # A list of references becomes the list of the objects it resolves to;
                # a following [n] or [*] steps into it.
                nxt = [[objects[r] for r in refs if type(r) is str and r in objects]
                       for refs in nxt if type(refs) is list]
                nxt = [resolved for resolved in nxt if resolved]
        if not nxt:
            return nxt
        current = nxt
    return current


# -- operators --------------------------------------------------------------------------


def value_predicate(comparison: Comparison) -> Callable[[Any], bool]:
    """The test one selected value must pass, NOT included."""
    op, literal, negated = comparison.op, comparison.literal, comparison.negated

    def negate(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
        return (lambda v: not test(v)) if negated else test

    if op in ("=", "!="):
        want = op == "="
        return negate(lambda v: values_equal(v, literal) is want)
    if op in ("<", "<=", ">", ">="):
        check: Callable[[int], bool] = {
            "<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0,
        }[op]

        def order(v: Any) -> bool:
            c = compare(v, literal)
            if c is None:
                return False  # unordered types: false whatever the NOT
            if c == -2:
                return negated
            return check(c) is not negated

        return order
    if op == "IN":
        members = tuple(literal)
        return negate(lambda v: any(values_equal(v, m) for m in members))
    if op == "LIKE":
        regex = like_regex(literal)
        return negate(lambda v: _text_search(v, regex, full=True))
    if op == "MATCHES":
        try:
            text_re = re.compile(unicodedata.normalize("NFC", literal))
            latin = _latin1(text_re.pattern)
            bytes_re = re.compile(latin) if latin is not None else None
        except re.error as exc:
            raise PatternError(f"invalid regular expression {literal!r}: {exc}") from None

        def matches(v: Any) -> bool:
            if type(v) is str:
                return text_re.search(unicodedata.normalize("NFC", v)) is not None
            if type(v) is bytes and bytes_re is not None:
                return bytes_re.search(v) is not None
            return False

        return negate(matches)
    if op == "ISSUBSET":
        outer = _network(literal)
        return negate(lambda v: _subnet_of(_network(v), outer))
    if op == "ISSUPERSET":
        inner = _network(literal)
        return negate(lambda v: _subnet_of(inner, _network(v)))
    if op == "EXISTS":
        return lambda v: not negated
    raise PatternError(f"unsupported operator {op}")


def _text_search(value: Any, regex: re.Pattern[str], *, full: bool) -> bool:
    if type(value) is bytes:
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if type(value) is not str:
        return False
    return regex.match(unicodedata.normalize("NFC", value)) is not None


def compile_comparison(comparison: Comparison) -> RootTest:
    """`test(root, objects)`: does this root object satisfy the comparison?"""
    object_type = comparison.object_type
    path = comparison.path
    predicate = value_predicate(comparison)
    if comparison.op == "EXISTS":
        negated = comparison.negated

        def exists(root: dict[str, Any], objects: Objects) -> bool:
            return root.get("type") == object_type and bool(select(root, path, objects)) is not negated

        return exists
    if len(path) == 1 and type(path[0]) is str and not path[0].endswith(("_ref", "_refs", "_hex", "_bin")):
        key = path[0]

        # The common case (`domain-name:value = ...`), without the general walk.
        def direct(root: dict[str, Any], objects: Objects) -> bool:
            return root.get("type") == object_type and key in root and predicate(root[key])

        return direct

    def general(root: dict[str, Any], objects: Objects) -> bool:
        if root.get("type") != object_type:
            return False
        return any(predicate(v) for v in select(root, path, objects))

    return general


def object_types(comparisons: Iterable[Comparison]) -> frozenset[str]:
    return frozenset(c.object_type for c in comparisons)
