"""A set of strings probed with whole polars columns: hashes, a bitmap and a sorted array.

Used two ways by the columnar matcher and the bulk-loaded index:

- as a prefilter: `candidates(column)` gives the rows whose value may be in the
  set (the value's 64-bit hash is in it); a bitmap of the hashes' top bits
  (about 64 bits a key, packed eight to a byte so that it stays in the CPU's
  cache) turns away all but a few percent of the absent values with one array
  read, and a binary search of the sorted hashes settles the rest. The binary
  search is the costly step (a cache miss a level), so the bitmap is sized to
  leave it little: with 8 bool entries a key it took 4 of the 5 ms a 130,000-row
  column cost, packed bits take 1 ms in all. A row it passes is still checked
  by the exact matcher, so a hash collision costs a lookup, never a wrong hit;
- as a key table: `get(key)` gives the slots stored under a key, comparing the
  strings themselves, so it is exact.

Hashes come from polars' `Series.hash` with a fixed seed, computed in this
process on both sides; they are never stored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

SEED = 0x7468726D65736821  # any constant: both sides hash in the same process
_SINGLE_LOOKUPS_BEFORE_DICT = 2_000  # then a dictionary (about 1 s and 150 MB a million keys)
_KNOWN_LIMIT = 1 << 20
_ONE, _THREE, _SEVEN = np.uint8(1), np.uint64(3), np.uint64(7)


def hash_column(values: pl.Series) -> np.ndarray:
    return values.hash(seed=SEED).to_numpy()


class HashedKeys:
    def __init__(self, keys: pl.Series | Sequence[str], slots: np.ndarray | None = None) -> None:
        series = keys if isinstance(keys, pl.Series) else pl.Series("key", list(keys), dtype=pl.String)
        hashes = hash_column(series)
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order]
        self.keys = series.gather(pl.Series(order))
        self.slots = (slots if slots is not None else np.zeros(len(series), dtype=np.uint32))[order]
        # About 64 bits a key, at most 4 MiB: a few percent of absent values pass to the search.
        bits = int(min(25, max(12, np.ceil(np.log2(max(1, len(hashes)) * 64)))))
        self._shift = np.uint64(64 - bits)
        self.bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
        top = self.hashes >> self._shift
        np.bitwise_or.at(self.bitmap, (top >> _THREE).astype(np.intp), _ONE << (top & _SEVEN).astype(np.uint8))
        self._dict: dict[str, tuple[int, ...]] | None = None
        self._single = 0
        self._known: dict[str, tuple[int, ...]] = {}  # answers of `prefetch`, absent keys included

    def __len__(self) -> int:
        return len(self.hashes)

    def candidates(self, values: pl.Series) -> np.ndarray:
        """Positions in `values` whose hash is one of the keys' (a superset of the exact members)."""
        if not len(self.hashes) or not len(values):
            return np.empty(0, dtype=np.int64)
        h = hash_column(values)
        top = h >> self._shift
        rows = np.flatnonzero((np.take(self.bitmap, top >> _THREE) >> (top & _SEVEN).astype(np.uint8)) & _ONE)
        if not rows.size:
            return rows
        hit = h[rows]
        pos = np.searchsorted(self.hashes, hit)
        pos[pos >= len(self.hashes)] = len(self.hashes) - 1
        return rows[self.hashes[pos] == hit]

    def prefetch(self, keys: Sequence[str]) -> None:
        """Look many keys up at once, so that `get` answers them from memory (one vectorised
        pass instead of one per key)."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._known]
        if not wanted or self._dict is not None:
            return
        if len(self._known) + len(wanted) > _KNOWN_LIMIT:
            self._known.clear()
        values = pl.Series("key", wanted, dtype=pl.String)
        h = hash_column(values)
        lo = np.searchsorted(self.hashes, h, side="left")
        hi = np.searchsorted(self.hashes, h, side="right")
        present = np.flatnonzero(hi > lo)
        for i in np.flatnonzero(hi == lo).tolist():
            self._known[wanted[i]] = ()
        if not present.size:
            return
        # The stored strings under each present hash, read in one gather (a hash shared by
        # several keys is rare: those are compared one by one).
        first = lo[present]
        stored = self.keys.gather(pl.Series(first)).to_list()
        slots = self.slots[first].tolist()
        for i, a, b, key_there, slot in zip(present.tolist(), first.tolist(), hi[present].tolist(), stored, slots):
            key = wanted[i]
            if b - a == 1:
                self._known[key] = (int(slot),) if key_there == key else ()
            else:
                self._known[key] = tuple(int(self.slots[j]) for j in range(a, b) if self.keys[j] == key)

    def get(self, key: str) -> tuple[int, ...]:
        """The slots stored under `key` (exact: the strings are compared)."""
        if self._dict is not None:
            return self._dict.get(key, ())
        known = self._known.get(key)
        if known is not None:
            return known
        self._single += 1
        if self._single > _SINGLE_LOOKUPS_BEFORE_DICT:
            # Many single lookups (a line-at-a-time run): one dictionary is cheaper from here on.
            self._dict = self.as_dict()
            return self._dict.get(key, ())
        h = int(hash_column(pl.Series([key], dtype=pl.String))[0])
        lo = int(np.searchsorted(self.hashes, np.uint64(h), side="left"))
        hi = int(np.searchsorted(self.hashes, np.uint64(h), side="right"))
        return tuple(int(self.slots[j]) for j in range(lo, hi) if self.keys[j] == key)

    def as_dict(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for key, slot in zip(self.keys.to_list(), self.slots.tolist()):
            out[key] = out.get(key, ()) + (slot,)
        return out
