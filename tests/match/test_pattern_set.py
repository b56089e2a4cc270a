"""PatternSet (many patterns over many observations) finds what each pattern finds alone.

Aimed at its shortcuts: guarded leaves (a `_ref` comparison behind a plain one),
per-value memos, the range index and the exact index.
"""

from __future__ import annotations

import random
from typing import Any

from threatmesh.match.pattern_set import PatternSet, _guard, observation_keys
from threatmesh.match.patterns import Observation, compile_pattern, observation_from_dict

PATTERNS = {
    "ref": "[network-traffic:dst_port = 4444 AND network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24']",
    "ref-or": "[network-traffic:dst_port = 6667 AND (network-traffic:dst_ref.value = '203.0.113.9' OR "
              "network-traffic:src_ref.value = '10.0.0.9')]",
    "unguarded": "[network-traffic:dst_ref.value = '203.0.113.9' OR network-traffic:dst_port = 31337]",
    "not-port": "[network-traffic:dst_port != 80 AND network-traffic:dst_ref.value = '198.51.100.7']",
    "protocols": "[network-traffic:protocols[*] = 'udp' AND network-traffic:dst_port = 53]",
    "like": "[domain-name:value LIKE '%.bad.example']",
    "range": "[ipv4-addr:value ISSUBSET '198.51.100.0/25']",
    "exact": "[ipv4-addr:value = '203.0.113.9' OR domain-name:value = 'evil.example']",
    "seq": "([domain-name:value = 'c2.bad.example'] FOLLOWEDBY [network-traffic:dst_port = 4444]) WITHIN 60 SECONDS",
}


def _observations(n: int, seed: int = 6) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stamp = f"2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"
        if rng.random() < 0.4:
            objects: dict[str, Any] = {"0": {"type": "domain-name", "value": rng.choice(
                ["c2.bad.example", "www.fine.example", "evil.example", "evil.example.net", "x.bad.example"])}}
        else:
            dst = rng.choice(["198.51.100.7", "198.51.100.200", "203.0.113.9", "192.0.2.1"])
            src = rng.choice(["10.0.0.9", "10.0.0.1"])
            objects = {"0": {"type": "ipv4-addr", "value": src}, "1": {"type": "ipv4-addr", "value": dst},
                       "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1",
                             "dst_port": rng.choice([80, 53, 4444, 6667, 31337]),
                             "protocols": [rng.choice(["tcp", "udp"])]}}
        out.append(observation_from_dict({"first_observed": stamp, "last_observed": stamp, "objects": objects}))
    return out


def test_pattern_set_equals_one_by_one_evaluation() -> None:
    observations = _observations(400)
    compiled = {pid: compile_pattern(text) for pid, text in PATTERNS.items()}
    hits = PatternSet(compiled).scan(observations)
    for pid, pattern in compiled.items():
        if pattern.single_observation:
            assert hits.get(pid, []) == [i for i, o in enumerate(observations) if pattern.observation_matches(o)], pid
        else:
            assert (pid in hits) == pattern.matches(observations), pid
    # (Subdomains are left out: the exact index reads a domain key as covering them, STIX `=` does not.)
    # Not vacuous: every pattern hits somewhere, and the guarded ones do not hit everywhere.
    assert set(hits) == set(PATTERNS)
    assert 0 < len(hits["ref"]) < 100 and 0 < len(hits["ref-or"]) < 100


def test_guards_are_the_plain_part_of_a_leaf() -> None:
    leaf = compile_pattern(PATTERNS["ref"]).parsed.leaves[0].expr
    guard = _guard(leaf)
    assert guard is not None and getattr(guard, "path", None) == ("dst_port",)
    assert _guard(compile_pattern(PATTERNS["unguarded"]).parsed.leaves[0].expr) is None
    assert _guard(compile_pattern(PATTERNS["protocols"]).parsed.leaves[0].expr) is not None


def test_observation_keys_read_every_parent_domain_and_plain_addresses() -> None:
    obs = Observation({"0": {"type": "domain-name", "value": "A.B.Evil.Example."},
                       "1": {"type": "ipv4-addr", "value": "198.51.100.7"},
                       "2": {"type": "ipv4-addr", "value": "010.1.1.1"}}, None, None)
    keys = observation_keys(obs)
    assert {("domain-name", "a.b.evil.example"), ("domain-name", "b.evil.example"),
            ("domain-name", "evil.example"), ("ipv4-addr", "198.51.100.7")} <= keys
    assert ("domain-name", "example") not in keys
    assert not any(v == "010.1.1.1" for _, v in keys)  # not a valid address: no key
