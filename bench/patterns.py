"""Benchmark: 1,000 STIX patterns against log observations, threatmesh vs. the OASIS reference matcher.

    .venv/bin/python bench/patterns.py [--observations 200000] [--ref-patterns 100] [--ref-observations 1000]

A seeded generator writes 1,000 patterns (about 70% equality patterns that the
exact index answers, 30% LIKE / MATCHES / ISSUBSET / port comparisons and
FOLLOWEDBY ... WITHIN patterns that are evaluated) and N log-line observations
(connections and DNS queries, heavy-tailed like real traffic, with planted
hits). It times:

- threatmesh's PatternSet over all N observations (exact index + type-indexed
  evaluation + per-value memo), and extrapolates to 5,000,000 lines;
- stix2-matcher, the reference, on a subset (by default 100 patterns x 1,000
  observations, which takes seconds), as µs per pattern-observation pair, and
  extrapolates that rate to 1,000 x 10,000 and to 1,000 x 5,000,000;

and checks that both give the same verdict for every pattern of the subset (the
subset holds observations that patterns hit, and half of its patterns hit some,
so that agreement is not agreement on "no match"), and that PatternSet finds
the same hits as evaluating each pattern one by one. CPU time is printed beside
wall time: the scan runs on one core and the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from threatmesh.match.pattern_set import PatternSet  # noqa: E402
from threatmesh.match.patterns import Observation, compile_pattern, observation_from_dict  # noqa: E402

T0 = 1_700_000_000  # s


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate(n_patterns: int, n_obs: int, seed: int = 6) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    bad_ips = [_ip(rng) for _ in range(400)]
    bad_domains = [f"c2-{i}.bad{rng.randint(0, 99)}.ru" for i in range(400)]
    popular = [f"www.site{i}.com" for i in range(2000)] + [f"cdn{i}.net" for i in range(500)]
    patterns: list[tuple[str, str]] = []
    for i in range(n_patterns):
        r = rng.random()
        if r < 0.35:
            text = f"[ipv4-addr:value = '{rng.choice(bad_ips)}']"
        elif r < 0.60:
            text = f"[domain-name:value = '{rng.choice(bad_domains)}']"
        elif r < 0.70:
            text = (f"[ipv4-addr:value = '{rng.choice(bad_ips)}' OR domain-name:value = "
                    f"'{rng.choice(bad_domains)}']")
        elif r < 0.78:
            text = f"[domain-name:value LIKE '%.bad{rng.randint(0, 99)}.ru']"
        elif r < 0.85:
            text = f"[domain-name:value MATCHES '^c2-{rng.randint(0, 399)}\\\\.']"
        elif r < 0.92:
            a, b = rng.randint(11, 223), rng.randint(0, 255)
            text = f"[ipv4-addr:value ISSUBSET '{a}.{b}.0.0/16']"
        elif r < 0.97:
            text = (f"[network-traffic:dst_port = {rng.choice([4444, 6667, 8081, 31337])} AND "
                    f"network-traffic:dst_ref.value ISSUBSET '{rng.randint(11, 223)}.0.0.0/8']")
        else:
            text = (f"([domain-name:value = '{rng.choice(bad_domains)}'] FOLLOWEDBY "
                    f"[network-traffic:dst_port = {rng.choice([4444, 6667])}]) WITHIN 300 SECONDS")
        patterns.append((f"p{i}", text))
    observations = []
    for j in range(n_obs):
        t = T0 + j // 20
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        planted = rng.random() < 0.002
        if rng.random() < 0.5:  # a DNS query
            domain = rng.choice(bad_domains) if planted else popular[min(int(rng.paretovariate(1.2)) - 1, 2499)]
            objects = {"0": {"type": "domain-name", "value": domain}}
        else:  # a connection
            dst = rng.choice(bad_ips) if planted else f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 3)}.{rng.randint(1, 20)}"
            port = rng.choice([4444, 6667]) if planted and rng.random() < 0.5 else rng.choice([443, 80, 53, 123, 8080])
            objects = {"0": {"type": "ipv4-addr", "value": "10.0.0.5"}, "1": {"type": "ipv4-addr", "value": dst},
                       "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1", "dst_port": port,
                             "protocols": ["tcp"]}}
        observations.append({"first_observed": stamp, "last_observed": stamp, "number_observed": 1,
                             "objects": objects})
    return patterns, observations


def run_threatmesh(patterns: list[tuple[str, str]], observations: list[Observation]) -> tuple[dict[str, list[int]], float, float, float]:
    started = time.perf_counter()
    pset = PatternSet({pid: compile_pattern(text) for pid, text in patterns})
    compiled_at, cpu = time.perf_counter(), time.process_time()
    hits = pset.scan(observations)
    return hits, compiled_at - started, time.perf_counter() - compiled_at, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patterns", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument("--ref-patterns", type=int, default=100)
    parser.add_argument("--ref-observations", type=int, default=1000)
    args = parser.parse_args()

    patterns, raw = generate(args.patterns, args.observations)
    observations = [observation_from_dict(o) for o in raw]
    hits, compile_s, scan_s, scan_cpu = run_threatmesh(patterns, observations)
    exact = sum(compile_pattern(t).exact_keys() is not None for _, t in patterns)
    rate = len(observations) / scan_s
    print(f"patterns: {len(patterns)} ({exact} answered by the exact index, {len(patterns) - exact} evaluated)")
    print(f"threatmesh: compiled in {compile_s:.2f} s; {len(observations):,} observations in {scan_s:.2f} s "
          f"({scan_cpu:.2f} CPU s) = {rate:,.0f} obs/s; {sum(len(v) for v in hits.values()):,} hits for "
          f"{len(hits)} patterns")
    print(f"  extrapolated: 1,000 patterns x 5,000,000 lines in {5_000_000 / rate:,.0f} s wall, "
          f"{5_000_000 / len(observations) * scan_cpu:,.0f} CPU s (goal: under 60 s; one core: the scan is "
          f"pure Python; load average {os.getloadavg()[0]:.1f})")

    # Same hits one pattern at a time (strict evaluation), on the first 5,000 observations.
    sample = observations[:5000]
    sample_hits = PatternSet({pid: compile_pattern(t) for pid, t in patterns}).scan(sample)
    mismatches = 0
    for pid, text in patterns:
        compiled = compile_pattern(text)
        if compiled.single_observation:
            expected = [i for i, o in enumerate(sample) if compiled.observation_matches(o)]
            mismatches += expected != sample_hits.get(pid, [])
        else:
            mismatches += compiled.matches(sample) != (pid in sample_hits)
    print(f"check: PatternSet vs. one-by-one evaluation on {len(sample):,} observations: {mismatches} mismatches")

    try:
        from stix2matcher.matcher import match as reference_match
    except ImportError:
        print("stix2-matcher is not installed: reference comparison skipped")
        return
    # Observations some pattern hits, and those patterns, come first: the comparison is not vacuous.
    hit_obs = sorted({i for found in hits.values() for i in found})[: args.ref_observations // 10]
    taken = set(hit_obs)
    chosen = hit_obs + [i for i in range(len(raw)) if i not in taken][: args.ref_observations - len(hit_obs)]
    chosen.sort()
    ref_raw = [raw[i] for i in chosen]
    ref_obs = [observations[i] for i in chosen]
    hitting = {pid for pid, found in hits.items() if set(found) & set(chosen)}
    half = args.ref_patterns // 2  # half of them hit somewhere in the sample, half do not
    ref_patterns = [p for p in patterns if p[0] in hitting][:half]
    ref_patterns += [p for p in patterns if p[0] not in hitting][: args.ref_patterns - len(ref_patterns)]
    started = time.perf_counter()
    reference = {pid: bool(reference_match(text, ref_raw)) for pid, text in ref_patterns}
    ref_s = time.perf_counter() - started
    per_pair = ref_s / (len(ref_patterns) * len(ref_raw))
    ours = {pid: compile_pattern(text).matches(ref_obs) for pid, text in ref_patterns}
    differ = [pid for pid in reference if reference[pid] != ours[pid]]
    print(f"stix2-matcher: {len(ref_patterns)} patterns x {len(ref_raw):,} observations in {ref_s:.1f} s = "
          f"{per_pair * 1e6:.1f} µs per pair; {sum(reference.values())} patterns matched")
    print(f"  extrapolated: 1,000 x 10,000 in {per_pair * 1e7 / 60:,.1f} min; "
          f"1,000 x 5,000,000 in {per_pair * 5e9 / 3600:,.0f} h")
    print(f"check: verdicts equal to stix2-matcher for {len(reference) - len(differ)}/{len(reference)} patterns"
          + (f"; differ: {differ}" if differ else ""))


if __name__ == "__main__":
    main()
