"""The indicator index built from a store's bulk key read, in columns, without parsing indicator JSON.

The store hands over, per current indicator, its validity, pattern and
warninglist flag, and the normalised observables of its pattern (the store's
`observables` index). The overwhelmingly common pattern, one equality
`[type:prop = 'value']`, is recognised for all rows at once with a regular
expression over the pattern column; its key is its one observable. Only the
other patterns (and the few whose value the store could not normalise) go
through `index.build_index`'s path one by one. Keys end up in `HashedKeys`
tables (`match.hashed`), one per group; CIDR ranges in the index's range
tables; validity times in arrays.

The result answers exactly like `build_index` over the same indicators
(tests/match/test_bulk_index.py holds them to it).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import polars as pl

from threatmesh.match.hashed import HashedKeys
from threatmesh.match.index import (
    NO_END, IndicatorIndex, IndicatorInfo, SkippedIndicator, build_index,
)
from threatmesh.match.keys import GROUP_DOMAIN, GROUP_IP, indicator_key, kind_group
from threatmesh.match.protocol import PatternCompiler
from threatmesh.stix.timestamps import timestamp_to_micros

# One equality comparison alone: `_SINGLE` in index.py's reading, in the syntax of polars' regex engine.
_SINGLE_EQ = (r"^\s*\[\s*[a-z0-9-]+:(?:value|hashes\.(?:'[^']+'|[A-Za-z0-9_-]+))\s*=\s*"
              r"'(?:[^'\\]|\\.)*'\s*\]\s*$")


class ObservableRun(Protocol):
    kind: str
    count: int
    pk: str
    value: str


class KeyRows(Protocol):
    """What `Store.indicator_key_rows` returns (`store.sqlite_match.IndicatorKeyRows`): packed columns,
    integers joined by ',', texts by NUL; times in µs, -2 for none, -1 for a spelling to read here."""

    count: int
    pk: str
    id: str
    valid_from: str
    valid_until: str
    pattern: str
    flagged: str
    observables: Sequence[ObservableRun]
    odd_times: dict[int, tuple[str | None, str | None]]
    other_types: Sequence[tuple[str, str | None]]


_NO_TIME, _ODD_TIME = -2, -1


def _texts(packed: str, count: int, name: str) -> pl.Series:
    """A packed text column as a polars column, '' read as missing."""
    if count == 0:
        return pl.Series(name, [], dtype=pl.String)
    column = pl.Series(name, packed.split("\x00"), dtype=pl.String)
    if len(column) != count:
        raise ValueError(f"the store's {name} column holds {len(column)} values for {count} rows")
    return column


def _ints(packed: str, count: int, name: str) -> np.ndarray:
    values = np.fromstring(packed, dtype=np.int64, sep=",") if count else np.empty(0, dtype=np.int64)
    if len(values) != count:
        raise ValueError(f"the store's {name} column holds {len(values)} values for {count} rows")
    return values


NameSource = Callable[[Sequence[str]], dict[str, str]]


class IndicatorColumns(Sequence[IndicatorInfo]):
    """The indicators by slot, as columns; an `IndicatorInfo` is made only when one is asked for,
    and names (needed for reports only) are read from the store then."""

    def __init__(self, ids: pl.Series, valid_from: np.ndarray, valid_until: np.ndarray,
                 names: NameSource | None = None, known_names: dict[str, str] | None = None) -> None:
        self.ids = ids
        self.valid_from = valid_from  # µs, int64
        self.valid_until = valid_until
        self._names = names
        self._known = dict(known_names or {})

    def __len__(self) -> int:
        return len(self.ids)

    def name_of(self, indicator_id: str) -> str:
        return self.names_of([indicator_id])[indicator_id]

    def __getitem__(self, slot: Any) -> Any:
        """The indicator in a slot; its name only if already read (`name_of` reads it): the
        matcher asks for every hit, reports only for what they show."""
        if isinstance(slot, slice):
            return [self[i] for i in range(*slot.indices(len(self)))]
        ind_id = self.ids[slot]
        return IndicatorInfo(ind_id, self._known.get(ind_id, ""), int(self.valid_from[slot]),
                             int(self.valid_until[slot]))

    def names_of(self, indicator_ids: Sequence[str]) -> dict[str, str]:
        """Names of these indicators, read from the store at once for those not known yet."""
        missing = [i for i in dict.fromkeys(indicator_ids) if i not in self._known]
        if missing:
            found = self._names(missing) if self._names else {}
            self._known.update({i: found.get(i, "") for i in missing})
        return {i: self._known[i] for i in indicator_ids}

    def __iter__(self) -> Iterator[IndicatorInfo]:
        for slot in range(len(self)):
            yield self[slot]


def index_from_rows(
    rows: KeyRows,
    *,
    compiler: PatternCompiler | None = None,
    flagged: set[str] | frozenset[str] = frozenset(),
    include_warninglisted: bool = False,
    names: NameSource | None = None,
) -> IndicatorIndex:
    n = rows.count
    ids = _texts(rows.id, n, "id")
    pattern = _texts(rows.pattern, n, "pattern").replace("", None)
    pks = _ints(rows.pk, n, "pk")
    frame = pl.DataFrame({
        "i": np.arange(n, dtype=np.int64),
        "pk": pks,
        "stix": pattern.is_not_null(),
        "flag": pl.Series(_ints(rows.flagged, n, "flagged")) != 0,
        "single": pattern.str.contains(_SINGLE_EQ).fill_null(False),
    })
    if flagged and not include_warninglisted:
        frame = frame.with_columns(pl.col("flag") | ids.is_in(pl.Series(list(flagged), dtype=pl.String).implode()))
    if include_warninglisted:
        frame = frame.with_columns(pl.lit(False).alias("flag"))
    valid_from = _ints(rows.valid_from, n, "valid_from")
    valid_until = _ints(rows.valid_until, n, "valid_until")
    bad_reason: dict[int, str] = {}  # row -> why its validity cannot be read
    if rows.odd_times:
        row_of_pk = {int(pk): i for i, pk in enumerate(pks.tolist())}
        for pk, texts in rows.odd_times.items():
            i = row_of_pk.get(pk)
            if i is None:
                continue
            for column, text, default in ((valid_from, texts[0], 0), (valid_until, texts[1], NO_END)):
                try:
                    column[i] = timestamp_to_micros(text) if text is not None else default
                except ValueError as exc:
                    column[i] = default
                    bad_reason.setdefault(i, str(exc))
    valid_from[valid_from == _NO_TIME] = 0
    valid_until[valid_until == _NO_TIME] = NO_END
    bad_time = np.zeros(n, dtype=np.bool_)
    bad_time[list(bad_reason)] = True
    frame = frame.with_columns(pl.Series("bad_time", bad_time))

    # Single equalities with exactly one observable of an indexed kind: their key is that observable.
    schema = {"pk": pl.Int64, "kind": pl.String, "value": pl.String, "group": pl.String}
    obs = pl.concat([pl.DataFrame({
        "pk": _ints(run.pk, run.count, "observable pk"),
        "kind": pl.repeat(run.kind, run.count, dtype=pl.String, eager=True),
        "value": _texts(run.value, run.count, "observable value"),
        "group": pl.repeat(kind_group(run.kind), run.count, dtype=pl.String, eager=True),
    }, schema=schema) for run in rows.observables] or [pl.DataFrame(schema=schema)])
    per_pk = obs.group_by("pk").agg(pl.len().alias("n_obs"), pl.col("group").is_not_null().all().alias("indexed"))
    frame = frame.join(per_pk, on="pk", how="left").sort("i")
    usable = pl.col("stix") & ~pl.col("flag") & ~pl.col("bad_time")
    direct = frame.filter(usable & pl.col("single") & (pl.col("n_obs") == 1) & pl.col("indexed"))
    slow = frame.filter(usable & ~(pl.col("single") & (pl.col("n_obs") == 1) & pl.col("indexed")))

    skipped = [SkippedIndicator(i, f"pattern type {t!r} not matched") for i, t in rows.other_types]
    for i in frame.filter(~pl.col("stix"))["i"].to_list():
        skipped.append(SkippedIndicator(ids[i], "pattern type 'stix' not matched: no pattern"))
    warninglisted = frame.filter(pl.col("stix") & pl.col("flag")).height
    for i in frame.filter(pl.col("stix") & ~pl.col("flag") & pl.col("bad_time"))["i"].to_list():
        skipped.append(SkippedIndicator(ids[i], f"bad validity time: {bad_reason[i]}"))

    # The rest one by one, with build_index's own rules (compiled patterns, the remaining exact ones).
    slow_rows = slow["i"].to_list()
    small = build_index(
        ({"type": "indicator", "id": ids[i], "pattern": pattern[i], "pattern_type": "stix"} for i in slow_rows),
        compiler=compiler, include_warninglisted=True,
    )
    skipped.extend(small.skipped)
    slow_by_id = {ids[i]: i for i in slow_rows}
    slow_kept = [slow_by_id[info.id] for info in small.indicators]  # row of each small-index slot

    # Slots in storage order over both kinds of rows.
    direct_rows = direct["i"].to_numpy()
    all_rows = np.concatenate([direct_rows, np.asarray(slow_kept, dtype=np.int64)])
    order = np.argsort(all_rows, kind="stable")
    slot_of_row = np.empty(len(all_rows), dtype=np.uint32)
    slot_of_row[order] = np.arange(len(all_rows), dtype=np.uint32)
    row_in_slot = all_rows[order]
    direct_slots = slot_of_row[: len(direct_rows)]
    small_slots = slot_of_row[len(direct_rows):]

    gather = pl.Series(row_in_slot)
    index = IndicatorIndex(indicators=IndicatorColumns(
        ids.gather(gather), valid_from[row_in_slot], valid_until[row_in_slot], names))
    index.skipped = skipped
    index.warninglisted = warninglisted
    index.evaluated = [(int(small_slots[s]), compiled) for s, compiled in small.evaluated]

    # Keys: the direct rows' observables, then the small index's keys renumbered.
    keys = obs.join(pl.DataFrame({"pk": direct["pk"], "slot": pl.Series(direct_slots, dtype=pl.UInt32)}),
                    on="pk", how="inner").select("group", "kind", "value", "slot")
    extra: list[tuple[str, str, str, int]] = []
    for group, table in small.exact.items():
        for key, slots in table.items():
            extra.extend((group, "", key, int(small_slots[s])) for s in slots)
    cidr_rows = keys.filter((pl.col("group") == GROUP_IP) & pl.col("value").str.contains("/", literal=True))
    for kind, value, slot in cidr_rows.select("kind", "value", "slot").iter_rows():
        index.add_key(int(slot), kind, value)
    for version, by_len in small.cidr.items():
        for prefixlen, nets in by_len.items():
            ranges = index.cidr[version].setdefault(prefixlen, {})
            for net, owners in nets.items():
                ranges[net] = ranges.get(net, ()) + tuple(int(small_slots[s]) for s in owners)
    keys = keys.filter(~((pl.col("group") == GROUP_IP) & pl.col("value").str.contains("/", literal=True)))
    # URL keys spell percent-escapes one way (keys.indicator_key): only values with a '%' need it.
    pct = keys.filter(pl.col("kind") == "url").filter(pl.col("value").str.contains("%", literal=True))
    if pct.height:
        fixed = pct.with_columns(pl.Series("value", [indicator_key("url", v) for v in pct["value"].to_list()],
                                           dtype=pl.String))
        keys = pl.concat([keys.filter(~((pl.col("kind") == "url") & pl.col("value").str.contains("%", literal=True))),
                          fixed])
    keys = keys.select("group", pl.col("value").alias("key"), "slot")
    if extra:
        keys = pl.concat([keys, pl.DataFrame(extra, schema={"group": pl.String, "kind": pl.String, "key": pl.String,
                                                            "slot": pl.UInt32}, orient="row").drop("kind")])
    for (group,), part in keys.partition_by("group", as_dict=True).items():
        index.hashed[str(group)] = HashedKeys(part["key"], part["slot"].to_numpy())
        if group == GROUP_DOMAIN:
            labels = part["key"].str.count_matches(".", literal=True).unique().to_list()
            index.domain_label_counts = {int(c) + 1 for c in labels}
            index.max_domain_labels = max(index.domain_label_counts, default=0)
    return index
