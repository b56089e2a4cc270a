"""The cyclic garbage collector of a long-running server, paced by time.

Nearly everything a node allocates is freed by reference counting: the objects
of a pushed batch (10,000 parsed objects and their dicts) live as long as the
request and die with it. Python's automatic collector does not know that: it
runs after every N container allocations, so a batch's live objects are
scanned again and again while the batch is in flight. In bench/federation.py
(line of ten nodes, 100,000 objects, runs alternated) that scanning was about a
tenth of the nodes' CPU.

`PacedCollector` switches the automatic collector off and runs a full
collection every `interval` seconds from a thread of its own, so cyclic garbage
(exception tracebacks, some library objects) is still freed, at most one
interval late. What start-up built (modules, settings, the app) is frozen
first, so each full collection only looks at what was allocated since.
"""

from __future__ import annotations

import gc
import threading


class PacedCollector:
    """Full collections every `interval` seconds instead of automatic ones; `stop()`
    turns the automatic collector back on (as it was before `start()`)."""

    def __init__(self, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        self.interval = interval
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
        while not self._stopping.wait(self.interval):
            gc.collect()
            self.collections += 1
