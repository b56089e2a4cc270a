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
- `wc -l` (the floor: reading the bytes).

Every approach must find exactly the planted (line, indicator) pairs.

    python bench/match.py                # 1,000,000 indicators, 5,000,000 lines (~450 MB)
    python bench/match.py --scale 0.1    # a tenth of both
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

    node = open_node(workdir / "node")
    t0 = time.perf_counter()
    index = load_index(node.store)
    load = time.perf_counter() - t0
    rss_after_load = _maxrss_mb()
    found: list[tuple[int, str]] = []
    recorder = SightingRecorder(node.store, node.identity_id, node.default_collection.id)
    t1, c1 = time.perf_counter(), _cpu()
    report = run_match([str(workdir / "http.log")], index, recorder,
                       on_hit=lambda hit, _new: found.append((hit.event.line, hit.indicator_id)))
    match_seconds, match_cpu = time.perf_counter() - t1, _cpu() - c1
    sightings = sum(1 for v in node.store.iter_objects() if v.type == "sighting")
    node.close()
    return {"load_seconds": load, "seconds": match_seconds, "cpu": match_cpu, "lines": report.read.lines,
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
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"threatmesh": child_threatmesh, "naive": child_naive, "wc": child_wc}[args.child](args.workdir)
        result["peak_rss_mb"] = _maxrss_mb()
        print(json.dumps(result))
        return
    n_ind, n_lines = int(args.indicators * args.scale), int(args.lines * args.scale)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tm-bench-match-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"generating {n_ind:,} indicators and a {n_lines:,}-line Zeek http log in {workdir} ...", flush=True)
        t = time.perf_counter()
        info = generate(workdir, n_ind, n_lines, args.seed)
        print(f"  {info['bytes'] / 1e6:,.0f} MB, {info['hits']} planted hits ({time.perf_counter() - t:.1f} s)")
        print(f"  stored the indicators in a new node in {load_store(workdir):.1f} s (setup, not timed below)")
        expected = {tuple(x) for x in json.loads((workdir / "expected.json").read_text())}
        results = {name: run_child(name, workdir) for name in ("wc", "naive", "threatmesh")}
        print(f"\n{'approach':<24}{'wall s':>8}{'M lines/s':>10}{'vs naive':>9}{'CPU s':>8}"
              f"{'M lines/CPU-s':>14}{'peak MB':>9}  hits")
        naive_rate = results["naive"]["lines"] / results["naive"]["seconds"]
        ok = True
        for name, label in (("wc", "wc -l (floor)"), ("naive", "naive Python sets"),
                            ("threatmesh", "threatmesh end to end")):
            r = results[name]
            rate = r["lines"] / r["seconds"]
            if r["found"] is None:
                verdict = "-"
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
        print(f"CPU cores: {os.cpu_count()}; load average at the end: {os.getloadavg()[0]:.1f}")
        if not ok:
            raise SystemExit("hit sets differ")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
