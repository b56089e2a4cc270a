"""Breakdowns as plain data (for `--json`, the web layer and reports), with their evidence."""

from __future__ import annotations

from typing import Any

from threatmesh.analytics.aggregate import Breakdown, Row, label
from threatmesh.analytics.facts import FIELDS, Fact


def fact_dict(fact: Fact) -> dict[str, Any]:
    """One counted object, with every value it was counted under."""
    data: dict[str, Any] = {"id": fact.id, "name": fact.name, "date": fact.day.isoformat() if fact.day else None}
    for name in FIELDS:
        data[name] = list(fact.values(name))
    if fact.confidence is not None:
        data["confidence"] = fact.confidence
    return data


def row_dict(row: Row, by: tuple[str, ...], *, with_ids: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"period": row.period}
    data.update({name: value for name, value in zip(by, row.key)})
    if by:
        data["label"] = " / ".join(label(name, value) for name, value in zip(by, row.key))
    data["count"] = row.count
    if by:
        data["share"] = row.share
    if row.period is not None:
        data["previous"] = row.previous
        data["change_pct"] = row.change
        data["year_ago"] = row.year_ago
        data["yoy_pct"] = row.yoy
    if with_ids:
        data["ids"] = list(row.ids)
    return data


def breakdown_dict(result: Breakdown, *, explain: bool = False) -> dict[str, Any]:
    """The whole result: query, totals per period, rows; with `explain`, every object counted."""
    q = result.query
    data: dict[str, Any] = {
        "kind": q.kind,
        "by": list(q.by),
        "period": q.period,
        "filters": {
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "where": {name: sorted(values) for name, values in q.where},
            "min_confidence": q.min_confidence,
        },
        "min_base": q.min_base,
        "total": result.total,
        "undated": result.undated,
        "totals": [
            {"period": p or None, "objects": result.totals.get(p, 0), "known": result.known.get(p, 0)}
            for p in (result.periods or ("",))
        ],
        "rows": [row_dict(r, q.by, with_ids=explain) for r in result.rows],
    }
    if explain:
        data["objects"] = [fact_dict(f) for f in result.counted]
    return data
