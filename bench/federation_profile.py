"""Where a push's CPU goes, per object and hop: sender and receiver, by stage.

Three nodes in one process, a - b - c: b and c serve TAXII over real HTTP on
127.0.0.1 (uvicorn in a thread each), a is seeded with N TLP:CLEAR indicators
and pushes them to b (an author's push), then b pushes what it received to c
(a forward, as every middle node of a line does). With --hub, a pushes to b
and then the same versions to c, as a hub does to its spokes. Each push is one
`sync_peer` round in this thread, so the sender's CPU is this thread's CPU
time, and the receiver's is the rest of the process's over the same span (the
server's event loop and worker threads, which run while the sender waits).

--stages: CPU time inside the main steps of each side (light wrappers).
--profile: cProfile over the sender (this thread) and over the receiver's
`_store_envelope` (each request's worker thread, one at a time).
`threatmesh serve` collects cyclic garbage every few seconds instead of
automatically (threatmesh.collector); to measure as it runs, pass --paced
(--freeze and --gc-threshold N try other settings). The objects this script
holds (the seeds) make the automatic collector costlier here than in a node,
so the gain shown is larger than a node's.

    .venv/bin/python bench/federation_profile.py [--scale 10000] [--stages] [--paced]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from tests.federation.mesh import Link, Mesh, indicator  # noqa: E402

from threatmesh.collector import PacedCollector  # noqa: E402
from threatmesh.federation.node_sync import context_for  # noqa: E402
from threatmesh.federation.sync import sync_peer  # noqa: E402
from threatmesh.node import open_node  # noqa: E402
from threatmesh.stix.parse import parse_object  # noqa: E402
from threatmesh.taxii import server as taxii_server  # noqa: E402
from threatmesh.web.app import create_app  # noqa: E402


class GcClock:
    """CPU time spent in the cyclic garbage collector (all threads), by generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.seconds[info["generation"]] += time.thread_time() - self._start
            self.counts[info["generation"]] += 1

    def take(self) -> str:
        text = ", ".join(f"gen{g} {self.counts[g]}x {self.seconds[g]:.3f} s" for g in range(3))
        self.seconds, self.counts = [0.0, 0.0, 0.0], [0, 0, 0]
        return text


GC = GcClock()
CONTEXTS: dict[int, Any] = {}
SORT = "cumulative"


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(node: Any, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_app(node.settings, node.store), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


class ReceiverProfile:
    """cProfile over the receiver's `_store_envelope`, one request at a time."""

    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.original = taxii_server.TaxiiServer._store_envelope
        self.lock = threading.Lock()

    def install(self) -> None:
        original, profile, lock = self.original, self.profile, self.lock

        def wrapped(server: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                profile.enable()
                try:
                    return original(server, *args, **kwargs)
                finally:
                    profile.disable()

        taxii_server.TaxiiServer._store_envelope = wrapped  # type: ignore[method-assign,assignment]


class Stages:
    """CPU time (of the calling thread) spent inside chosen functions, by name.

    Wrappers are installed by replacing module or class attributes; a stage
    nested in another counts in both (the report says which nest)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        seconds, calls = self.seconds, self.calls

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.thread_time() - start
                calls[label] = calls.get(label, 0) + 1

        self.undo.append((owner, name, original))
        setattr(owner, name, timed)

    def remove(self) -> None:
        for owner, name, original in reversed(self.undo):
            setattr(owner, name, original)
        self.undo.clear()

    def report(self, objects: int) -> str:
        return "\n".join(f"    {label:42} {self.seconds[label] / objects * 1e6:7.1f} µs/object"
                         f"  ({self.calls[label]} calls)" for label in self.seconds)


def install_stages() -> Stages:
    from threatmesh.federation import signatures, sync
    from threatmesh.federation.transport import PeerClient
    from threatmesh.store.sqlite import SQLiteStore

    stages = Stages()
    # receiver (the TAXII server's POST path)
    stages.wrap(taxii_server.TaxiiServer, "_store_envelope", "recv: _store_envelope (all)")
    stages.wrap(taxii_server, "screen_push", "recv:   screen_push (verify)")
    stages.wrap(taxii_server, "parse_object", "recv:   parse_object")
    stages.wrap(taxii_server, "record_push", "recv:   record_push (held, provenance)")
    stages.wrap(SQLiteStore, "put_objects", "both:   store.put_objects")
    stages.wrap(SQLiteStore, "put_status", "recv:   store.put_status")
    # sender (one sync round)
    stages.wrap(sync.PushPages, "read", "send:   push page read")
    stages.wrap(sync, "_not_held", "send:   _not_held")
    stages.wrap(sync, "outgoing", "send:   outgoing (egress, redaction)")
    stages.wrap(signatures.Signer, "manifest", "send:   signer.manifest")
    stages.wrap(PeerClient, "post_envelope", "send:   post_envelope (HTTP, own thread)")
    stages.wrap(SQLiteStore, "mark_held_pks", "send:   store.mark_held_pks")
    stages.wrap(SQLiteStore, "record_provenance", "recv:   store.record_provenance")
    return stages


def top(profile: cProfile.Profile, objects: int, limit: int = 35) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(SORT).print_stats(limit)
    return out.getvalue()


def push(label: str, sender: Any, peer_name: str, objects: int, profile: bool, stages: bool) -> None:
    # One context per node, as `serve` has: its egress cache, signer and push pages are shared by its peers.
    ctx = CONTEXTS.setdefault(id(sender), context_for(sender))
    peer = sender.store.get_peer(peer_name)
    receiver_profile = ReceiverProfile() if profile else None
    if receiver_profile:
        receiver_profile.install()
    sender_profile = cProfile.Profile() if profile else None
    timers = install_stages() if stages else None
    cpu0, thread0, wall0 = process_cpu(), time.thread_time(), time.perf_counter()
    if sender_profile:
        sender_profile.enable()
    report = sync_peer(ctx, peer, pull=False, push=True)
    if sender_profile:
        sender_profile.disable()
    cpu1, thread1, wall1 = process_cpu(), time.thread_time(), time.perf_counter()
    if timers:
        timers.remove()
    if receiver_profile:
        taxii_server.TaxiiServer._store_envelope = receiver_profile.original  # type: ignore[method-assign]
    sender_cpu = thread1 - thread0
    receiver_cpu = (cpu1 - cpu0) - sender_cpu
    print(f"{label}: {report.sent:,} sent, error={report.error}; wall {wall1 - wall0:.2f} s; "
          f"sender {sender_cpu / objects * 1e6:.0f} µs/object, receiver {receiver_cpu / objects * 1e6:.0f} µs/object, "
          f"together {(cpu1 - cpu0) / objects * 1e6:.0f} µs/object")
    print(f"    garbage collector: {GC.take()}")
    if timers:
        print(timers.report(objects))
    if sender_profile and receiver_profile:
        print(f"--- {label}: sender ---")
        print(top(sender_profile, objects))
        print(f"--- {label}: receiver (_store_envelope) ---")
        print(top(receiver_profile.profile, objects))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--hub", action="store_true", help="a - b and a - c: a pushes to b, then to c")
    parser.add_argument("--profile", action="store_true", help="cProfile both sides (slows them down)")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before the pushes")
    parser.add_argument("--gc-threshold", type=int, default=0, help="gc.set_threshold(N) before the pushes")
    parser.add_argument("--paced", action="store_true", help="the collector `serve` runs (threatmesh.collector)")
    parser.add_argument("--batch", type=int, default=0, help="objects per pushed envelope (default: the sync's)")
    parser.add_argument("--pragma", action="append", default=[], help="run PRAGMA X on every node's writer")
    parser.add_argument("--stages", action="store_true", help="CPU time by stage (light wrappers)")
    args = parser.parse_args()
    if args.batch:
        from threatmesh.federation import sync

        sync.BATCH_SIZE = args.batch
    with tempfile.TemporaryDirectory(prefix="tm-fed-profile-") as tmp:
        links = [Link("a", "b"), Link("a", "c")] if args.hub else [Link("a", "b"), Link("b", "c")]
        mesh = Mesh(Path(tmp), ["a", "b", "c"], links, {})
        nodes = {name: open_node(node.home, environ={}) for name, node in mesh.nodes.items()}
        for node in nodes.values():
            for pragma in args.pragma:
                node.store._writer.execute(f"PRAGMA {pragma}")  # type: ignore[attr-defined]
        servers = [serve(nodes[name], mesh.nodes[name].port) for name in ("b", "c")]
        try:
            objects = [indicator(f"profile-{i}", "clear", description=f"benchmark object {i}")
                       for i in range(args.scale)]
            parsed = [parse_object(o) for o in objects]
            for start in range(0, len(parsed), 5000):
                nodes["a"].store.put_objects(parsed[start:start + 5000],
                                             collection_id=nodes["a"].default_collection.id, source="bench")
            if args.freeze:
                gc.freeze()
            if args.gc_threshold:
                gc.set_threshold(args.gc_threshold)
            if args.paced:
                PacedCollector().start()
            GC.take()
            push("a -> b (author's push)", nodes["a"], "b", args.scale, args.profile, args.stages)
            if args.hub:
                push("a -> c (the same versions to a second peer)", nodes["a"], "c", args.scale, args.profile,
                     args.stages)
            else:
                push("b -> c (forward)", nodes["b"], "c", args.scale, args.profile, args.stages)
        finally:
            for server in servers:
                server.should_exit = True
            time.sleep(0.3)
            for node in nodes.values():
                node.close()


if __name__ == "__main__":
    main()
