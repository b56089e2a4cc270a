"""threatmesh's STIX pattern verdicts against the OASIS reference matcher, `stix2-matcher`.

Hypothesis draws patterns (every comparison operator, NOT, AND/OR inside
brackets, the observation operators AND/OR/FOLLOWEDBY, WITHIN, REPEATS,
START/STOP, list indexes and `_ref` paths) and STIX 2.1 observed-data with
its SCOs; both engines must give the same verdict.

Where the reference is wrong, and the explicit filters that leave those cases out
(`_reference_is_wrong_here`); every other disagreement fails the test:

1. The reference raises instead of answering false. It raises
   MatcherException when a JSON string compared with a `t'...'` literal is not
   a timestamp (or has a lower-case 't'/'z', which RFC 3339 allows), when an
   ISSUBSET/ISSUPERSET value is not an IPv4 address or CIDR (so every IPv6
   address, and '/0'), and binascii.Error on a `_hex` property that is not hex.
   §9.7 says a comparison of incompatible values is false.
2. `IN` uses Python's `value in set`: JSON `true` is "in" `(1)` and `false` in
   `(0)` (Python's True == 1), while its own `=` says true != 1; and a bytes
   value is never "in" a set of strings while `=` compares them as bytes. §9.6
   defines IN as equality with a member, so threatmesh uses `=` semantics.
3. `LIKE` is translated to a regex without DOTALL and anchored with `$`:
   '%' and '_' do not match a newline, and 'abc\\n' is LIKE 'abc'. SQL LIKE,
   which §9.6 names, matches any character and the whole string.
4. ISSUBSET/ISSUPERSET read addresses with `socket.inet_aton`, which accepts
   '10.1' (as 10.0.0.1) and '010.0.0.1' (octal, 8.0.0.1); STIX `ipv4-addr`
   values are dotted-quad decimal, which threatmesh requires.

Not generated: `EXISTS` (the reference has no handler for it and corrupts its
stack), SDO types in paths (the reference never matches them in 2.1 mode).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from threatmesh.match.pattern_model import STAR, CompAnd, CompOr, Comparison, Leaf, ObsOp, Repeats, StartStop, Within
from threatmesh.match.pattern_values import select
from threatmesh.match.patterns import compile_pattern, observations_from_stix

stix2matcher = pytest.importorskip("stix2matcher.matcher", reason="stix2-matcher (the judge) is not installed")

# -- observations ------------------------------------------------------------------------

STRINGS = ["evil.example", "Evil.Example", "a%b", "x_y", "10.0.0.1", "10.0.0.0/8", "192.168.1.7",
           "192.168.1.0/24", "", "line\nbreak", "caf\u00e9", "cafe\u0301", "2020-01-01T00:00:01Z",
           "2001:db8::1", "10.1", "abc"]
NUMBERS = [0, 1, 2, 80, 443, -1, 1.0, 2.5]
TIMES = [f"2020-01-01T00:00:{s:02d}Z" for s in (0, 1, 2, 5, 10, 30)]
HEX = ["00ff", "6162", "zz", ""]


def _ids(prefix: str, n: int) -> str:
    return f"{prefix}--00000000-0000-4000-8000-{n:012d}"


@st.composite
def observation(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    scos: list[dict[str, Any]] = []
    base = n * 10
    for k in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["ipv4-addr", "domain-name", "file", "network-traffic", "x-thing"]))
        sid = _ids(kind, base + k)
        if kind in ("ipv4-addr", "domain-name"):
            scos.append({"type": kind, "id": sid, "value": draw(st.sampled_from(STRINGS))})
        elif kind == "file":
            obj: dict[str, Any] = {"type": "file", "id": sid, "name": draw(st.sampled_from(STRINGS))}
            if draw(st.booleans()):
                obj["size"] = draw(st.sampled_from(NUMBERS + [True]))
            if draw(st.booleans()):
                obj["hashes"] = {"MD5": draw(st.sampled_from(["0" * 32, "a" * 32]))}
            scos.append(obj)
        elif kind == "network-traffic":
            ip = {"type": "ipv4-addr", "id": _ids("ipv4-addr", base + 5 + k), "value": draw(st.sampled_from(STRINGS))}
            scos.append(ip)
            scos.append({"type": "network-traffic", "id": sid, "dst_ref": ip["id"],
                         "dst_port": draw(st.sampled_from(NUMBERS)),
                         "protocols": draw(st.lists(st.sampled_from(["tcp", "udp", "dns"]), min_size=1, max_size=2))})
        else:
            obj = {"type": "x-thing", "id": sid}
            for key, pool in (("n", NUMBERS + [True, False, "1"]), ("s", STRINGS), ("when", TIMES + ["abc"]),
                              ("tags", None), ("payload_hex", HEX)):
                if draw(st.booleans()):
                    obj[key] = (draw(st.lists(st.sampled_from(STRINGS), max_size=3)) if pool is None
                                else draw(st.sampled_from(pool)))
            scos.append(obj)
    first = draw(st.sampled_from(range(len(TIMES))))
    last = draw(st.sampled_from(range(first, len(TIMES))))
    od = {"type": "observed-data", "spec_version": "2.1", "id": _ids("observed-data", n),
          "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
          "first_observed": TIMES[first], "last_observed": TIMES[last],
          "number_observed": draw(st.integers(1, 3)), "object_refs": [s["id"] for s in scos]}
    return [od, *scos]


# -- patterns --------------------------------------------------------------------------------

PATHS: list[tuple[str, tuple[Any, ...]]] = [
    ("ipv4-addr", ("value",)), ("domain-name", ("value",)), ("file", ("name",)), ("file", ("size",)),
    ("file", ("hashes", "MD5")), ("network-traffic", ("dst_port",)), ("network-traffic", ("dst_ref", "value")),
    ("network-traffic", ("protocols", STAR)), ("network-traffic", ("protocols", 0)), ("x-thing", ("n",)),
    ("x-thing", ("s",)), ("x-thing", ("when",)), ("x-thing", ("tags", STAR)), ("x-thing", ("tags", 1)),
    ("x-thing", ("payload_hex",)),
]


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, tuple) and value[0] == "t":
        return f"t'{value[1]}'"
    return _quote(value)


LITERALS = STRINGS + NUMBERS + [True, False, b"\x00\xff", b"ab", ("t", "2020-01-01T00:00:01Z")]
LIKES = ["evil%", "%.example", "_vil.example", "a%b", "x_y", "%", "line%", "caf\u00e9", "10.0.0.%", "%\n%"]
REGEXES = ["^evil", "example$", "[0-9]+", "^$", "\\.", "caf\u00e9", "b.*k"]
SUBNETS = ["10.0.0.0/8", "192.168.1.0/24", "10.0.0.1/32", "0.0.0.0/1"]
SUPER_VALUES = ["10.0.0.1", "192.168.1.7", "10.0.0.0/16"]


@st.composite
def comparison(draw: st.DrawFn, object_type: str | None = None, seen: tuple[Any, ...] = ()) -> str:
    obj, path = draw(st.sampled_from([p for p in PATHS if object_type in (None, p[0])]))
    text = obj + ":" + "".join(
        (f"[{'*' if s == STAR else s}]" if s == STAR or isinstance(s, int) else ("" if i == 0 else ".") + s)
        for i, s in enumerate(path))
    # Equality-like operators are drawn more often: they are what make observations match.
    op = draw(st.sampled_from(["=", "=", "=", "!=", "<", "<=", ">", ">=", "IN", "IN", "LIKE", "LIKE", "MATCHES",
                               "MATCHES", "ISSUBSET", "ISSUPERSET"]))
    neg = "NOT " if draw(st.integers(0, 4)) == 0 else ""
    if op in ("=", "!=", "<", "<=", ">", ">="):
        # Half the time a value the observations hold, so that comparisons do match.
        value = draw(st.sampled_from(seen)) if seen and draw(st.booleans()) else draw(st.sampled_from(LITERALS))
        if op not in ("=", "!=") and isinstance(value, bool):
            value = 1  # booleans are not orderable literals in the grammar
        rhs = _literal(value)
    elif op == "IN":
        kind = draw(st.sampled_from(["s", "n", "b"]))
        pool = STRINGS if kind == "s" else NUMBERS if kind == "n" else [True, False]
        members = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        same_kind = [v for v in seen if isinstance(v, type(pool[0])) and type(v) is not bool or pool[0] is True
                     and type(v) is bool]
        if same_kind and draw(st.booleans()):
            members.append(draw(st.sampled_from(same_kind)))
        rhs = "(" + ", ".join(_literal(v) for v in members) + ")"
    elif op == "LIKE":
        rhs = _quote(draw(st.sampled_from(LIKES)))
    elif op == "MATCHES":
        rhs = _quote(draw(st.sampled_from(REGEXES)))
    elif op == "ISSUBSET":
        rhs = _quote(draw(st.sampled_from(SUBNETS)))
    else:
        rhs = _quote(draw(st.sampled_from(SUPER_VALUES)))
    return f"{text} {neg}{op} {rhs}"


@st.composite
def comparison_expression(draw: st.DrawFn, depth: int = 0, seen: tuple[Any, ...] = ()) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) != 0:
        return draw(comparison(seen=seen))
    left = draw(comparison_expression(depth + 1, seen))
    right = draw(comparison_expression(depth + 1, seen))
    op = draw(st.sampled_from(["AND", "OR"]))
    if op == "AND" and draw(st.booleans()):
        # ANDs across types never match; also draw same-type ones, which can.
        obj = draw(st.sampled_from(sorted({p[0] for p in PATHS})))
        left, right = draw(comparison(obj, seen)), draw(comparison(obj, seen))
    return f"({left} {op} {right})"


@st.composite
def observation_expression(draw: st.DrawFn, depth: int = 0, seen: tuple[Any, ...] = ()) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        expr = f"[{draw(comparison_expression(seen=seen))}]"
    else:
        op = draw(st.sampled_from(["AND", "OR", "FOLLOWEDBY"]))
        left, right = draw(observation_expression(depth + 1, seen)), draw(observation_expression(depth + 1, seen))
        expr = f"({left} {op} {right})"
    qualifier = draw(st.integers(0, 5))
    if qualifier == 0:
        expr += f" WITHIN {draw(st.sampled_from(['1', '2.5', '5', '30']))} SECONDS"
    elif qualifier == 1:
        expr += f" REPEATS {draw(st.integers(1, 3))} TIMES"
    elif qualifier == 2:
        start, stop = sorted(draw(st.lists(st.sampled_from(TIMES), min_size=2, max_size=2)))
        expr += f" START t'{start}' STOP t'{stop}'"
    return expr


def _scalars(objects: list[dict[str, Any]]) -> tuple[Any, ...]:
    out: list[Any] = []
    for o in objects:
        if o["type"] == "observed-data":
            continue
        for key, v in o.items():
            if key in ("type", "id", "dst_ref", "payload_hex"):
                continue
            if isinstance(v, (str, int, float)):
                out.append(v)
            elif isinstance(v, list):
                out.extend(x for x in v if isinstance(x, str))
            elif isinstance(v, dict):
                out.extend(x for x in v.values() if isinstance(x, str))
    return tuple(dict.fromkeys(out))


# -- the explicit filters ------------------------------------------------------------------------


def _walk(node: Any) -> Any:
    if isinstance(node, Comparison):
        yield node
    elif isinstance(node, (CompAnd, CompOr)):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, Leaf):
        yield from _walk(node.expr)
    elif isinstance(node, ObsOp):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, (Within, Repeats, StartStop)):
        yield from _walk(node.expr)


def _inet_aton_only(text: Any) -> bool:
    """Accepted by inet_aton, but not a dotted-quad decimal address (quirk 4)."""
    if not isinstance(text, str):
        return False
    address = text.split("/", 1)[0]
    try:
        socket.inet_aton(address)
    except OSError:
        return False
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return True
    return False


def _selected(c: Comparison, objects: list[dict[str, Any]]) -> list[Any]:
    """The values the comparison's path selects in any observation (refs resolved within it)."""
    out: list[Any] = []
    for obs in observations_from_stix(objects):
        for root in obs.objects.values():
            if root.get("type") == c.object_type:
                out.extend(select(root, c.path, dict(obs.objects)))
    return out


def _reference_is_wrong_here(pattern: str, objects: list[dict[str, Any]]) -> bool:
    for c in _walk(compile_pattern(pattern).parsed.root):
        values = _selected(c, objects)
        if c.op == "IN" and any(type(v) is bool for v in values) and \
                any(type(m) in (int, float) and m in (0, 1) for m in c.literal):
            return True  # quirk 2: True == 1 in Python sets
        if c.op == "IN" and any(type(v) in (int, float) and v in (0, 1) for v in values) and \
                any(type(m) is bool for m in c.literal):
            return True  # quirk 2, the other way round: 0 == False in Python sets
        if c.op == "IN" and any(type(v) is bytes for v in values) and any(type(m) is str for m in c.literal):
            return True  # quirk 2: bytes never "in" a set of strings
        if c.op == "LIKE" and any(isinstance(v, str) and "\n" in v for v in values):
            return True  # quirk 3
        if c.op in ("ISSUBSET", "ISSUPERSET") and any(_inet_aton_only(v) for v in values):
            return True  # quirk 4
    return False


def _reference_verdict(pattern: str, bundle: dict[str, Any]) -> bool | None:
    try:
        return bool(stix2matcher.match(pattern, [bundle], stix_version="2.1"))
    except Exception:  # quirk 1: the reference raises where the spec says "false"
        return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Hypothesis's own filter_too_much health check stays on: it fails the test if the
# explicit filters above reject most drawn examples.
@given(st.data())
def test_verdicts_equal_the_reference_matcher(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 4), label="observations")
    objects = [o for n in range(count) for o in data.draw(observation(n), label=f"observation {n}")]
    pattern = data.draw(observation_expression(seen=_scalars(objects)), label="pattern")
    bundle = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objects}
    assume(not _reference_is_wrong_here(pattern, objects))
    expected = _reference_verdict(pattern, bundle)
    assume(expected is not None)
    got = compile_pattern(pattern).matches(observations_from_stix(objects))
    assert got == expected, f"pattern {pattern!r}: threatmesh {got}, stix2-matcher {expected}"

