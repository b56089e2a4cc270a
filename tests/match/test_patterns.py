"""STIX pattern engine: exact keys, the spec cases the reference gets wrong, LogEvents, errors."""

from __future__ import annotations

from typing import Any

import pytest

from threatmesh.match.patterns import PatternError, compile_pattern
from threatmesh.match.protocol import ROLE_DOMAIN, ROLE_DST_IP, ROLE_DST_PORT, ROLE_SRC_IP, CompiledPattern, LogEvent

T0 = 1_700_000_000_000_000  # µs


def obs(*objects: dict[str, Any], first: str = "2020-01-01T00:00:00Z", last: str | None = None,
        n: int = 1) -> dict[str, Any]:
    return {"first_observed": first, "last_observed": last or first, "number_observed": n,
            "objects": {str(i): o for i, o in enumerate(objects)}}


def event(line: int, seconds: int, *values: tuple[str, str]) -> LogEvent:
    return LogEvent("conn.log", line, 0, T0 + seconds * 1_000_000, tuple(values), "zeek:conn")


@pytest.mark.parametrize("pattern, keys", [
    ("[ipv4-addr:value = '10.0.0.1']", {("ipv4-addr", "10.0.0.1")}),
    ("[domain-name:value = 'EVIL.com.' OR url:value = 'HTTP://Evil.com:80/a']",
     {("domain-name", "evil.com"), ("url", "http://evil.com/a")}),
    ("[file:hashes.'SHA-256' = '" + "A" * 64 + "'] OR [file:hashes.md5 IN ('" + "0" * 32 + "')]",
     {("file:hashes.SHA-256", "a" * 64), ("file:hashes.MD5", "0" * 32)}),
    ("[ipv4-addr:value = '10.0.0.0/8']", {("ipv4-addr", "10.0.0.0/8")}),
    ("[ipv4-addr:value = '10.0.0.1' AND ipv4-addr:value = '10.0.0.2']", None),  # AND: not a disjunction
    ("[ipv4-addr:value != '10.0.0.1']", None),
    ("[ipv4-addr:value NOT = '10.0.0.1']", None),
    ("[domain-name:value LIKE '%.evil.com']", None),
    ("[ipv4-addr:value = '10.0.0.1'] AND [domain-name:value = 'a.com']", None),
    ("[ipv4-addr:value = '10.0.0.1'] WITHIN 5 SECONDS", None),
    ("[network-traffic:dst_port = 443]", None),  # not an indexable kind
    ("[ipv4-addr:value = 'not an address']", None),  # not indexable: evaluated instead
])
def test_exact_keys(pattern: str, keys: set[tuple[str, str]] | None) -> None:
    got = compile_pattern(pattern).exact_keys()
    assert (None if got is None else set(got)) == keys


def test_implements_the_protocol() -> None:
    assert isinstance(compile_pattern("[ipv4-addr:value = '1.2.3.4']"), CompiledPattern)


@pytest.mark.parametrize("pattern", ["", "[ipv4-addr:value = ]", "ipv4-addr:value = '1'", "[a:b = 1] REPEATS 0 TIMES",
                                     "[a:b IN ('x', 1)]", "[a:b MATCHES '(']"])
def test_invalid_patterns_raise_pattern_error(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_where_the_reference_is_wrong_threatmesh_follows_the_spec() -> None:
    # LIKE is SQL LIKE: '%' spans newlines, and the whole string must match.
    assert compile_pattern("[x-a:s LIKE 'a%b']").matches([obs({"type": "x-a", "s": "a\nb"})])
    assert not compile_pattern("[x-a:s LIKE 'abc']").matches([obs({"type": "x-a", "s": "abc\n"})])
    # IN is equality with a member: JSON true is not the integer 1.
    assert not compile_pattern("[x-a:n IN (1, 2)]").matches([obs({"type": "x-a", "n": True})])
    # ISSUBSET works for IPv6 and answers false (no error) for non-addresses.
    assert compile_pattern("[ipv6-addr:value ISSUBSET '2001:db8::/32']").matches(
        [obs({"type": "ipv6-addr", "value": "2001:db8::1"})])
    assert not compile_pattern("[ipv4-addr:value ISSUBSET '10.0.0.0/8']").matches(
        [obs({"type": "ipv4-addr", "value": "10.1"})])
    # A non-timestamp compared with a timestamp literal is false, not an error.
    assert not compile_pattern("[x-a:t > t'2020-01-01T00:00:00Z']").matches([obs({"type": "x-a", "t": "soon"})])


def test_refs_indexes_and_binary_properties() -> None:
    data = obs({"type": "ipv4-addr", "value": "198.51.100.7"},
               {"type": "network-traffic", "dst_ref": "0", "protocols": ["tcp", "http"]},
               {"type": "email-message", "to_refs": ["3", "9"]}, {"type": "email-addr", "value": "x@y.z"},
               {"type": "artifact", "payload_bin": "aGVsbG8="})
    assert compile_pattern("[network-traffic:dst_ref.value = '198.51.100.7' AND "
                           "network-traffic:protocols[1] = 'http']").matches([data])
    assert not compile_pattern("[network-traffic:protocols[2] = 'http']").matches([data])
    assert compile_pattern("[email-message:to_refs[*].value = 'x@y.z']").matches([data])
    assert compile_pattern("[artifact:payload_bin = 'hello']").matches([data])
    assert compile_pattern("[artifact:payload_bin = h'68656c6c6f']").matches([data])


def test_evaluate_over_log_events() -> None:
    events = [
        event(1, 0, (ROLE_SRC_IP, "10.0.0.5"), (ROLE_DST_IP, "198.51.100.7"), (ROLE_DST_PORT, "4444")),
        event(2, 30, (ROLE_DOMAIN, "update.evil.example")),
        event(3, 400, (ROLE_DOMAIN, "update.evil.example")),
    ]
    # A qualifier binds to the observation expression just before it: the window needs the parentheses.
    beacon = compile_pattern("([network-traffic:dst_port = 4444 AND network-traffic:dst_ref.value ISSUBSET "
                             "'198.51.100.0/24'] FOLLOWEDBY [domain-name:value LIKE '%.evil.example']) "
                             "WITHIN 60 SECONDS")
    assert beacon.evaluate(events) == [(events[0], events[1])]
    repeated = compile_pattern("[domain-name:value LIKE '%.evil.example'] REPEATS 2 TIMES")
    assert repeated.evaluate(events) == [(events[1], events[2])]
    assert compile_pattern("[domain-name:value LIKE '%.evil.example'] REPEATS 2 TIMES WITHIN 60 SECONDS"
                           ).evaluate(events) == []
    single = compile_pattern("[domain-name:value MATCHES '^update\\\\.']")
    assert single.evaluate(events) == [(events[1],), (events[2],)]
    # An event without a time satisfies no time constraint.
    untimed = LogEvent("x", 1, 0, None, ((ROLE_DOMAIN, "a.evil.example"),))
    assert compile_pattern("[domain-name:value = 'a.evil.example'] START t'2020-01-01T00:00:00Z' "
                           "STOP t'2030-01-01T00:00:00Z'").evaluate([untimed]) == []


def test_number_observed_counts_as_that_many_observations() -> None:
    seen_twice = obs({"type": "domain-name", "value": "a.com"}, n=2)
    assert compile_pattern("[domain-name:value = 'a.com'] REPEATS 2 TIMES").matches([seen_twice])
    assert not compile_pattern("[domain-name:value = 'a.com'] REPEATS 3 TIMES").matches([seen_twice])
    huge = obs({"type": "domain-name", "value": "a.com"}, n=1_000_000)
    assert compile_pattern("[domain-name:value = 'a.com'] REPEATS 500 TIMES").matches([huge])
    assert compile_pattern("[domain-name:value = 'a.com'] AND [domain-name:value = 'a.com']").matches([huge])


def test_start_stop_excludes_stop() -> None:
    at_stop = obs({"type": "x-a", "n": 1}, first="2020-01-02T00:00:00Z")
    at_start = obs({"type": "x-a", "n": 1}, first="2020-01-01T00:00:00Z")
    pattern = compile_pattern("[x-a:n = 1] START t'2020-01-01T00:00:00Z' STOP t'2020-01-02T00:00:00Z'")
    assert not pattern.matches([at_stop])
    assert pattern.matches([at_start])
