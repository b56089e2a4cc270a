"""TAXII server benchmark: threatmesh against medallion, both real servers on 127.0.0.1.

threatmesh: a node holding the enterprise ATT&CK bundle plus generated
indicators up to each size in `--sizes` (default 100,000 and 1,000,000),
served by `threatmesh serve` (uvicorn) in its own process.
medallion: the OASIS reference server, memory backend, loaded with each size
in `--medallion-sizes` (default 1,000 and 3,000), in its own process.

For each server, size and number of concurrent clients (`--clients`, default
1 and 8; each client is a process with its own httpx client):
  first page   GET objects/?limit=1000: latency (median over the requests)
  full walk    objects/ with limit=1000, following `next` to the end: objects/s
  get by id    GET objects/{id}/ of random ids: latency and requests/s
  post 1,000   POST of an envelope of 1,000 new indicators: latency and objects/s
With N clients every client does the same work at once; rates are totals over
all clients, latencies are medians of every request. Each measurement is
repeated `--repeat` times and reported as a range (the machine is shared).

Goals (issue 3): first page at 1,000,000 objects no more than 2x slower than
at 1,000 (the smallest medallion size is loaded into threatmesh too, as the
reference point: it holds the bundle's first objects, so both first pages are
the same 1,000 ATT&CK objects); full walk of 1,000,000 at >= 50,000 objects/s; >= 100x
medallion's full-walk rate at 3,000 objects. For reference, medallion 3.0.0
took 268 s for the first page of a 10,000-object collection.

    .venv/bin/python bench/taxii.py [--sizes 100000,1000000] [--medallion-sizes 1000,3000]
        [--clients 1,8] [--repeat 3] [--skip-medallion] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "attack" / "enterprise-attack-18.1-stix21-converted.json"
ACCEPT = "application/taxii+json;version=2.1"
TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
PAGE = 1000
MEDALLION_USER, MEDALLION_PASSWORD = "bench", "bench-password"


# -- generated data -------------------------------------------------------------------

def make_indicator(n: int, salt: str = "") -> dict[str, Any]:
    """A realistic, distinct, TLP:CLEAR indicator; the same (n, salt) gives the same object."""
    ident = uuid.UUID(bytes=hashlib.md5(f"{salt}/{n}".encode()).digest(), version=4)
    octets = (n >> 16 & 255, n >> 8 & 255, n & 255)
    day = n % 28 + 1
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{ident}",
        "created": f"2024-02-{day:02d}T08:{n % 60:02d}:{n // 60 % 60:02d}.000Z",
        "modified": f"2024-02-{day:02d}T08:{n % 60:02d}:{n // 60 % 60:02d}.000Z",
        "name": f"C2 server 10.{octets[0]}.{octets[1]}.{octets[2]}",
        "description": "Command-and-control address seen in a ransomware intrusion at a hospital.",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '10.{octets[0]}.{octets[1]}.{octets[2]}']",
        "pattern_type": "stix",
        "valid_from": f"2024-02-{day:02d}T08:00:00Z",
        "labels": ["c2", "ransomware"],
        "confidence": 70,
        "object_marking_refs": [TLP_CLEAR],
    }


# -- servers ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], auth: Any = None, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, headers={"Accept": ACCEPT}, auth=auth, timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Target:
    label: str
    size: int
    objects_url: str  # .../collections/ID/objects/
    headers: dict[str, str]
    auth: tuple[str, str] | None
    ids: list[str]  # object ids to GET one by one
    limit_on_next: bool = False  # medallion 3.0.0 answers 500 to `next` without `limit`


def build_threatmesh_node(home: Path, size: int) -> tuple[str, str, list[str]]:
    """A node with ATT&CK plus generated indicators up to `size` objects in one collection.

    Returns (admin key, collection id, a sample of object ids)."""
    from threatmesh.ingest.pipeline import ingest_paths
    from threatmesh.node import init_node
    from threatmesh.stix.parse import parse_object

    created = init_node(home, f"bench {size:,}", environ={})
    node = created.node
    try:
        collection = node.default_collection.id
        held = sum(1 for _ in node.store.iter_objects(collection))
        if CORPUS.exists() and size >= 50_000:
            ingest_paths([str(CORPUS)], node.store, collection_id=collection)
            held = sum(1 for _ in node.store.iter_objects(collection))
        elif CORPUS.exists():
            # A small store holds the bundle's first objects, in bundle order: its
            # first page is then the same 1,000 objects as the big stores' first
            # page, so the latency ratio compares collection sizes, not page sizes.
            head = orjson.loads(CORPUS.read_bytes())["objects"][: size - held]
            node.store.put_objects([parse_object(raw) for raw in head], collection_id=collection, source="bench")
            held += len(head)
        batch: list[Any] = []
        n = 0
        while held < size:
            batch.append(parse_object(make_indicator(n, "load")))
            n += 1
            if len(batch) == 10_000 or held + len(batch) >= size:
                node.store.put_objects(batch, collection_id=collection, source="bench")
                held += len(batch)
                batch = []
        ids = [v.id for v in node.store.iter_objects(collection)]
    finally:
        node.close()
    return created.admin_key, collection, random.Random(size).sample(ids, min(len(ids), 2000))


class ThreatmeshServer:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ThreatmeshServer:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "threatmesh.cli", "--home", str(self.home), "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        wait_until_up(f"http://127.0.0.1:{self.port}/health", self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(30)


class MedallionServer:
    def __init__(self, workdir: Path, size: int) -> None:
        self.workdir = workdir
        self.size = size
        self.port = free_port()
        self.collection = str(uuid.UUID(int=size, version=4))
        self.process: subprocess.Popen[bytes] | None = None
        self.ids: list[str] = []

    def __enter__(self) -> MedallionServer:
        objects = [make_indicator(n, "medallion") for n in range(self.size)]
        self.ids = [o["id"] for o in objects]
        manifest = [
            {"id": o["id"], "date_added": f"2024-03-01T00:{n // 60_000_000 % 60:02d}:{n // 1_000_000 % 60:02d}."
                                          f"{n % 1_000_000:06d}Z",
             "version": o["modified"], "media_type": "application/stix+json;version=2.1"}
            for n, o in enumerate(objects)
        ]
        root = f"http://127.0.0.1:{self.port}/api1/"
        data = {
            "/discovery": {"title": "medallion", "default": root, "api_roots": [root]},
            "api1": {
                "information": {"title": "bench", "versions": [ACCEPT], "max_content_length": 100_000_000},
                "status": [],
                "collections": [{"id": self.collection, "title": "bench", "can_read": True, "can_write": True,
                                 "media_types": ["application/stix+json;version=2.1"],
                                 "objects": objects, "manifest": manifest}],
            },
        }
        data_file = self.workdir / f"medallion-{self.size}.json"
        data_file.write_text(json.dumps(data))
        config = self.workdir / f"medallion-{self.size}-config.json"
        config.write_text(json.dumps({
            # A long session timeout: a slow walk must not lose its `next` token half way.
            "backend": {"module_class": "MemoryBackend", "module": "medallion.backends.memory_backend",
                        "filename": str(data_file), "session_timeout": 36_000},
            "users": {MEDALLION_USER: MEDALLION_PASSWORD},
            "taxii": {"max_page_size": PAGE},
        }))
        executable = shutil.which("medallion", path=str(Path(sys.executable).parent)) or "medallion"
        self.process = subprocess.Popen(
            [executable, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "ERROR", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until_up(f"http://127.0.0.1:{self.port}/taxii2/", self.process, auth=(MEDALLION_USER, MEDALLION_PASSWORD))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(30)

    def target(self) -> Target:
        return Target(f"medallion {self.size:,}", self.size,
                      f"http://127.0.0.1:{self.port}/api1/collections/{self.collection}/objects/",
                      {"Accept": ACCEPT}, (MEDALLION_USER, MEDALLION_PASSWORD), self.ids, limit_on_next=True)


# -- client work (runs in worker processes) ------------------------------------------

def _check(answer: Any, target: Target) -> None:
    # A plain RuntimeError: httpx's own errors do not survive the trip back from a worker process.
    if answer.status_code >= 400:
        raise RuntimeError(f"{target.label}: {answer.request.method} {answer.request.url} answered "
                           f"{answer.status_code}: {answer.text[:300]}")


def _client(target: Target) -> Any:
    import httpx

    return httpx.Client(headers=target.headers, auth=target.auth, timeout=3600)


def work_first_page(target: Target, rounds: int) -> tuple[list[float], int]:
    latencies = []
    with _client(target) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            answer = client.get(target.objects_url, params={"limit": PAGE})
            _check(answer, target)
            count = len(orjson.loads(answer.content).get("objects", []))
            latencies.append(time.perf_counter() - started)
    return latencies, count * rounds


def first_page_pair(reference: Target, target: Target, rounds: int) -> tuple[float, float, int, int]:
    """Median first-page latency of two servers, one request to each in turn.

    Alternating the two cancels the drift of a shared machine's load, which
    separate runs minutes apart do not. Returns (reference s, target s, and
    the bytes of each page)."""
    ours: list[float] = []
    theirs: list[float] = []
    sizes = [0, 0]
    with _client(reference) as ref_client, _client(target) as client:
        for n in range(rounds):
            for which, (c, t, into) in enumerate(((ref_client, reference, theirs), (client, target, ours))):
                started = time.perf_counter()
                answer = c.get(t.objects_url, params={"limit": PAGE})
                _check(answer, t)
                orjson.loads(answer.content)
                if n:  # the first round warms both servers up
                    into.append(time.perf_counter() - started)
                sizes[which] = len(answer.content)
    return statistics.median(theirs), statistics.median(ours), sizes[0], sizes[1]


def work_walk(target: Target, rounds: int) -> tuple[list[float], int]:
    seen = 0
    latencies = []
    with _client(target) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            params: dict[str, Any] = {"limit": PAGE}
            ids: set[str] = set()
            while True:
                answer = client.get(target.objects_url, params=params)
                _check(answer, target)
                body = orjson.loads(answer.content)
                for obj in body.get("objects", []):
                    ids.add(obj["id"])
                if not body.get("more"):
                    break
                params = {"next": body["next"], **({"limit": PAGE} if target.limit_on_next else {})}
            latencies.append(time.perf_counter() - started)
            if len(ids) != target.size:
                raise RuntimeError(f"{target.label}: the walk saw {len(ids)} distinct objects, not {target.size}")
            seen += len(ids)
    return latencies, seen


def work_get_by_id(target: Target, rounds: int, seed: int) -> tuple[list[float], int]:
    chooser = random.Random(seed)
    latencies = []
    with _client(target) as client:
        for _ in range(rounds):
            object_id = chooser.choice(target.ids)
            started = time.perf_counter()
            answer = client.get(f"{target.objects_url}{object_id}/")
            _check(answer, target)
            latencies.append(time.perf_counter() - started)
    return latencies, rounds


def work_post(target: Target, rounds: int, seed: int) -> tuple[list[float], int]:
    latencies = []
    headers = {"Content-Type": ACCEPT}
    with _client(target) as client:
        for r in range(rounds):
            body = json.dumps({"objects": [make_indicator(n, f"post-{seed}-{r}-{time.time_ns()}")
                                           for n in range(1000)]}).encode()
            started = time.perf_counter()
            answer = client.post(target.objects_url, content=body, headers=headers)
            _check(answer, target)
            latencies.append(time.perf_counter() - started)
            status = answer.json()
            if status.get("success_count") != 1000:
                raise RuntimeError(f"{target.label}: POST stored {status.get('success_count')} of 1000")
    return latencies, 1000 * rounds


WORK: dict[str, Callable[..., tuple[list[float], int]]] = {
    "first_page": work_first_page, "walk": work_walk, "get_by_id": work_get_by_id, "post": work_post,
}


def _run_one(kind: str, target: Target, rounds: int, seed: int) -> tuple[list[float], int, float, float]:
    started = time.perf_counter()
    if kind in ("get_by_id", "post"):
        latencies, count = WORK[kind](target, rounds, seed)
    else:
        latencies, count = WORK[kind](target, rounds)
    return latencies, count, started, time.perf_counter()


@dataclass
class Measure:
    latency_s: list[float] = field(default_factory=list)  # median latency, per repetition
    rate: list[float] = field(default_factory=list)  # objects (or requests) per second, per repetition

    def show(self, unit: str) -> str:
        def span(values: list[float], fmt: str) -> str:
            if not values:
                return "-"
            lo, hi = min(values), max(values)
            return fmt.format(lo) if len(values) == 1 or lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"

        latency = span([v * 1000 for v in self.latency_s], "{:,.1f}")
        return f"{latency} ms, {span(self.rate, '{:,.0f}')} {unit}"


def measure(pool: ProcessPoolExecutor, kind: str, target: Target, clients: int, rounds: int,
            repeat: int) -> Measure:
    result = Measure()
    for rep in range(repeat):
        futures = [pool.submit(_run_one, kind, target, rounds, rep * 1000 + c) for c in range(clients)]
        outcomes = [f.result() for f in futures]
        latencies = [lat for o in outcomes for lat in o[0]]
        count = sum(o[1] for o in outcomes)
        wall = max(o[3] for o in outcomes) - min(o[2] for o in outcomes)
        result.latency_s.append(statistics.median(latencies))
        result.rate.append(count / wall if wall else 0.0)
    return result


@dataclass
class Plan:
    first_page_rounds: int
    walk_rounds: int
    get_rounds: int
    post_rounds: int
    repeat: int


UNITS = {"first_page": "objects/s", "walk": "objects/s", "get_by_id": "requests/s", "post": "objects/s"}


def bench_target(pool: ProcessPoolExecutor, target: Target, clients: list[int], plan: Plan,
                 results: dict[str, Any]) -> None:
    # Reads for every client count first, POSTs last: they grow the collection.
    steps = [(kind, rounds) for kind, rounds in (("first_page", plan.first_page_rounds), ("walk", plan.walk_rounds),
                                                  ("get_by_id", plan.get_rounds)) if rounds > 0]
    for kind, rounds in [*((k, r) for k, r in steps), ("post", plan.post_rounds)]:
        for n in clients:
            if rounds <= 0:
                continue
            row = results.setdefault(f"{target.label}|{n}", {})
            try:
                found = measure(pool, kind, target, n, rounds, plan.repeat)
            except Exception as exc:  # a server that fails is reported, and the run goes on
                print(f"  {target.label:>22} {n} client{'s' if n > 1 else ' '} {kind:<10} FAILED: {exc}"[:400],
                      flush=True)
                row[kind] = {"error": str(exc)[:1000]}
                continue
            row[kind] = {"latency_s": found.latency_s, "rate": found.rate}
            print(f"  {target.label:>22} {n} client{'s' if n > 1 else ' '} {kind:<10} {found.show(UNITS[kind])}",
                  flush=True)
            if kind == "post":  # a later walk must see these too
                target.size += n * rounds * 1000 * plan.repeat


def _best(results: dict[str, Any], label: str, clients: int, kind: str, field_name: str) -> float | None:
    entry = results.get(f"{label}|{clients}", {}).get(kind)
    if not entry or "error" in entry:
        return None
    values = entry[field_name]
    return min(values) if field_name == "latency_s" else max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="threatmesh collection sizes")
    parser.add_argument("--medallion-sizes", default="1000,3000", help="medallion collection sizes")
    parser.add_argument("--clients", default="1,8", help="numbers of concurrent clients")
    parser.add_argument("--medallion-clients", default="1,8",
                        help="concurrent clients against medallion (8 takes minutes per request at 3,000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each threatmesh measurement")
    parser.add_argument("--medallion-repeat", type=int, default=1, help="repetitions of each medallion measurement")
    parser.add_argument("--skip-medallion", action="store_true")
    parser.add_argument("--workdir", default=None, help="where nodes are built (default: a temporary directory)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    medallion_sizes = [] if args.skip_medallion else [int(s) for s in args.medallion_sizes.split(",") if s]
    clients = [int(c) for c in args.clients.split(",") if c]
    medallion_clients = [int(c) for c in args.medallion_clients.split(",") if c]
    reference = min(medallion_sizes) if medallion_sizes else 1000
    results: dict[str, Any] = {}

    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tm-bench-taxii-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"threatmesh TAXII benchmark; cpus={os.cpu_count()}; work in {tmp}", flush=True)
    paired: dict[int, tuple[float, float, int, int]] = {}
    try:
        with ProcessPoolExecutor(max(clients + medallion_clients)) as pool, contextlib.ExitStack() as keep:
            reference_target: Target | None = None
            for size in sorted({reference, *sizes}):
                home = tmp / f"node-{size}"
                started = time.perf_counter()
                key, collection, ids = build_threatmesh_node(home, size)
                db = home / "threatmesh.db"
                print(f"threatmesh {size:,}: loaded in {time.perf_counter() - started:,.1f} s "
                      f"({db.stat().st_size / 1e6 if db.exists() else 0:,.0f} MB)", flush=True)
                with contextlib.ExitStack() as this:
                    # The reference server stays up for the whole run, so that each
                    # bigger store's first page is timed against it in alternation.
                    server = (keep if size == reference else this).enter_context(ThreatmeshServer(home))
                    target = Target(
                        f"threatmesh {size:,}", size,
                        f"http://127.0.0.1:{server.port}/taxii2/default/collections/{collection}/objects/",
                        {"Accept": ACCEPT, "Authorization": f"Bearer {key}"}, None, ids)
                    plan = Plan(first_page_rounds=20, walk_rounds=1, get_rounds=300, post_rounds=3,
                                repeat=args.repeat)
                    bench_target(pool, target, clients, plan, results)
                    if size == reference:
                        reference_target = target
                    elif reference_target is not None:
                        paired[size] = first_page_pair(reference_target, target, 41)
                        ref_s, ours_s, ref_bytes, our_bytes = paired[size]
                        print(f"  first page, alternating: {ref_s * 1000:,.1f} ms at {reference:,} "
                              f"({ref_bytes / 1e6:,.2f} MB), {ours_s * 1000:,.1f} ms at {size:,} "
                              f"({our_bytes / 1e6:,.2f} MB)", flush=True)
                if size != reference:
                    shutil.rmtree(home, ignore_errors=True)
            for size in medallion_sizes:
                with MedallionServer(tmp, size) as server:
                    print(f"medallion {size:,}: loaded", flush=True)
                    plan = Plan(first_page_rounds=1, walk_rounds=1, get_rounds=20, post_rounds=1,
                                repeat=args.medallion_repeat)
                    bench_target(pool, server.target(), medallion_clients, plan, results)
    finally:
        if not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\nratios (best figure of each range):")
    first_ref = _best(results, f"threatmesh {reference:,}", 1, "first_page", "latency_s")
    for size in sizes:
        label = f"threatmesh {size:,}"
        first = _best(results, label, 1, "first_page", "latency_s")
        walk = _best(results, label, 1, "walk", "rate")
        if size in paired:
            ref_s, ours_s, _, _ = paired[size]
            print(f"  first page at {size:,} / at {reference:,}, alternating requests: {ours_s / ref_s:.2f}x"
                  "  (goal <= 2x)")
        if first and first_ref:
            print(f"  first page at {size:,} / at {reference:,}, separate runs: {first / first_ref:.2f}x")
        if walk:
            print(f"  full walk at {size:,}: {walk:,.0f} objects/s  (goal >= 50,000 at 1,000,000)")
    largest = f"threatmesh {max(sizes):,}"
    for size in medallion_sizes:
        for n in medallion_clients:
            for kind, field_name in (("first_page", "latency_s"), ("walk", "rate"), ("get_by_id", "latency_s"),
                                     ("post", "latency_s")):
                theirs = _best(results, f"medallion {size:,}", n, kind, field_name)
                ours = _best(results, largest, n, kind, field_name)
                if theirs and ours:
                    ratio = ours / theirs if field_name == "rate" else theirs / ours
                    print(f"  {kind:<10} {n} client{'s' if n > 1 else ' '}: {largest} vs medallion {size:,}: "
                          f"{ratio:,.1f}x {'better' if ratio >= 1 else 'worse'}"
                          + ("  (goal >= 100x at 3,000)" if kind == "walk" and size == 3000 else ""))
    if args.json_out:
        results["first_page_alternating"] = {
            str(size): {"reference_s": r, "size_s": o, "reference_bytes": rb, "size_bytes": ob}
            for size, (r, o, rb, ob) in paired.items()}
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
