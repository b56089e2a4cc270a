"""SQLite-specific: the store never records planner statistics of a young, near-empty store.

Statistics taken when the tables were nearly empty made the planner scan the whole
objects table for every row of a collection query once the store had grown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import indicator
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Collection
from threatmesh.store.sqlite import SQLiteStore


def test_no_statistics_and_collection_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.add_collection(Collection(id="5e1b2c3d-0000-4000-8000-000000000001", title="c"))
    with SQLiteStore(path) as store:  # open and close again: nothing may ANALYZE the empty tables
        objects = [parse_object(indicator(n)) for n in range(3000)]
        store.put_objects(objects, collection_id="5e1b2c3d-0000-4000-8000-000000000001", source="test")
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "sqlite_stat1" not in tables
    with SQLiteStore(path) as store:
        plan = store._reading  # noqa: SLF001 - the plan is what this test is about
        with plan() as conn:
            rows = conn.execute(
                "EXPLAIN QUERY PLAN SELECT o.pk FROM memberships m JOIN objects o ON o.pk = m.pk"
                " WHERE m.collection_id = ? AND m.date_added > ? ORDER BY m.date_added LIMIT 100",
                ("5e1b2c3d-0000-4000-8000-000000000001", 0),
            ).fetchall()
    details = " | ".join(str(r[-1]) for r in rows)
    assert "SCAN o" not in details, details


def test_query_by_id_starts_from_the_id_index(tmp_path: Path) -> None:
    """A TAXII GET of one object must not walk the whole collection in date order."""
    from threatmesh.store.protocol import ObjectQuery

    path = tmp_path / "ids.db"
    collection = "5e1b2c3d-0000-4000-8000-000000000002"
    with SQLiteStore(path) as store:
        store.add_collection(Collection(id=collection, title="c"))
        store.put_objects([parse_object(indicator(n)) for n in range(500)], collection_id=collection, source="t")
        statements: list[str] = []
        with store._reading() as conn:  # noqa: SLF001 - the plan of the store's own SQL is the subject
            conn.set_trace_callback(statements.append)
        rows = store.query_rows(ObjectQuery(collection_id=collection, ids=(indicator(7)["id"],), versions=("all",)))
        with store._reading() as conn:  # noqa: SLF001
            conn.set_trace_callback(None)
            select = next(s for s in statements if s.lstrip().upper().startswith("SELECT") and "memberships" in s)
            plan = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + select))
    assert [r.id for r in rows.rows] == [indicator(7)["id"]]
    assert "sqlite_autoindex_objects_1 (id=?)" in plan, plan
