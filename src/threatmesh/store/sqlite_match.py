"""The log matcher's bulk read of the SQLite store: every current indicator's keys in a few scans.

A mixin of `SQLiteStore`. The `match_keys` table (migration `0006_match_keys`,
written with each new indicator version by the store's writer, `match_key_row`,
and kept by triggers on `objects` as versions change) holds what the matcher
needs of each indicator version (validity, pattern, warninglist flag) without
its JSON; the
`observables` index holds the normalised values of its pattern. Loading a
million indicators is then a few narrow scans, not a million JSON parses.

Each column comes back packed into one string (`group_concat`): integers
joined by ',', texts by NUL (no id, pattern or observable value holds one; the
reader checks the counts), so that the reader splits them with one vectorised
call instead of building a million row tuples (`match.bulk`). Validity times
come as µs since the epoch, computed by SQLite as rows are written (generated
columns of `match_keys`) for the STIX spelling (`YYYY-MM-DDTHH:MM:SS[.fff]Z`);
any other spelling comes back as text, in `odd_times`, for the reader to judge.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import orjson

TEXT_SEPARATOR = "\x00"
INT_SEPARATOR = ","
NO_TIME = -2  # the indicator has no such time
ODD_TIME = -1  # not in the STIX spelling: see `odd_times`


@dataclass(frozen=True, slots=True)
class ObservableRun:
    """The observables of one kind: packed pks (ints) and values (texts)."""

    kind: str
    count: int
    pk: str
    value: str


@dataclass(frozen=True, slots=True)
class IndicatorKeyRows:
    """Packed columns, one entry per current (latest, not revoked) indicator of pattern type stix."""

    count: int
    pk: str
    id: str
    valid_from: str  # µs; NO_TIME or ODD_TIME
    valid_until: str
    pattern: str
    flagged: str  # 1: the object carries a warninglist flag property
    # The observables of every object, current indicators among them: keep those of the pks above.
    observables: list[ObservableRun] = field(default_factory=list)
    odd_times: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)  # pk -> (from, until)
    other_types: list[tuple[str, str | None]] = field(default_factory=list)  # (id, pattern_type) not matched

    def texts(self, column: str) -> list[str]:
        """One text column as a list (for small reads and tests)."""
        packed: str = getattr(self, column)
        parts = packed.split(TEXT_SEPARATOR) if self.count else []
        if len(parts) != self.count:
            raise ValueError(f"column {column} holds {len(parts)} values, not {self.count}")
        return parts

    def ints(self, column: str) -> list[int]:
        packed: str = getattr(self, column)
        return [int(x) for x in packed.split(INT_SEPARATOR)] if packed else []


def _text(column: str) -> str:
    return f"group_concat(coalesce({column}, ''), char(0))"


def _int(column: str) -> str:
    return f"group_concat({column}, ',')"


def _has_odd(packed: str) -> bool:
    """Does a packed int column hold ODD_TIME? (A plain find: the column is megabytes long.)"""
    odd = str(ODD_TIME)
    return packed == odd or packed.startswith(odd + ",") or packed.endswith("," + odd) or \
        packed.find(f",{odd},") >= 0


# The properties whose presence (with a value other than 0, false, "" or an empty
# list or object) flags an indicator as warninglisted.
_FLAG_PROPERTIES = ("x_threatmesh_warninglists", "x_threatmesh_warninglist", "x_warninglists")
_UNFLAGGED: tuple[Any, ...] = (None, 0, "", "[]", "{}")
MATCH_KEY_INSERT = (
    "INSERT OR REPLACE INTO match_keys (pk, id, is_latest, revoked, name, valid_from, valid_until, pattern,"
    " pattern_type, flagged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _as_sql(value: Any) -> Any:
    """A JSON value as SQLite's json_extract returns it: scalars as they are (booleans as
    0/1), arrays and objects as their JSON text."""
    cls = type(value)
    if cls is str or value is None or cls is float:
        return value
    if cls is bool:
        return int(value)
    if cls is int:
        return value if -(1 << 63) <= value < (1 << 63) else float(value)
    return orjson.dumps(value).decode()


def match_key_row(pk: int, data: Mapping[str, Any], is_latest: bool, revoked: bool) -> tuple[Any, ...]:
    """The `match_keys` row of one indicator version, as `MATCH_KEY_INSERT` takes it.

    The writer computes it from the parsed object it already holds: the trigger that
    did it before (json_extract on the stored JSON) cost a third of writing an
    indicator. The rewrite trigger and the backfill (migrations 0006, 0008) still
    compute it in SQL; `tests/store/test_match_keys.py` holds both to the same rows."""
    flagged = 0
    for name in _FLAG_PROPERTIES:
        value = data.get(name)
        if value is not None and value not in _UNFLAGGED and value != [] and value != {}:
            flagged = 1
            break
    get = data.get
    return (pk, data["id"], int(is_latest), int(revoked), _as_sql(get("name")), _as_sql(get("valid_from")),
            _as_sql(get("valid_until")), _as_sql(get("pattern")), _as_sql(get("pattern_type")), flagged)


_CURRENT = "is_latest = 1 AND revoked = 0"
_STIX = "(pattern_type IS NULL OR pattern_type = 'stix')"


class SQLiteMatchKeys:
    """The matcher's reads of `match_keys`, for SQLiteStore."""

    # Provided by SQLiteStore.
    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _index_current(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def indicator_key_rows(self) -> IndicatorKeyRows:
        """Every latest, non-revoked indicator with its validity, pattern, flag and observables."""
        self._index_current()
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT count(*), {_int('pk')}, {_text('id')}, {_int('valid_from_us')},"
                f" {_int('valid_until_us')}, {_text('pattern')}, {_int('flagged')}"
                f" FROM match_keys WHERE {_CURRENT} AND {_STIX}"
            ).fetchone()
            # The whole index in its own order, one run per kind: a join with match_keys (a
            # b-tree probe per row) costs several times more than reading the rows the reader
            # drops (those of other objects and older versions; it keeps the pks above).
            runs = conn.execute(
                f"SELECT kind, count(*), {_int('pk')}, {_text('value')} FROM observables GROUP BY kind"
            ).fetchall()
            odd: list[tuple[int, str | None, str | None]] = []
            if any(_has_odd(str(packed or "")) for packed in (row[3], row[4])):  # rare: read those texts
                odd = conn.execute(
                    f"SELECT pk, valid_from, valid_until FROM match_keys WHERE {_CURRENT} AND {_STIX}"
                    f" AND (valid_from_us = {ODD_TIME} OR valid_until_us = {ODD_TIME})"
                ).fetchall()
            others = conn.execute(
                f"SELECT id, pattern_type FROM match_keys WHERE {_CURRENT} AND NOT {_STIX} ORDER BY pk"
            ).fetchall()
        texts = [str(x or "") for x in row[1:]]
        return IndicatorKeyRows(
            count=int(row[0]), pk=texts[0], id=texts[1], valid_from=texts[2], valid_until=texts[3],
            pattern=texts[4], flagged=texts[5],
            observables=[ObservableRun(str(k), int(n), str(p or ""), str(v or "")) for k, n, p, v in runs],
            odd_times={int(pk): (vf, vu) for pk, vf, vu in odd},
            other_types=[(str(i), t) for i, t in others],
        )

    def indicator_names(self, ids: Sequence[str]) -> dict[str, str]:
        """The names of the latest versions of these indicators (those that have one)."""
        found: dict[str, str] = {}
        self._index_current()
        with self._reading() as conn:
            for start in range(0, len(ids), 500):
                part = list(ids[start:start + 500])
                marks = ", ".join("?" * len(part))
                found.update(conn.execute(
                    f"SELECT id, name FROM match_keys WHERE pk IN (SELECT pk FROM objects WHERE id IN ({marks})"
                    " AND is_latest = 1) AND name IS NOT NULL", part).fetchall())
        return found

    def latest_json(self, ids: Sequence[str]) -> dict[str, bytes]:
        """The JSON of the latest version of each of these objects that exists (the recorder
        reads the sightings it updates with this, a few queries instead of one per sighting)."""
        found: dict[str, bytes] = {}
        with self._reading() as conn:
            for start in range(0, len(ids), 500):
                part = list(ids[start:start + 500])
                marks = ", ".join("?" * len(part))
                found.update((i, bytes(j)) for i, j in conn.execute(
                    f"SELECT id, json FROM objects WHERE id IN ({marks}) AND is_latest = 1", part))
        return found
