"""Benchmark: matching a Zeek log against a million indicators (issue 6).

A seeded generator writes N indicators (domains, IPv4, CIDR, MD5/SHA-256, URLs)
into a fresh node's store and an M-line Zeek http log with planted hits,
subdomain and CIDR hits among them. Background values are drawn from ranges no
indicator covers (private addresses, a reserved suffix), so the planted hits
are the exact expected answer. Then, each in its own process (peak memory is
the process's own):

- threatmesh end to end: index loaded from the store, log read and matched,
  sightings written;
- a naive pure-Python reader with set lookups (the baseline);
- `wc -l` (the floor: reading the bytes);
- a polars hash join of the log's exact values with the indicator values, the
  reference rate the issue quotes (3.1 M lines/s where it was measured): no
  parent domains, ranges or case folding, so it finds only the exact hits;
- stix2-matcher, the OASIS reference matcher, on a sample of the pairs of 1,000
  of the indicators' patterns x the log's first 10,000 lines, timed per pair
  and extrapolated; its verdicts must equal threatmesh's pattern engine's on
  every sampled pair (it misses the subdomain, CIDR and case-normalised hits,
  which STIX `=` does not have: they are listed).

Every other approach must find exactly the planted (line, indicator) pairs.

    python bench/match.py                # 1,000,000 indicators, 5,000,000 lines (~640 MB)
    python bench/match.py --scale 0.1    # a tenth of both
    python bench/match.py --scale 0.2 --workdir /tmp/b --reuse   # again, on what /tmp/b holds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "method", "host", "uri",
          "user_agent", "status_code", "md5"]
T0 = 1_700_000_000  # log times (2023-11-14), all inside the indicators' validity


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds used (user + system): on a shared, busy machine the fairer clock than wall time."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# -- generation ------------------------------------------------------------------------


def generate(workdir: Path, n_ind: int, n_lines: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    kinds = {"domain": int(n_ind * 0.4), "ip": int(n_ind * 0.25), "cidr": int(n_ind * 0.05),
             "md5": int(n_ind * 0.1), "sha256": int(n_ind * 0.1)}
    kinds["url"] = n_ind - sum(kinds.values())
    indicators: list[tuple[str, str, str]] = []  # (id, kind, value)
    used: set[str] = set()

    def public_ip() -> str:
        while True:  # 11.0.0.0 - 99.255.255.255: public, never a background address
            ip = f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if ip not in used:
                used.add(ip)
                return ip

    def word(k: int = 8) -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(k))

    n = 0
    for kind, count in kinds.items():
        for _ in range(count):
            n += 1
            if kind == "domain":
                value = f"{word(10)}{n}.evil-{rng.randint(0, 999)}.com"
            elif kind == "ip":
                value = public_ip()
            elif kind == "cidr":
                prefix = rng.choice((16, 20, 24, 28))
                base = rng.randint(100, 126) << 24 | rng.getrandbits(24)
                net = base >> (32 - prefix) << (32 - prefix)
                value = f"{net >> 24}.{net >> 16 & 255}.{net >> 8 & 255}.{net & 255}/{prefix}"
            elif kind == "md5":
                value = hashlib.md5(f"{seed}-{n}".encode()).hexdigest()
            elif kind == "sha256":
                value = hashlib.sha256(f"{seed}-{n}".encode()).hexdigest()
            else:
                value = f"http://{word(6)}{n}.bad-{rng.randint(0, 99)}.net/{word(5)}/{n}.php?id={n}"
            indicators.append((f"indicator--{hashlib.md5(f'{seed}:{n}'.encode()).hexdigest()[:8]}-0000-4000-8000-"
                               f"{n:012d}", kind, value))
    # CIDR ranges may nest or repeat by chance: the expected answer accounts for every cover.
    cidrs = [(i, v) for i, k, v in indicators if k == "cidr"]

    def cidr_cover(ip: str) -> list[str]:
        a, b, c, d = (int(x) for x in ip.split("."))
        x = a << 24 | b << 16 | c << 8 | d
        out = []
        for ind_id, v in cidrs:
            net, plen = v.split("/")
            p, q, r, s = (int(y) for y in net.split("."))
            base = p << 24 | q << 16 | r << 8 | s
            if x >> (32 - int(plen)) == base >> (32 - int(plen)):
                out.append(ind_id)
        return out

    by_kind: dict[str, list[tuple[str, str]]] = {}
    for ind_id, kind, value in indicators:
        by_kind.setdefault(kind, []).append((ind_id, value))
    n_hits = max(60, n_lines // 1000)
    hit_lines = sorted(rng.sample(range(n_lines), n_hits))
    expected: list[tuple[int, str]] = []
    path = workdir / "http.log"
    header = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
              "#open\t2023-11-14-22-13-20\n#fields\t" + "\t".join(FIELDS) + "\n#types\t" +
              "\t".join(["time", "string", "addr", "port", "addr", "port", "string", "string", "string",
                         "string", "count", "string"]) + "\n")
    agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/8.4.0", "Wget/1.21", "python-requests/2.31"]
    plants = ["domain", "subdomain", "ip", "cidr", "md5", "url"]
    with open(path, "w", buffering=1 << 20) as fh:
        fh.write(header)
        hit_iter = iter(hit_lines)
        next_hit = next(hit_iter, -1)
        for i in range(n_lines):
            ts = f"{T0 + i * 0.01:.6f}"
            orig = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            resp = f"192.168.{rng.getrandbits(8)}.{rng.getrandbits(8)}"
            host = f"www{rng.getrandbits(16)}.site{rng.getrandbits(12)}.example"
            uri = f"/p/{rng.getrandbits(20)}"
            md5 = "-"
            if i == next_hit:
                plant = rng.choice(plants)
                line_no = i + 1 + header.count("\n")
                if plant in ("domain", "subdomain"):
                    ind_id, dom = rng.choice(by_kind["domain"])
                    host = dom if plant == "domain" else f"cdn{rng.randint(0, 9)}.{dom}"
                    expected.append((line_no, ind_id))
                elif plant == "ip":
                    ind_id, resp = rng.choice(by_kind["ip"])
                    expected.append((line_no, ind_id))
                elif plant == "cidr":
                    _, net = rng.choice(by_kind["cidr"])
                    base, plen = net.split("/")
                    p, q, r, s = (int(y) for y in base.split("."))
                    x = (p << 24 | q << 16 | r << 8 | s) + rng.randrange(1 << (32 - int(plen)))
                    resp = f"{x >> 24}.{x >> 16 & 255}.{x >> 8 & 255}.{x & 255}"
                    expected.extend((line_no, c) for c in cidr_cover(resp))
                elif plant == "md5":
                    ind_id, md5 = rng.choice(by_kind["md5"])
                    md5 = md5.upper() if rng.random() < 0.5 else md5  # case must not matter
                    expected.append((line_no, ind_id))
                else:
                    ind_id, url = rng.choice(by_kind["url"])
                    rest = url[len("http://"):]
                    h, _, tail = rest.partition("/")
                    host, uri = h.upper() if rng.random() < 0.5 else h, "/" + tail
                    expected.append((line_no, ind_id))
                next_hit = next(hit_iter, -1)
            fh.write(f"{ts}\tC{i:x}\t{orig}\t{40000 + i % 20000}\t{resp}\t80\tGET\t{host}\t{uri}\t"
                     f"{agents[i & 3]}\t200\t{md5}\n")
        fh.write("#close\t2023-11-14-23-13-20\n")
    (workdir / "indicators.json").write_text(json.dumps(indicators))
    (workdir / "expected.json").write_text(json.dumps(sorted(set(expected))))
    return {"log": str(path), "bytes": path.stat().st_size, "hits": len(set(expected))}


def load_store(workdir: Path) -> float:
    from threatmesh.node import init_node
    from threatmesh.stix.parse import parse_object

    indicators = json.loads((workdir / "indicators.json").read_text())
    created = init_node(workdir / "node", name="bench")
    node = created.node
    pattern_of = {"domain": "domain-name:value", "ip": "ipv4-addr:value", "cidr": "ipv4-addr:value",
                  "md5": "file:hashes.MD5", "sha256": "file:hashes.'SHA-256'", "url": "url:value"}
    started = time.perf_counter()
    batch = []
    cid = node.default_collection.id
    for ind_id, kind, value in indicators:
        batch.append(parse_object({
            "type": "indicator", "spec_version": "2.1", "id": ind_id, "created": "2020-01-01T00:00:00.000Z",
            "modified": "2020-01-01T00:00:00.000Z", "pattern": f"[{pattern_of[kind]} = '{value}']",
            "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z"}))
        if len(batch) == 20_000:
            node.store.put_objects(batch, collection_id=cid, source="bench")
            batch = []
    if batch:
        node.store.put_objects(batch, collection_id=cid, source="bench")
    node.close()
    return time.perf_counter() - started


# -- the approaches (each runs in a child process) ----------------------------------------


def child_threatmesh(workdir: Path) -> dict[str, object]:
    from threatmesh.match.index import load_index
    from threatmesh.match.run import run_match
    from threatmesh.match.sightings import SightingRecorder
    from threatmesh.node import open_node

    node = open_node(workdir / "node-run")
    t0, c0 = time.perf_counter(), _cpu()
    index = load_index(node.store)
    load, load_cpu = time.perf_counter() - t0, _cpu() - c0
    rss_after_load = _maxrss_mb()
    found: list[tuple[int, str]] = []
    recorder = SightingRecorder(node.store, node.identity_id, node.default_collection.id)
    t1, c1 = time.perf_counter(), _cpu()
    report = run_match([str(workdir / "http.log")], index, recorder,
                       on_hit=lambda hit, _new: found.append((hit.event.line, hit.indicator_id)))
    match_seconds, match_cpu = time.perf_counter() - t1, _cpu() - c1
    sightings = sum(1 for v in node.store.iter_objects() if v.type == "sighting")
    node.close()
    return {"load_seconds": load, "load_cpu": load_cpu, "seconds": match_seconds, "cpu": match_cpu,
            "lines": report.read.lines,
            "found": found,
            "columnar": bool(report.columnar_files), "sightings": sightings, "new_hits": report.new_hits,
            "rss_after_load_mb": rss_after_load, "indicators": len(index)}


def child_naive(workdir: Path) -> dict[str, object]:
    """What one would write first: split each line, look each field up in sets."""
    indicators = json.loads((workdir / "indicators.json").read_text())
    t0 = time.perf_counter()
    ips, domains, hashes, urls = {}, {}, {}, {}
    cidrs: dict[int, dict[int, list[str]]] = {}
    for ind_id, kind, value in indicators:
        if kind == "ip":
            ips.setdefault(value, []).append(ind_id)
        elif kind == "domain":
            domains.setdefault(value, []).append(ind_id)
        elif kind in ("md5", "sha256"):
            hashes.setdefault(value, []).append(ind_id)
        elif kind == "url":
            urls.setdefault(value.lower(), []).append(ind_id)  # the bench's URLs are all lower-case
        else:
            net, plen = value.split("/")
            a, b, c, d = (int(x) for x in net.split("."))
            cidrs.setdefault(int(plen), {}).setdefault((a << 24 | b << 16 | c << 8 | d) >> (32 - int(plen)),
                                                       []).append(ind_id)
    del indicators
    load = time.perf_counter() - t0
    found: list[tuple[int, str]] = []
    t1, c1 = time.perf_counter(), _cpu()
    lines = 0
    with open(workdir / "http.log", encoding="utf-8") as fh:
        for lines, line in enumerate(fh, 1):
            if line[0] == "#":
                continue
            f = line.rstrip("\n").split("\t")
            hit: list[str] = []
            for ip in (f[2], f[4]):
                hit += ips.get(ip, ())
                a, b, c, d = (int(x) for x in ip.split("."))
                x = a << 24 | b << 16 | c << 8 | d
                for plen, nets in cidrs.items():
                    hit += nets.get(x >> (32 - plen), ())
            host = f[7].lower()
            name = host
            while True:
                hit += domains.get(name, ())
                if "." not in name:
                    break
                name = name.partition(".")[2]
            hit += urls.get(f"http://{host}{f[8]}", ())
            if f[11] != "-":
                hit += hashes.get(f[11].lower(), ())
            found.extend((lines, i) for i in dict.fromkeys(hit))
    return {"load_seconds": load, "seconds": time.perf_counter() - t1, "cpu": _cpu() - c1, "lines": lines,
            "found": found}


def child_polars(workdir: Path) -> dict[str, object]:
    """The polars hash join the issue quotes as a reference rate: the log's exact values joined with
    the indicator values. Exact values only (no parent domains, no ranges, no case folding): a
    speed reference, not a matcher; its hits are a subset of the planted ones."""
    import polars as pl

    indicators = json.loads((workdir / "indicators.json").read_text())
    t0 = time.perf_counter()
    table = pl.DataFrame(indicators, schema=["indicator", "kind", "value"], orient="row")
    del indicators
    by_kind = {kind: table.filter(pl.col("kind").is_in(kinds)).select("value", "indicator")
               for kind, kinds in (("ip", ["ip"]), ("name", ["domain"]), ("hash", ["md5", "sha256"]), ("url", ["url"]))}
    load = time.perf_counter() - t0
    with open(workdir / "http.log", "rb") as fh:
        header = next(i for i, line in enumerate(fh) if not line.startswith(b"#"))  # the #close line is last
    t1, c1 = time.perf_counter(), _cpu()
    log = pl.read_csv(workdir / "http.log", separator="\t", has_header=False, comment_prefix="#", new_columns=FIELDS,
                      columns=[FIELDS.index(c) for c in ("id.orig_h", "id.resp_h", "host", "uri", "md5")],
                      schema={n: pl.String for n in FIELDS}, quote_char=None).with_row_index("row")
    # One join a column (faster here than one join of all the values stacked in one column).
    parts = [log.select("row", value=pl.col(column)).join(by_kind[kind], on="value")
             for column, kind in (("id.orig_h", "ip"), ("id.resp_h", "ip"), ("host", "name"), ("md5", "hash"))]
    parts.append(log.select("row", value=pl.format("http://{}{}", "host", "uri")).join(by_kind["url"], on="value"))
    hits = pl.concat(parts).select("row", "indicator").unique()
    rows = log.height
    found = [(row + header + 1, ind) for row, ind in hits.iter_rows()]
    return {"load_seconds": load, "seconds": time.perf_counter() - t1, "cpu": _cpu() - c1,
            "lines": rows + header + 1, "found": found}


def _observed(fields: list[str]) -> dict[str, object]:
    """One http.log line as STIX observed-data (the 2.0 form with embedded objects stix2-matcher reads)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(fields[0]))) + "Z"
    objects: dict[str, dict[str, object]] = {
        "0": {"type": "ipv4-addr", "value": fields[2]}, "1": {"type": "ipv4-addr", "value": fields[4]},
        "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1", "src_port": int(fields[3]),
              "dst_port": int(fields[5]), "protocols": ["tcp", "http"]},
        "3": {"type": "domain-name", "value": fields[7]},
        "4": {"type": "url", "value": f"http://{fields[7]}{fields[8]}"},
    }
    if fields[11] != "-":
        objects["5"] = {"type": "file", "hashes": {"MD5": fields[11]}}
    return {"type": "observed-data", "first_observed": stamp, "last_observed": stamp, "number_observed": 1,
            "objects": objects}


def child_stix2(workdir: Path, n_patterns: int = 20, n_observations: int = 500) -> dict[str, object]:
    """stix2-matcher (the OASIS reference) on a sample of the pairs of 1,000 patterns x the first 10,000
    lines, timed per pair and extrapolated; its verdicts are compared with threatmesh's pattern engine
    on the same pairs, and with the planted hits."""
    from stix2matcher.matcher import Pattern

    from threatmesh.match.patterns import compile_pattern, observation_from_dict

    rng = random.Random(7)
    indicators = {i: (kind, value) for i, kind, value in json.loads((workdir / "indicators.json").read_text())}
    expected = {tuple(x) for x in json.loads((workdir / "expected.json").read_text())}
    lines: dict[int, list[str]] = {}
    with open(workdir / "http.log", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.startswith("#"):
                lines[number] = line.rstrip("\n").split("\t")
            if len(lines) >= 10_000:
                break
    planted = sorted((line, ind) for line, ind in expected if line in lines)
    sample_lines = sorted({line for line, _ in planted} | set(rng.sample(sorted(lines), n_observations)))
    sample_lines = sample_lines[:max(n_observations, len(planted))]
    hit_ids = sorted({ind for line, ind in planted if line in sample_lines})
    others = rng.sample(sorted(set(indicators) - set(hit_ids)), n_patterns - len(hit_ids))
    pattern_of = {"domain": "domain-name:value", "ip": "ipv4-addr:value", "cidr": "ipv4-addr:value",
                  "md5": "file:hashes.MD5", "sha256": "file:hashes.'SHA-256'", "url": "url:value"}
    sample_ids = (hit_ids + others)[:n_patterns]
    texts = {i: f"[{pattern_of[indicators[i][0]]} = '{indicators[i][1]}']" for i in sample_ids}
    observed = [_observed(lines[n]) for n in sample_lines]
    compiled = {i: Pattern(t, stix_version="2.0") for i, t in texts.items()}
    t0, c0 = time.perf_counter(), _cpu()
    reference = {(n, i) for i in sample_ids for n, obs in zip(sample_lines, observed) if compiled[i].match([obs])}
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    ours_compiled = {i: compile_pattern(t) for i, t in texts.items()}
    ours_obs = [observation_from_dict(o) for o in observed]
    ours = {(n, i) for i in sample_ids for n, obs in zip(sample_lines, ours_obs)
            if ours_compiled[i].observation_matches(obs)}
    pairs = len(sample_ids) * len(sample_lines)
    wanted = {(n, i) for n, i in expected if n in set(sample_lines) and i in set(sample_ids)}
    missed: dict[str, int] = {}
    for n, i in sorted(wanted - reference):
        kind, value = indicators[i]
        host = lines[n][7]
        reason = {"cidr": "CIDR range (STIX '=' compares the text)",
                  "domain": "subdomain (STIX '=' is exact)" if host != value else "?",
                  "url": "host case (STIX '=' compares the text)", "md5": "digest case"}.get(kind, "?")
        missed[reason] = missed.get(reason, 0) + 1
    return {"seconds": seconds, "cpu": cpu, "pairs": pairs, "patterns": len(sample_ids),
            "observations": len(sample_lines), "per_pair_us": cpu / pairs * 1e6, "found": None,
            "agree_with_threatmesh_engine": reference == ours, "disagreements": len(reference ^ ours),
            "planted": len(wanted), "planted_found": len(wanted & reference), "extra": len(reference - wanted),
            "missed": missed}


def child_wc(workdir: Path) -> dict[str, object]:
    t0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wc", "-l", str(workdir / "http.log")], capture_output=True, text=True, check=True)
    return {"seconds": time.perf_counter() - t0, "cpu": _cpu(resource.RUSAGE_CHILDREN) - c0,
            "lines": int(out.stdout.split()[0]), "found": None}


def run_child(name: str, workdir: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--workdir", str(workdir)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply both sizes (0.1: a tenth)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated files here")
    parser.add_argument("--reuse", action="store_true", help="use the log and node already in --workdir")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"threatmesh": child_threatmesh, "naive": child_naive, "wc": child_wc,
                  "stix2": child_stix2, "polars": child_polars}[args.child](args.workdir)
        result["peak_rss_mb"] = _maxrss_mb()
        print(json.dumps(result))
        return
    n_ind, n_lines = int(args.indicators * args.scale), int(args.lines * args.scale)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tm-bench-match-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.reuse and (workdir / "node").is_dir() and (workdir / "expected.json").exists():
            print(f"reusing the log and node in {workdir}")
        else:
            print(f"generating {n_ind:,} indicators and a {n_lines:,}-line Zeek http log in {workdir} ...", flush=True)
            t = time.perf_counter()
            info = generate(workdir, n_ind, n_lines, args.seed)
            print(f"  {info['bytes'] / 1e6:,.0f} MB, {info['hits']} planted hits ({time.perf_counter() - t:.1f} s)")
            print(f"  stored the indicators in a new node in {load_store(workdir):.1f} s (setup, not timed below)")
        n_lines = sum(1 for _ in open(workdir / "http.log", "rb")) - 9  # the header and the #close line
        # threatmesh writes sightings: it runs on a copy, so that every run starts from the same store.
        shutil.rmtree(workdir / "node-run", ignore_errors=True)
        shutil.copytree(workdir / "node", workdir / "node-run")
        expected = {tuple(x) for x in json.loads((workdir / "expected.json").read_text())}
        results = {name: run_child(name, workdir) for name in ("wc", "naive", "polars", "threatmesh", "stix2")}
        print(f"\n{'approach':<24}{'wall s':>8}{'M lines/s':>10}{'vs naive':>9}{'CPU s':>8}"
              f"{'M lines/CPU-s':>14}{'peak MB':>9}  hits")
        naive_rate = results["naive"]["lines"] / results["naive"]["seconds"]
        ok = True
        for name, label in (("wc", "wc -l (floor)"), ("naive", "naive Python sets"),
                            ("polars", "polars hash join"), ("threatmesh", "threatmesh end to end")):
            r = results[name]
            rate = r["lines"] / r["seconds"]
            if r["found"] is None:
                verdict = "-"
            elif name == "polars":  # exact values only, by design: a subset of the planted hits
                got = {tuple(x) for x in r["found"]}
                verdict = (f"exact values only: {len(got & expected)} of the {len(expected)} planted"
                           f"{'' if got <= expected else f', {len(got - expected)} not planted'}")
                ok &= got <= expected
            else:
                got = {tuple(x) for x in r["found"]}
                verdict = "same as planted" if got == expected else \
                    f"DIFFERENT: {len(expected - got)} missed, {len(got - expected)} extra"
                ok &= got == expected
            cpu_rate = r["lines"] / max(r["cpu"], 1e-6)
            print(f"{label:<24}{r['seconds']:>8.2f}{rate / 1e6:>10.2f}{rate / naive_rate:>9.1f}{r['cpu']:>8.2f}"
                  f"{cpu_rate / 1e6:>14.2f}{r['peak_rss_mb']:>9.0f}  {verdict}")
        tm = results["threatmesh"]
        print(f"\nthreatmesh: indicator index loaded in {tm['load_seconds']:.2f} s ({tm['indicators']:,} indicators,"
              f" {tm['rss_after_load_mb']:.0f} MB peak after loading); columnar reader: {tm['columnar']};"
              f" {tm['sightings']:,} sightings written, {tm['new_hits']:,} hits counted")
        print(f"naive: sets built in {results['naive']['load_seconds']:.2f} s from the generator's list")
        ref = results["stix2"]
        per_pair = ref["per_pair_us"] / 1e6
        print(f"stix2-matcher (reference): {ref['patterns']} patterns x {ref['observations']} lines = {ref['pairs']:,}"
              f" pairs in {ref['cpu']:.2f} CPU s = {ref['per_pair_us']:.1f} µs per pair; extrapolated: 1,000 patterns"
              f" x 10,000 lines {per_pair * 1e7:,.0f} s, x {n_lines:,} lines {per_pair * 1e3 * n_lines / 3600:,.1f} h"
              f" (threatmesh, all {tm['indicators']:,} indicators: {tm['seconds']:.1f} s)")
        print(f"  verdicts equal to threatmesh's pattern engine on every sampled pair: {ref['agree_with_threatmesh_engine']}"
              f" ({ref['disagreements']} disagreements); planted hits it finds: {ref['planted_found']}/{ref['planted']},"
              f" extra {ref['extra']}; missed by STIX '=' semantics: {ref['missed'] or 'none'}")
        ok &= bool(ref["agree_with_threatmesh_engine"]) and ref["extra"] == 0
        print(f"threatmesh vs naive: {tm['lines'] / tm['seconds'] / naive_rate:.1f}x the lines per second, "
              f"{(tm['lines'] / max(tm['cpu'], 1e-6)) / (results['naive']['lines'] / max(results['naive']['cpu'], 1e-6)):.1f}x"
              f" per CPU second; wc -l is {results['wc']['lines'] / results['wc']['seconds'] / (tm['lines'] / tm['seconds']):.1f}x faster")
        pj = results["polars"]
        print(f"threatmesh vs the polars hash join (exact values only, no sightings): "
              f"{(tm['lines'] / tm['seconds']) / (pj['lines'] / pj['seconds']):.2f}x its lines per second")
        print(f"goals: >= 3 M lines/s end to end: {tm['lines'] / tm['seconds'] / 1e6:.2f} M lines/s wall,"
              f" {tm['lines'] / max(tm['cpu'], 1e-6) / 1e6:.2f} M lines per CPU second; < 1.5 GB: peak"
              f" {tm['peak_rss_mb']:,.0f} MB; index load < 5 s: {tm['load_seconds']:.2f} s"
              f" ({tm['load_cpu']:.2f} CPU s) for {tm['indicators']:,} indicators")
        print(f"CPU cores: {os.cpu_count()}; load average at the end: {os.getloadavg()[0]:.1f}")
        if not ok:
            raise SystemExit("hit sets differ")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
