"""The cyclic garbage collector of a long-running server, paced by time.

Nearly everything a node allocates is freed by reference counting: the objects
of a pushed batch (10,000 parsed objects and their dicts) live as long as the
request and die with it. Python's automatic collector does not know that: it
runs after every N container allocations, so a batch's live objects are
scanned again and again while the batch is in flight. In bench/federation.py
(line of ten nodes, 100,000 objects, runs alternated) that scanning was about a
tenth of the nodes' CPU.

`PacedCollector` switches the automatic collector off and runs full
collections from a thread of its own: every `interval` seconds, and sooner
when `growth` more containers were allocated than freed since the last one
(what garbage piling up looks like; a node's batches in flight stay far below
it). So cyclic garbage (exception tracebacks, some library objects) is still
freed, late but bounded. What start-up built (modules, settings, the app) is
frozen first, so each collection only looks at what was allocated since.

A full collection of a busy node costs about 45 ms of CPU (its scan touches
every object in flight): every 5 s, that was 5% of the nodes' CPU in the bench.
Every 30 s, the bench's nodes took 11% less CPU than at 5 s (runs alternated).
"""

from __future__ import annotations

import gc
import threading
import time


class PacedCollector:
    """Full collections every `interval` seconds, or once `growth` more containers were
    allocated than freed, instead of automatic ones; `stop()` turns the automatic
    collector back on (as it was before `start()`)."""

    def __init__(self, interval: float = 30.0, growth: int = 500_000) -> None:
        if interval <= 0 or growth <= 0:
            raise ValueError("the interval and the growth must be positive")
        self.interval = interval
        self.growth = growth
        self.check = min(1.0, interval)  # seconds between looks at the allocation count
        self.collections = 0  # full collections run so far
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_enabled = True

    def start(self, *, freeze: bool = True) -> "PacedCollector":
        if self._thread is not None:
            raise RuntimeError("the collector is already started")
        if freeze:
            gc.freeze()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gc-paced", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None
        if self._was_enabled:
            gc.enable()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(self.check):
            # Containers allocated less those freed since the last collection.
            if gc.get_count()[0] >= self.growth or time.monotonic() - last >= self.interval:
                gc.collect()
                self.collections += 1
                last = time.monotonic()
