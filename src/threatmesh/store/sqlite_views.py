"""Kept views: what the egress path answered for one recipient's figures, kept in the SQLite store.

A recipient other than the operator sees the facts and objects of MIXED
reaches (analytics/visibility.py) only as the egress path rebuilds them
(web/dashboard/view.py). That costs a neighbourhood read and a pass through
`share.outbound` per fact, so the answers are kept per view (the recipient,
the node's default TLP and the redaction settings, hashed by the caller):

- analytics_view_facts: (view, fact pk) -> the fact as the view counts it
  (NULL: withheld), under the `stamp` of the fact row it was rebuilt from;
- analytics_view_objects: (view, version pk) -> whether that latest version
  goes, with its type and TLP, under the stamp of its object-reach row;
- analytics_view_counts / analytics_view_object_counts: the summary counts
  of the kept entries, moved by +1/-1 as entries come and go, so that a view
  reads its figures without parsing a fact.

An entry is current while the stamp it was kept under is the stamp of its row
now (a refresh that rewrites a row gives it its clock); analytics_view_state
notes the fact table's clock a view was last kept at, and while that clock
has not moved the whole view is current and nothing is checked. `keep`
drops every entry that is no longer current (its counts with it) and adds
the new ones, in one transaction, so the counts always sum the entries; what
remains is exactly the current MIXED facts and objects of the view, since a
reach moves only with its row. A full rebuild of the fact table empties
these tables.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from threatmesh.analytics.facts import Fact
from threatmesh.analytics.summary import CountKey, contributions
from threatmesh.analytics.visibility import Kept
from threatmesh.store.sqlite_rows import VERSION_COLUMNS, chunks, fact_row, json_list, row_fact, version_of

# Kept entries whose row was rewritten (or is gone) since they were kept.
# Rows are keyed by pk: a new version of the object is a new pk, and the old entry goes stale.
_STALE_FACTS = (
    "SELECT v.pk, v.fact FROM analytics_view_facts v LEFT JOIN analytics_facts f ON f.pk = v.pk"
    " WHERE v.view = ? AND (f.stamp IS NULL OR f.stamp <> v.stamp)"
)
_STALE_OBJECTS = (
    "SELECT v.pk, v.type, v.tlp, v.goes FROM analytics_view_objects v LEFT JOIN analytics_object_reach r ON r.pk = v.pk"
    " WHERE v.view = ? AND (r.stamp IS NULL OR r.stamp <> v.stamp)"
)


def kept(conn: sqlite3.Connection, view: str, reaches: Collection[int]) -> Kept:
    """The MIXED facts and objects (of `reaches`) with no current entry (the stale entries are
    `keep`'s to find and drop).

    A view kept at the fact table's present clock is current as a whole (no row was written
    since), so nothing is looked at."""
    (clock,) = conn.execute("SELECT date_added FROM analytics_state").fetchone()
    found = conn.execute("SELECT clock FROM analytics_view_state WHERE view = ?", (view,)).fetchone()
    if found is not None and found[0] == clock:
        return Kept(clock=clock, current=True)
    chosen = json_list(sorted(reaches))
    out = Kept(clock=clock)
    out.stale_facts = [(pk, i, stamp, reach) for pk, i, stamp, reach in conn.execute(
        "SELECT f.pk, f.id, f.stamp, f.reach FROM analytics_facts f"
        " LEFT JOIN analytics_view_facts v ON v.view = ? AND v.pk = f.pk"
        " WHERE f.reach IN (SELECT value FROM json_each(?)) AND (v.stamp IS NULL OR v.stamp <> f.stamp)"
        " ORDER BY f.pk", (view, chosen))]
    stale: dict[int, int] = dict(conn.execute(
        "SELECT r.pk, r.stamp FROM analytics_object_reach r LEFT JOIN analytics_view_objects v ON v.view = ? AND v.pk = r.pk"
        " WHERE r.reach IN (SELECT value FROM json_each(?)) AND (v.stamp IS NULL OR v.stamp <> r.stamp)",
        (view, chosen)))
    for chunk in chunks(sorted(stale)):
        out.stale_objects.extend((pk, version, stale[pk]) for pk, version in (version_of(row) for row in conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM objects o WHERE o.pk IN (SELECT value FROM json_each(?)) ORDER BY o.pk",
            (json_list(chunk),))))
    return out


def keep(conn: sqlite3.Connection, view: str, clock: int, facts: Sequence[tuple[int, str, int, Fact | None]],
         objects: Sequence[tuple[int, int, str, str, bool]]) -> None:
    """Drop the stale entries of a view and keep new ones, the view's counts moved along, and note
    the fact table's clock they were read at (one transaction)."""
    counts: Counter[CountKey] = Counter()
    object_counts: Counter[tuple[str, str]] = Counter()
    new_facts = [pk for pk, _, _, _ in facts]
    new_objects = [pk for pk, _, _, _, _ in objects]
    gone_facts: dict[int, Any] = dict(conn.execute(_STALE_FACTS, (view,)).fetchall())
    for chunk in chunks(new_facts):  # entries replaced (kept meanwhile by another request)
        gone_facts.update(conn.execute("SELECT pk, fact FROM analytics_view_facts WHERE view = ?"
                                       " AND pk IN (SELECT value FROM json_each(?))", (view, json_list(chunk))))
    for text in gone_facts.values():
        if text is not None:
            counts.subtract(contributions(row_fact(orjson.loads(text))))
    gone_objects = {row[0]: row for row in conn.execute(_STALE_OBJECTS, (view,))}
    for chunk in chunks(new_objects):
        gone_objects.update((row[0], row) for row in conn.execute(
            "SELECT pk, type, tlp, goes FROM analytics_view_objects WHERE view = ?"
            " AND pk IN (SELECT value FROM json_each(?))", (view, json_list(chunk))))
    for _, kind, tlp, goes in gone_objects.values():
        if goes:
            object_counts[(kind, tlp)] -= 1
    for chunk in chunks(sorted(gone_facts)):
        conn.execute("DELETE FROM analytics_view_facts WHERE view = ? AND pk IN (SELECT value FROM json_each(?))",
                     (view, json_list(chunk)))
    for chunk in chunks(sorted(gone_objects)):
        conn.execute("DELETE FROM analytics_view_objects WHERE view = ? AND pk IN (SELECT value FROM json_each(?))",
                     (view, json_list(chunk)))
    conn.executemany("INSERT INTO analytics_view_facts (view, pk, id, stamp, fact) VALUES (?, ?, ?, ?, ?)",
                     ((view, pk, i, stamp, None if fact is None else orjson.dumps(fact_row(pk, fact)).decode())
                      for pk, i, stamp, fact in facts))
    for _, _, _, fact in facts:
        if fact is not None:
            counts.update(contributions(fact))
    conn.executemany("INSERT INTO analytics_view_objects (view, pk, stamp, type, tlp, goes) VALUES (?, ?, ?, ?, ?, ?)",
                     ((view, pk, stamp, kind, tlp, int(goes)) for pk, stamp, kind, tlp, goes in objects))
    for _, _, kind, tlp, goes in objects:
        if goes:
            object_counts[(kind, tlp)] += 1
    conn.executemany(
        "INSERT INTO analytics_view_counts (view, kind, field, value, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (view, kind, field, value) DO UPDATE SET n = n + excluded.n",
        ((view, k, f, v, n) for (k, f, v), n in counts.items() if n))
    conn.execute("DELETE FROM analytics_view_counts WHERE view = ? AND n = 0", (view,))
    conn.executemany(
        "INSERT INTO analytics_view_object_counts (view, type, tlp, n) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (view, type, tlp) DO UPDATE SET n = n + excluded.n",
        ((view, t, tlp, n) for (t, tlp), n in object_counts.items() if n))
    conn.execute("DELETE FROM analytics_view_object_counts WHERE view = ? AND n = 0", (view,))
    conn.execute("INSERT OR REPLACE INTO analytics_view_state (view, clock) VALUES (?, ?)", (view, clock))


def view_counts(conn: sqlite3.Connection, view: str) -> tuple[dict[tuple[str, str], int], dict[CountKey, int]]:
    objects = {(t, tlp): n for t, tlp, n in conn.execute(
        "SELECT type, tlp, n FROM analytics_view_object_counts WHERE view = ?", (view,))}
    counts = {(k, f, v): n for k, f, v, n in conn.execute(
        "SELECT kind, field, value, n FROM analytics_view_counts WHERE view = ?", (view,))}
    return objects, counts


def kept_facts(conn: sqlite3.Connection, view: str) -> dict[str, Fact | None]:
    return {i: None if text is None else row_fact(orjson.loads(text)) for i, text in conn.execute(
        "SELECT id, fact FROM analytics_view_facts WHERE view = ?", (view,))}


VIEW_TABLES = ("analytics_view_facts", "analytics_view_objects", "analytics_view_counts",
               "analytics_view_object_counts", "analytics_view_state")
