"""The background sync that `threatmesh serve` runs, near real time.

One worker thread per peer, so a slow or unreachable peer delays nobody
else. One watcher thread reads the store's newest date_added (one cheap read)
every `watch` seconds and wakes the workers when it moves, so that a version
stored here (received from a peer, or ingested) is forwarded within tens of
milliseconds: in a line of peers that delay is paid at every hop. A worker
also looks for itself every `poll` seconds. It pushes as soon as the newest
date_added moves; it pulls at once, then every
`pull_every` seconds (less often from threatmesh peers, which push: see
`LoopTiming`). A failed round is retried after a backoff that doubles up to
`max_backoff`, and the next round resumes from the persisted cursors. A
supervisor thread notices peers added, changed or removed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from threatmesh.federation.receive import last_pushed_by
from threatmesh.federation.sync import SyncContext, sync_peer
from threatmesh.federation.transport import PeerClient
from threatmesh.store.protocol import Peer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopTiming:
    watch: float = 0.05  # seconds between the watcher's checks for new local objects
    poll: float = 0.5  # seconds a worker waits at most before looking again by itself
    # Seconds between pulls from each peer (the first one is at once). Pushes carry new
    # objects in near real time; pulls catch up after an outage and serve peers that do
    # not push (third-party servers). A pull racing a push fetches versions twice, so a
    # peer that pushed here within the last `pushing_window` seconds is not pulled from.
    pull_every: float = 10.0
    # A threatmesh peer (its key exchanged) pushes what is new in near real time, so pulling
    # from it is only a fallback: after the first pull, every `pull_every_signed` seconds
    # while it is known to push here (and not at all while it pushed within the last
    # `pushing_window` seconds); one that never pushed here is pulled every `pull_every`
    # from the third pull on (it may be set not to push to this node). Under load, a pull
    # racing the peer's push carries the same versions twice (the peer cannot know what a
    # pull stored); pulling seldom from pushing peers keeps that rare.
    pull_every_signed: float = 60.0
    # A peer that pushed here this recently counts as pushing (a busy peer can leave
    # minutes between pushes); one that stopped is pulled again after it.
    pushing_window: float = 300.0
    min_backoff: float = 0.5
    max_backoff: float = 10.0  # a peer back from an outage waits at most this long
    refresh_peers: float = 2.0  # seconds between re-reading the peer list


class _Worker:
    def __init__(self, ctx: SyncContext, peer: Peer, timing: LoopTiming, stopping: threading.Event) -> None:
        self.ctx = ctx
        self.peer = peer
        self.timing = timing
        self.stopping = threading.Event()
        self.wakeup = threading.Event()  # set by the watcher when new local objects are there
        self.global_stop = stopping
        self.pulls = 0  # pulls done or skipped since the worker started
        self.thread = threading.Thread(target=self.run, name=f"sync-{peer.name}", daemon=True)

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def _stopped(self) -> bool:
        return self.stopping.is_set() or self.global_stop.is_set()

    def _peer_is_pushing(self) -> bool:
        last = last_pushed_by(self.ctx.store, self.peer.name)
        return time.time_ns() // 1000 - last < self.timing.pushing_window * 1e6

    def _pull_interval(self) -> float:
        """Seconds from the pull just done (or skipped) to the next one (see LoopTiming)."""
        self.pulls += 1
        if self.peer.public_key and (self.pulls <= 1 or last_pushed_by(self.ctx.store, self.peer.name)):
            return self.timing.pull_every_signed
        return self.timing.pull_every

    def run(self) -> None:
        client = PeerClient(self.peer)
        pushed_through = -1  # the newest local date_added already offered
        next_pull = 0.0
        retry_at = 0.0
        failures = 0
        try:
            while not self._stopped():
                # Cleared before reading: a wake-up after the read is not lost, it ends the wait below.
                self.wakeup.clear()
                now = time.monotonic()
                newest = self.ctx.store.last_date_added()
                due_push = newest != pushed_through
                due_pull = now >= next_pull
                if due_pull and next_pull and self._peer_is_pushing():
                    # Its pushes bring what a pull would; pulling too would fetch it twice.
                    next_pull, due_pull = now + self._pull_interval(), False
                if now >= retry_at and (due_push or due_pull):
                    report = sync_peer(self.ctx, self.peer, client, pull=due_pull, push=due_push)
                    if report.error:
                        failures += 1
                        delay = min(self.timing.max_backoff, self.timing.min_backoff * 2 ** (failures - 1))
                        retry_at = time.monotonic() + delay
                        log.warning("sync with %s failed (retry in %.1fs): %s", self.peer.name, delay, report.error)
                    else:
                        failures = 0
                        if due_push:
                            pushed_through = newest
                        if due_pull:
                            next_pull = time.monotonic() + self._pull_interval()
                    continue  # objects may have arrived meanwhile: look again at once
                self.wakeup.wait(self.timing.poll)
        except Exception:  # a worker that dies silently would stop sharing unnoticed
            log.exception("sync worker for %s stopped", self.peer.name)
        finally:
            client.close()


class SyncLoop:
    """Start with `start()`, stop with `stop()` (joins the threads)."""

    def __init__(self, ctx: SyncContext, timing: LoopTiming = LoopTiming()) -> None:
        self.ctx = ctx
        self.timing = timing
        self._stop = threading.Event()
        self._workers: dict[str, _Worker] = {}
        self._supervisor = threading.Thread(target=self._supervise, name="sync-supervisor", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="sync-watcher", daemon=True)

    def start(self) -> "SyncLoop":
        self._supervisor.start()
        self._watcher.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to stop and wait for them, `timeout` seconds in all; a worker
        still inside a request is a daemon thread and ends with the process. Cursors only
        ever move after a stored page or an answered push, so stopping anywhere is safe."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._supervisor.join(timeout)
        self._watcher.join(max(0.0, deadline - time.monotonic()))
        for worker in list(self._workers.values()):
            worker.stop()
        for worker in list(self._workers.values()):
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    def _watch(self) -> None:
        seen = -1
        while not self._stop.wait(self.timing.watch):
            try:
                newest = self.ctx.store.last_date_added()
            except Exception:  # the workers' own polls carry on; the next check may succeed
                log.debug("cannot read the newest date_added", exc_info=True)
                continue
            if newest != seen:
                seen = newest
                for worker in list(self._workers.values()):
                    worker.wakeup.set()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                peers = {p.name: p for p in self.ctx.store.list_peers()}
            except Exception:
                log.exception("cannot read the peer list")
                peers = {p: w.peer for p, w in self._workers.items()}
            for name, worker in list(self._workers.items()):
                if peers.get(name) != worker.peer or not worker.thread.is_alive():
                    worker.stop()
                    del self._workers[name]
            for name, peer in peers.items():
                if name not in self._workers:
                    worker = _Worker(self.ctx, peer, self.timing, self._stop)
                    self._workers[name] = worker
                    worker.thread.start()
            self._stop.wait(self.timing.refresh_peers)
