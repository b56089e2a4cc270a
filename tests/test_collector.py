"""The paced garbage collector of `threatmesh serve`: no automatic collections while it
runs, and cyclic garbage still freed within an interval or two."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from threatmesh.collector import PacedCollector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_cyclic_garbage_is_freed_by_the_paced_collections_only() -> None:
    assert gc.isenabled()
    collector = PacedCollector(interval=0.2).start(freeze=False)
    try:
        assert not gc.isenabled()
        # Far past any automatic threshold: with the automatic collector off, the cycle lives on.
        before = collector.collections
        dead = _cycle()
        junk = [[] for _ in range(200_000)]
        del junk
        alive = dead() is not None
        if collector.collections == before:  # no paced collection ran yet
            assert alive
        deadline = time.monotonic() + 5
        # (the count moves just after the collection that freed it)
        while (dead() is not None or collector.collections == before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead() is None and collector.collections > before
    finally:
        collector.stop()
    assert gc.isenabled()  # as it was before start()


def test_a_collection_comes_early_when_containers_pile_up() -> None:
    collector = PacedCollector(interval=3600, growth=50_000).start(freeze=False)
    try:
        dead = _cycle()
        kept = [[] for _ in range(100_000)]  # alive: the count of containers grows past `growth`
        deadline = time.monotonic() + 5
        while (dead() is not None or collector.collections == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead() is None and collector.collections >= 1
        del kept
    finally:
        collector.stop()


def test_without_growth_nothing_is_collected_before_the_interval() -> None:
    collector = PacedCollector(interval=3600, growth=10_000_000).start(freeze=False)
    try:
        dead = _cycle()
        time.sleep(1.5)  # past one look at the count
        assert dead() is not None and collector.collections == 0
    finally:
        collector.stop()
    gc.collect()


def test_stop_restores_the_automatic_collector_as_it_was() -> None:
    gc.disable()
    try:
        PacedCollector(interval=0.1).start(freeze=False).stop()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError):
        PacedCollector(interval=0)
    with pytest.raises(ValueError):
        PacedCollector(growth=0)
    collector = PacedCollector(interval=10).start(freeze=False)
    try:
        with pytest.raises(RuntimeError):
            collector.start(freeze=False)
    finally:
        collector.stop()
    collector.stop()  # stopping twice is harmless
