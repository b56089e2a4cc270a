"""The match keys the writer computes equal what SQLite's JSON functions compute.

New indicator versions get their `match_keys` row from the store's writer
(`sqlite_match.match_key_row`); in-place rewrites and the backfill of older
stores compute it in SQL (migration 0006). Both must give the same row for the
same object, whatever odd values an indicator carries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from threatmesh.stix.parse import parse_object
from threatmesh.store.migrations import _MATCH_KEY_COLUMNS, _MATCH_KEY_VALUES
from threatmesh.store.protocol import Collection
from threatmesh.store.sqlite import SQLiteStore

# Values a warninglist flag property (and the other keys) may hold in objects from
# the wild: every JSON type, empty and not, and strings that look like empty JSON.
_ODD_VALUES: list[Any] = [
    ["top sites"], [], {}, {"list": "x"}, "", "0", "[]", "{}", "yes", 0, 1, 0.0, 2.5, True, False,
    [0], [[]], 2**70,
]


def _indicator(n: int, **extra: Any) -> dict[str, Any]:
    obj = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "pattern": f"[domain-name:value = 'n{n}.example']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    obj.update(extra)
    return obj


def _objects() -> list[dict[str, Any]]:
    objects = []
    n = 0
    for flag in ("x_threatmesh_warninglists", "x_threatmesh_warninglist", "x_warninglists"):
        for value in _ODD_VALUES:
            n += 1
            objects.append(_indicator(n, **{flag: value}))
    for key in ("name", "valid_until", "pattern_type"):
        for value in _ODD_VALUES:
            n += 1
            objects.append(_indicator(n, **{key: value}))
    n += 1
    objects.append(_indicator(n, valid_from="2024-01-01T00:00:00.123456Z", valid_until="2025-06-01 00:00",
                              name="warninglist in a name only", revoked=True))
    n += 1
    no_keys = _indicator(n)
    for key in ("pattern_type", "valid_from"):
        del no_keys[key]
    objects.append(no_keys)
    # A second version of an earlier one, in the same batch: only the newer is latest.
    objects.append(_indicator(1, modified="2024-02-01T00:00:00.000Z", x_warninglists=[]))
    return objects


def test_writer_rows_equal_the_sql_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = SQLiteStore(path)
    store.add_collection(Collection(id="c1", title="c1"))
    parsed = [parse_object(o) for o in _objects()]
    store.put_objects(parsed[:10], collection_id="c1", source="test")
    store.put_objects(parsed[10:], collection_id="c1", source="test")
    store.close()

    conn = sqlite3.connect(path)
    try:
        written = conn.execute(f"SELECT {_MATCH_KEY_COLUMNS}, valid_from_us, valid_until_us FROM match_keys"
                               " ORDER BY pk").fetchall()
        conn.execute("DELETE FROM match_keys")
        conn.execute(f"INSERT INTO match_keys ({_MATCH_KEY_COLUMNS}) SELECT {_MATCH_KEY_VALUES.format(row='')}"
                     " FROM objects WHERE type = 'indicator'")
        computed = conn.execute(f"SELECT {_MATCH_KEY_COLUMNS}, valid_from_us, valid_until_us FROM match_keys"
                                " ORDER BY pk").fetchall()
    finally:
        conn.close()
    assert len(written) == len(parsed)
    assert written == computed
    flagged = sum(row[9] for row in written)
    # Per flag property, the values that flag: everything but [], {}, "", "[]", "{}", 0, 0.0, False.
    assert flagged == 3 * 10
    assert sum(row[2] for row in written) == len(parsed) - 1  # the first version of indicator 1 is not latest


def test_a_store_from_before_0008_loses_its_insert_trigger(tmp_path: Path) -> None:
    """Opening a store written before 0008 drops the insert trigger; each new indicator
    version then gets one row, the writer's."""
    path = tmp_path / "store.sqlite"
    store = SQLiteStore(path)
    store.add_collection(Collection(id="c1", title="c1"))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"""CREATE TRIGGER match_keys_insert AFTER INSERT ON objects WHEN NEW.type = 'indicator'
        BEGIN INSERT INTO match_keys ({_MATCH_KEY_COLUMNS}) SELECT {_MATCH_KEY_VALUES.format(row='NEW.')}; END""")
    conn.execute("DELETE FROM migrations WHERE name = '0008_match_keys_by_writer'")
    conn.commit()
    conn.close()

    store = SQLiteStore(path)
    store.put_objects([parse_object(_indicator(1, x_warninglists=["top sites"]))], collection_id="c1",
                      source="test")
    store.close()
    conn = sqlite3.connect(path)
    try:
        (trigger,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'match_keys_insert'").fetchone()
        rows = conn.execute("SELECT id, flagged FROM match_keys").fetchall()
    finally:
        conn.close()
    assert trigger == 0
    assert rows == [("indicator--00000001-0000-4000-8000-000000000000", 1)]
