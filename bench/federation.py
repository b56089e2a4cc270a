"""Federation benchmark: ten real nodes sharing over TAXII 2.1, line and hub topologies.

Every node is a `threatmesh serve` process with its own SQLite file and port on
127.0.0.1 (the harness of tests/federation/mesh.py). Objects (TLP:CLEAR
indicators, so that all of them must reach every node) are spread round-robin
among the nodes once every node is up; the clock starts then, and the nodes
share while their objects are being stored (each node's share by a process of
its own, forked from this one). The seeders and this process's polls of the
nodes' holdings are printed as "seeding and watching" CPU.

In the same run, per topology:
  threatmesh   the serve sync loop (push on new objects, incremental pulls)
  naive        sync loops off; every round, every node pulls the whole collection
               of every neighbour and stores it, until a round brings nothing new
and for each: seconds until every node holds every object, and bytes on the
wire (HTTP bodies and URLs, both directions), against the bytes that had to
move: in a tree every object crosses every link exactly once, so
size(all objects) x (nodes - 1). Then, on the line with threatmesh's loop,
the latency of one new indicator across three hops.

Goals (issue 4): converge in under a minute, bytes within 1.5x of what had to
move, one new indicator across three hops in under 5 s.

How bytes are counted: each node's sync client adds up, per peer, the bodies it
sends and receives and the URLs it requests (pushes, their status answers,
pulls, discovery); HTTP headers are not counted, and nothing is compressed. The
naive strategy is counted the same way (response bodies and URLs). The signed
batch manifests and the status answers are in the count: they are the overhead.

CPU: the CPU seconds (user + system) of all node processes of a run, read from
/proc (for threatmesh, less what they used to start), beside the wall time,
since the machine is shared.

Indexes: a node stores and forwards what peers send at once, and writes its
full-text, observable and match-key rows once it is quiet (a search or match
indexes them first; store/sqlite_index.py). Convergence is when every node
holds every object; the run also prints when every node's indexes are
complete, and its CPU figure includes that indexing.

    .venv/bin/python bench/federation.py [--scale 100000] [--nodes 10] [--topologies line,hub] [--skip-naive]
                                         [--progress SECONDS]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.federation.mesh import Link, Mesh, MeshNode, indicator  # noqa: E402

from threatmesh.node import open_node  # noqa: E402
from threatmesh.stix.parse import parse_object  # noqa: E402
from threatmesh.store.sqlite import SQLiteStore  # noqa: E402

MEDIA = "application/taxii+json;version=2.1"


def topology(shape: str, names: list[str]) -> list[Link]:
    if shape == "line":
        return [Link(names[i], names[i + 1]) for i in range(len(names) - 1)]
    if shape == "hub":
        return [Link(names[0], n) for n in names[1:]]
    raise SystemExit(f"unknown topology {shape}")


def count(node: MeshNode) -> int:
    conn = sqlite3.connect(f"file:{node.db}?mode=ro", uri=True, timeout=30)
    try:
        (n,) = conn.execute("SELECT count(*) FROM memberships WHERE collection_id = ?",
                            (node.collection_id,)).fetchone()
    finally:
        conn.close()
    return int(n)


def seed(mesh: Mesh, objects: list[dict[str, Any]]) -> None:
    """Spread the objects round-robin and store each node's share at that node, all at once.

    Each share is stored by its own process, forked from this one (as each organisation
    ingests its own intelligence): ten threads of this process contended for one
    interpreter lock and spent about twice the CPU of the work itself, taken from the
    nodes being measured."""
    names = list(mesh.nodes)
    shares: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for i, obj in enumerate(objects):
        shares[names[i % len(names)]].append(obj)

    def put(name: str) -> None:
        node = open_node(mesh.nodes[name].home, environ={})
        try:
            parsed = [parse_object(o) for o in shares[name]]
            for start in range(0, len(parsed), 5000):
                node.store.put_objects(parsed[start:start + 5000], collection_id=node.default_collection.id,
                                       source="bench")
        finally:
            node.close()

    forking = multiprocessing.get_context("fork")
    workers = [forking.Process(target=put, args=(n,)) for n in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [name for name, worker in zip(names, workers) if worker.exitcode != 0]
    if failed:
        raise SystemExit(f"seeding failed at {', '.join(failed)}")


def children_cpu_seconds() -> float:
    """CPU seconds of this process's children that have ended (the seeders; the nodes
    are still running while a run is measured)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Holdings:
    """How many versions each node's collection holds, counted as the nodes work.

    A full count(*) of 100,000 memberships takes about 4 ms; ten nodes polled four
    times a second kept a sixth of a core busy in this process, taken from the nodes
    being measured. Each poll counts only what joined since the last one (the
    collection's date_added index; dates are handed out in commit order, and the
    benchmark deletes nothing), over one open connection per node."""

    def __init__(self, mesh: Mesh) -> None:
        self.nodes = list(mesh.nodes.values())
        self.conns = [sqlite3.connect(f"file:{node.db}?mode=ro", uri=True, timeout=30) for node in self.nodes]
        self.counts = [0] * len(self.nodes)
        self.after = [-1] * len(self.nodes)

    def poll(self) -> list[int]:
        for i, (node, conn) in enumerate(zip(self.nodes, self.conns)):
            n, newest = conn.execute(
                "SELECT count(*), max(date_added) FROM memberships WHERE collection_id = ? AND date_added > ?",
                (node.collection_id, self.after[i])).fetchone()
            if n:
                self.counts[i] += int(n)
                self.after[i] = int(newest)
        return list(self.counts)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def wait_converged(mesh: Mesh, target: int, timeout: float, progress: float = 0.0) -> float | None:
    """Seconds until every node holds `target` objects; None after `timeout`. With `progress`,
    every that many seconds a line: how much of the work is done, and how many cores the
    nodes and the whole machine kept busy since the last line (the shape of a run: ramp,
    plateau, tail; and whether the nodes wait, or other work holds the cores)."""
    start = time.monotonic()
    holdings = Holdings(mesh)
    try:
        waited = _wait(mesh, holdings, target, timeout, progress, start)
        if waited is not None and holdings.poll() != [count(node) for node in mesh.nodes.values()]:
            # Everything has arrived, so the two must agree: a check of the shortcut.
            raise SystemExit("the incremental count of holdings disagrees with count(*)")
        return waited
    finally:
        holdings.close()


def _wait(mesh: Mesh, holdings: Holdings, target: int, timeout: float, progress: float,
          start: float) -> float | None:
    last_at, last_each, last_busy = start, each_node_cpu_seconds(mesh), machine_busy_seconds()
    while time.monotonic() - start < timeout:
        counts = holdings.poll()
        if all(n >= target for n in counts):
            return time.monotonic() - start
        now = time.monotonic()
        if progress and now - last_at >= progress:
            each, busy = each_node_cpu_seconds(mesh), machine_busy_seconds()
            span = now - last_at
            used = {name: (cpu - last_each.get(name, 0.0)) / span for name, cpu in each.items()}
            top = max(used, key=lambda name: used[name])
            print(f"  {now - start:6.1f} s: {sum(counts) / (target * len(counts)):6.1%} held, nodes busy "
                  f"{sum(used.values()):.2f} cores (the busiest, {top}, {used[top]:.2f}), the machine "
                  f"{(busy - last_busy) / span:.2f} of {os.cpu_count()}", flush=True)
            last_at, last_each, last_busy = now, each, busy
        time.sleep(0.25)
    return None


def wait_indexed(mesh: Mesh, timeout: float) -> float | None:
    """Seconds until every node's search and match indexes hold everything it stored (a
    node indexes what peers sent once it is quiet: store/sqlite_index.py); None after
    `timeout`. Read-only stores: they read the lag and write nothing."""
    start = time.monotonic()
    stores = [SQLiteStore(node.db, readonly=True) for node in mesh.nodes.values()]
    try:
        while time.monotonic() - start < timeout:
            if not any(store.index_lag() for store in stores):
                return time.monotonic() - start
            time.sleep(0.1)
        return None
    finally:
        for store in stores:
            store.close()


def node_cpu_seconds(mesh: Mesh) -> float:
    """User + system CPU seconds of the running node processes (Linux /proc)."""
    return sum(each_node_cpu_seconds(mesh).values())


def each_node_cpu_seconds(mesh: Mesh) -> dict[str, float]:
    found: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for name, node in mesh.nodes.items():
        if node.proc is None:
            continue
        try:
            fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loop_bytes(mesh: Mesh) -> int:
    return sum(v for k, v in loop_totals(mesh).items() if k.startswith("bytes_"))


def loop_totals(mesh: Mesh) -> dict[str, int]:
    """Sums over every node and peer of the sync state: versions sent (pushed and accepted),
    received (new), and bytes each way."""
    totals = {"sent": 0, "received": 0, "bytes_sent": 0, "bytes_received": 0}
    for node in mesh.nodes.values():
        with SQLiteStore(node.db, readonly=True) as store:
            for peer in store.list_peers():
                state = store.get_sync_state(peer.name)
                for key in totals:
                    totals[key] += int(getattr(state, key))
    return totals


def run_threatmesh(base: Path, shape: str, names: list[str], objects: list[dict[str, Any]],
                   timeout: float, progress: float = 0.0) -> dict[str, Any]:
    mesh = Mesh(base / f"tm-{shape}", names, topology(shape, names), {})
    try:
        mesh.start()
        each_at_start = each_node_cpu_seconds(mesh)
        cpu_at_start = sum(each_at_start.values())  # start-up (imports, opening the store) is not the sync's
        own_cpu = time.process_time() + children_cpu_seconds()  # this process and its seeders
        started = time.monotonic()
        seed(mesh, objects)
        seeded = time.monotonic() - started
        # Each node also holds its own identity, which (unmarked: AMBER by default) stays home.
        waited = wait_converged(mesh, len(objects) + 1, timeout, progress)
        cpu_converged = node_cpu_seconds(mesh) - cpu_at_start
        indexed = wait_indexed(mesh, 120) if waited is not None else None
        cpu_indexed = node_cpu_seconds(mesh) - cpu_at_start
        # A round's bytes are recorded when the round ends, which can be just after the last
        # object landed: let the rounds finish before counting.
        time.sleep(5)
        result: dict[str, Any] = {"seconds": None if waited is None else seeded + waited, "seed_seconds": seeded,
                                  "indexed_seconds": None if waited is None or indexed is None
                                  else seeded + waited + indexed,
                                  "bytes": loop_bytes(mesh), "cpu": cpu_converged, "cpu_indexed": cpu_indexed,
                                  "totals": loop_totals(mesh),
                                  "harness_cpu": time.process_time() + children_cpu_seconds() - own_cpu,
                                  "busiest": max((cpu - each_at_start.get(name, 0.0), name)
                                                 for name, cpu in each_node_cpu_seconds(mesh).items())}
        if shape == "line" and len(names) >= 4:
            new = indicator("bench-latency-probe", "clear")
            far = mesh.nodes[names[3]]
            t0 = time.monotonic()
            mesh.nodes[names[0]].seed([new], source="bench")
            deadline = t0 + 60
            latency = None
            while time.monotonic() < deadline:
                if (new["id"], new["modified"]) in far.holdings():
                    latency = time.monotonic() - t0
                    break
                time.sleep(0.05)
            result["three_hops_seconds"] = latency
        return result
    finally:
        mesh.close()


def naive_round(mesh: Mesh, node: MeshNode, sizes: list[int]) -> int:
    """One naive round for one node: the whole collection of each neighbour, stored; how many were new."""
    new = 0
    store = open_node(node.home, environ={})
    try:
        for other_name, _ in mesh.neighbours(node.name):
            other = mesh.nodes[other_name]
            url = f"{other.url}collections/{other.collection_id}/objects/"
            headers = {"Accept": MEDIA, "Authorization": f"Bearer {other.admin_key}"}
            params: dict[str, str] = {"limit": "10000"}
            while True:
                response = requests.get(url, params=params, headers=headers, timeout=300)
                response.raise_for_status()
                sizes.append(len(response.content) + len(response.request.url or ""))
                body = orjson.loads(response.content)
                parsed = [parse_object(o) for o in body.get("objects", []) if not o["id"].startswith("identity--")]
                results = store.store.put_objects(parsed, collection_id=store.default_collection.id,
                                                  source=f"peer:{other_name}")
                new += sum(1 for r in results if r.outcome.value != "unchanged")
                if not body.get("more"):
                    break
                params = {"limit": "10000", "next": body["next"]}
    finally:
        store.close()
    return new


def run_naive(base: Path, shape: str, names: list[str], objects: list[dict[str, Any]],
              timeout: float) -> dict[str, Any]:
    mesh = Mesh(base / f"naive-{shape}", names, topology(shape, names), {})
    try:
        for node in mesh.nodes.values():
            node.start(extra_args=["--no-sync"])
        for node in mesh.nodes.values():
            node.wait_ready()
        started = time.monotonic()
        cpu_before = time.process_time() + children_cpu_seconds()  # the seeders, and the naive rounds here
        seed(mesh, objects)
        sizes: list[int] = []
        rounds = 0
        while time.monotonic() - started < timeout:
            rounds += 1
            counts = [0] * len(names)

            def work(i: int, node: MeshNode) -> None:
                counts[i] = naive_round(mesh, node, sizes)

            threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate(mesh.nodes.values())]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if all(count(node) >= len(objects) + 1 for node in mesh.nodes.values()):
                break
        converged = all(count(node) >= len(objects) + 1 for node in mesh.nodes.values())
        return {"seconds": (time.monotonic() - started) if converged else None, "bytes": sum(sizes),
                "rounds": rounds,
                "cpu": node_cpu_seconds(mesh) + time.process_time() + children_cpu_seconds() - cpu_before}
    finally:
        mesh.close()


def main() -> None:
    # A SIGTERM (timeout, Ctrl-C in a wrapper) unwinds through the `finally`s that stop the nodes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100_000, help="objects spread among the nodes")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--topologies", default="line,hub")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on convergence after this long")
    parser.add_argument("--progress", type=float, default=0.0, metavar="SECONDS",
                        help="while threatmesh converges, print progress and the cores its nodes use this often")
    args = parser.parse_args()

    names = [f"n{i}" for i in range(args.nodes)]
    objects = [indicator(f"bench-{i}", "clear", description=f"benchmark object {i}") for i in range(args.scale)]
    payload = sum(len(orjson.dumps(o)) for o in objects)
    must_move = payload * (args.nodes - 1)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{args.nodes} nodes, {args.scale:,} objects ({payload / 1e6:.1f} MB); in a tree each crosses "
          f"{args.nodes - 1} links: {must_move / 1e6:.1f} MB must move")
    with tempfile.TemporaryDirectory(prefix="tm-bench-fed-") as tmp:
        base = Path(tmp)
        for shape in args.topologies.split(","):
            ours = run_threatmesh(base, shape, names, objects, args.timeout, args.progress)
            converged = "DID NOT CONVERGE" if ours["seconds"] is None else f"{ours['seconds']:.1f} s"
            line = (f"{shape:5} threatmesh: converged in {converged} (seeding {ours['seed_seconds']:.1f} s of it), "
                    f"{ours['bytes'] / 1e6:.1f} MB on the wire = {ours['bytes'] / must_move:.2f}x what had to move; "
                    f"nodes' CPU after start-up until then {ours['cpu']:.1f} s "
                    f"({ours['cpu'] / (len(objects) * (len(names) - 1)) * 1e6:.0f} µs per object per hop); "
                    f"busiest node {ours['busiest'][1]} {ours['busiest'][0]:.1f} s; "
                    f"seeding and watching {ours['harness_cpu']:.1f} s")
            print(line)
            searchable = ("(not within 120 s)" if ours["indexed_seconds"] is None
                          else f"{ours['indexed_seconds']:.1f} s")
            hops = len(objects) * (len(names) - 1)
            print(f"{shape:5} threatmesh: every node's search and match indexes complete at {searchable} "
                  "(a node indexes what peers sent once it is quiet; a read indexes it first); nodes' CPU "
                  f"until then {ours['cpu_indexed']:.1f} s ({ours['cpu_indexed'] / hops * 1e6:.0f} µs per object "
                  "per hop)")
            totals = ours["totals"]
            print(f"{shape:5} threatmesh: versions pushed and accepted {totals['sent']:,} (a tree needs "
                  f"{len(objects) * (len(names) - 1):,}), received as new {totals['received']:,} by pulls; "
                  f"bytes sent {totals['bytes_sent'] / 1e6:.1f} MB, received {totals['bytes_received'] / 1e6:.1f} MB")
            if "three_hops_seconds" in ours:
                hops = ours["three_hops_seconds"]
                print(f"{shape:5} threatmesh: one new indicator across 3 hops in "
                      f"{'(not seen in 60 s)' if hops is None else f'{hops:.2f} s'}")
            if not args.skip_naive:
                naive = run_naive(base, shape, names, objects, args.timeout)
                seconds = "DID NOT CONVERGE" if naive["seconds"] is None else f"{naive['seconds']:.1f} s"
                print(f"{shape:5} naive:      converged in {seconds} over {naive['rounds']} rounds, "
                      f"{naive['bytes'] / 1e6:.1f} MB on the wire = {naive['bytes'] / must_move:.2f}x what had to move; "
                      f"CPU {naive['cpu']:.0f} s (nodes and the naive puller)")
                if ours["seconds"] and naive["seconds"]:
                    print(f"{shape:5} naive / threatmesh: time {naive['seconds'] / ours['seconds']:.1f}x, "
                          f"bytes {naive['bytes'] / max(ours['bytes'], 1):.1f}x")
            sys.stdout.flush()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
