"""The indicator index and the line-at-a-time matcher: keys, ranges, subdomains, validity."""

from __future__ import annotations

from typing import Any

import pytest

from threatmesh.match.engine import Matcher
from threatmesh.match.index import build_index, exact_keys_of
from threatmesh.match.keys import url_key
from threatmesh.match.protocol import LogEvent
from threatmesh.stix.index import pattern_observables
from threatmesh.stix.timestamps import timestamp_to_micros


def ind(n: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000", "pattern": pattern,
            "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z", "name": f"i{n}", **extra}


def ev(*values: tuple[str, str], time: str | None = "2024-05-01T00:00:00Z", line: int = 1) -> LogEvent:
    return LogEvent("t.log", line, 0, timestamp_to_micros(time) if time else None, tuple(values))


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '198.51.100.7']",
    "[ipv4-addr:value = '198.51.100.7/32']",
    "[domain-name:value = 'Evil.Example.']",
    "[file:hashes.'SHA-256' = '" + "AB" * 32 + "']",
    "[file:hashes.MD5 = '" + "cd" * 16 + "']",
    "[url:value = 'HTTP://Evil.Example:80/a%7eb']",
    "[ipv4-addr:value = '10.0.0.0/8']",
    "[email-addr:value = 'Boss@Corp.Example']",
])
def test_fast_pattern_reading_agrees_with_the_indexer(pattern: str) -> None:
    keys = exact_keys_of(pattern)
    assert keys is not None
    assert {k for k, _ in keys} == {k for k, _ in pattern_observables(pattern)}
    assert keys == frozenset(pattern_observables(pattern))


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']",  # both needed: not an index key
    "[ipv4-addr:value != '1.2.3.4']",
    "[domain-name:value LIKE '%.example']",
    "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '5.6.7.8']",
    "[network-traffic:dst_port = 443]",
    "[ipv4-addr:value = 'not-an-ip']",
])
def test_patterns_that_are_not_plain_equalities_are_not_indexed(pattern: str) -> None:
    assert exact_keys_of(pattern) is None


def test_url_keys_normalise_case_ports_and_percent_encoding() -> None:
    assert url_key("HTTP://Evil.Example:80/a%7eb%2fc") == "http://evil.example/a~b%2Fc"
    assert url_key("https://evil.example:443/") == url_key("https://EVIL.example/")
    assert url_key("https://evil.example:8443/") != url_key("https://evil.example/")
    assert url_key("http://evil.example/Path") != url_key("http://evil.example/path")  # paths keep case


def test_index_matches_exact_cidr_subdomain_hash_url_and_email() -> None:
    index = build_index([
        ind(1, "[ipv4-addr:value = '198.51.100.7']"),
        ind(2, "[ipv4-addr:value = '203.0.113.0/24']"),
        ind(3, "[ipv4-addr:value = '203.0.0.0/16']"),  # nests the /24: both hit
        ind(4, "[domain-name:value = 'evil.example']"),
        ind(5, "[file:hashes.'SHA-256' = '" + "ab" * 32 + "']"),
        ind(6, "[url:value = 'http://bad.example/x%7e']"),
        ind(7, "[email-addr:value = 'boss@corp.example']"),
        ind(8, "[ipv6-addr:value = '2001:db8::/32']"),
        ind(9, "[ipv4-addr:value = '192.0.2.1'] OR [domain-name:value = 'other.example']"),
    ])
    matcher = Matcher(index)

    def hit(*values: tuple[str, str]) -> set[int]:
        return {int(h.indicator_id[11:19]) for h in matcher.match_event(ev(*values))}

    assert hit(("dst-ip", "198.51.100.7")) == {1}
    assert hit(("src-ip", "203.0.113.200")) == {2, 3}
    assert hit(("src-ip", "203.0.7.1")) == {3}
    assert hit(("dst-ip", "203.1.0.1")) == set()
    assert hit(("domain", "A.B.Evil.Example.")) == {4}
    assert hit(("domain", "notevil.example")) == set()  # a suffix of the text, not a parent name
    assert hit(("sha256", "AB" * 32)) == {5}
    assert hit(("url", "HTTP://BAD.example:80/x~")) == {6}
    assert hit(("email", "Boss@Corp.Example")) == {7}
    assert hit(("ip", "2001:DB8:0::1")) == {8}
    assert hit(("domain", "www.other.example")) == {9}
    assert hit(("dst-ip", "not an address"), ("domain", "-")) == set()
    # one indicator hits one event once, whatever number of its fields match
    assert len(matcher.match_event(ev(("src-ip", "198.51.100.7"), ("dst-ip", "198.51.100.7")))) == 1


def test_only_indicators_valid_at_the_event_time_hit() -> None:
    index = build_index([
        ind(1, "[domain-name:value = 'a.example']", valid_from="2024-01-01T00:00:00Z",
            valid_until="2024-06-01T00:00:00Z"),
        ind(2, "[domain-name:value = 'a.example']", revoked=True),
        ind(3, "[domain-name:value = 'a.example']", x_threatmesh_warninglists=["alexa top 1000"]),
    ])
    assert len(index) == 1 and index.warninglisted == 1
    matcher = Matcher(index, now=timestamp_to_micros("2030-01-01T00:00:00Z"))
    assert len(matcher.match_event(ev(("domain", "a.example"), time="2024-03-01T00:00:00Z"))) == 1
    assert matcher.match_event(ev(("domain", "a.example"), time="2023-12-31T23:59:59Z")) == []
    assert matcher.match_event(ev(("domain", "a.example"), time="2024-06-01T00:00:00Z")) == []  # until is exclusive
    assert matcher.match_event(ev(("domain", "a.example"), time=None)) == []  # no time: judged at `now`
    assert len(build_index([ind(3, "[domain-name:value = 'a.example']", x_threatmesh_warninglists=["x"])],
                           include_warninglisted=True)) == 1


def test_warninglist_check_and_unmatchable_patterns_are_reported() -> None:
    index = build_index(
        [ind(1, "[domain-name:value = 'google.com']"), ind(2, "[domain-name:value = 'evil.example']"),
         ind(3, "[network-traffic:dst_port = 4444]"), {"type": "indicator", "id": "indicator--x",
                                                       "pattern": "rule x {}", "pattern_type": "yara"}],
        warninglist=lambda kind, value: "top sites" if value == "google.com" else None,
    )
    assert [i.name for i in index.indicators] == ["i2"]
    assert index.warninglisted == 1
    assert {s.id for s in index.skipped} == {"indicator--00000003-0000-4000-8000-000000000000", "indicator--x"}


class _PortPattern:
    """A stand-in for the full pattern engine: the contract of match.protocol.CompiledPattern."""

    def exact_keys(self) -> None:
        return None

    def evaluate(self, events: Any) -> list[tuple[LogEvent, ...]]:
        return [(e,) for e in events if e.get("dst-port") == "4444"]


def test_patterns_that_need_evaluating_go_to_the_plugged_in_engine() -> None:
    index = build_index([ind(1, "[network-traffic:dst_port = 4444]")], compiler=lambda text: _PortPattern())
    assert len(index.evaluated) == 1
    hits = list(Matcher(index).match([ev(("dst-port", "80"), line=1), ev(("dst-port", "4444"), line=2)]))
    assert [(h.event.line, h.role) for h in hits] == [(2, "pattern")]
