"""Counting rules on small, hand-made graphs: aliases, guards, surges, filters, periods."""

from __future__ import annotations

import ast
import math
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from threatmesh.analytics import Fact, Query, breakdown, build_facts, most_targeted, surges
from threatmesh.analytics.countries import expand_countries, load_groups
from threatmesh.analytics.periods import parse_bound, period_range
from threatmesh.store.protocol import StoredVersion


def _v(obj: dict[str, Any], tlp: str | None = None, source: str = "file:x") -> StoredVersion:
    return StoredVersion(id=obj["id"], type=obj["type"], version=obj.get("modified", ""), spec_version="2.1",
                         json=orjson.dumps(obj), date_added=0, tlp=tlp, source=source)


def _id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def _rel(src: str, rel: str, tgt: str) -> dict[str, Any]:
    return {"type": "relationship", "id": _id("relationship"), "relationship_type": rel,
            "source_ref": src, "target_ref": tgt}


def test_aliases_merge_actors_across_objects_and_sponsors_follow() -> None:
    a = {"type": "intrusion-set", "id": _id("intrusion-set"), "name": "APT28", "aliases": ["Fancy Bear"]}
    b = {"type": "intrusion-set", "id": _id("intrusion-set"), "name": "Sofacy", "aliases": ["fancy-bear"]}
    c = {"type": "threat-actor", "id": _id("threat-actor"), "name": "APT 28"}
    ru = {"type": "location", "id": _id("location"), "country": "RU"}
    incidents = [{"type": "incident", "id": _id("incident"), "name": f"i{n}", "first_seen": "2021-03-01T00:00:00Z"}
                 for n in range(3)]
    objects = [a, b, c, ru, *incidents, _rel(b["id"], "attributed-to", ru["id"]),
               _rel(incidents[0]["id"], "attributed-to", a["id"]),
               _rel(incidents[1]["id"], "attributed-to", b["id"]),
               _rel(incidents[2]["id"], "attributed-to", c["id"])]
    facts = build_facts(_v(o) for o in objects)
    result = breakdown(facts.of("incidents"), Query("incidents", by=("actor",)))
    assert [(r.key, r.count) for r in result.rows] == [(("APT28",), 3)]
    assert set(facts.actors.aliases["APT28"]) == {"Sofacy", "Fancy Bear"}  # 'APT 28' folds to 'APT28'
    assert facts.actors.canonical("apt-28") == "APT28"
    # Only Sofacy's object is linked to RU, but aliases are one actor: all three incidents are RU's.
    by_sponsor = breakdown(facts.of("incidents"), Query("incidents", by=("sponsor",)))
    assert {r.key[0]: r.count for r in by_sponsor.rows} == {"RU": 3}
    assert facts.actor_sponsors["APT28"] == ("RU",)


def _facts(per_year: dict[int, int], value: str = "X") -> list[Fact]:
    return [Fact(id=f"incident--{year}-{n}", kind="incident", name="", day=date(year, 6, 1), actor=(value,))
            for year, count in per_year.items() for n in range(count)]


def test_change_is_a_percentage_only_from_a_large_enough_base() -> None:
    facts = _facts({2019: 1, 2020: 2, 2021: 10, 2022: 0, 2023: 5})
    rows = {r.period: r for r in breakdown(facts, Query("incidents", by=("actor",), period="year")).rows}
    assert rows["2019"].previous is None
    assert (rows["2020"].previous, rows["2020"].count, rows["2020"].change) == (1, 2, None)  # 1 -> 2 is not +100%
    assert rows["2021"].change is None  # base 2 < 5
    assert (rows["2022"].previous, rows["2022"].count, rows["2022"].change) == (10, 0, -100.0)
    assert rows["2023"].previous == 0 and rows["2023"].change is None
    quarterly = breakdown(facts, Query("incidents", period="quarter", min_base=1))
    q = {r.period: r for r in quarterly.rows}
    assert q["2021-Q2"].year_ago == 2 and q["2021-Q2"].yoy == 400.0
    assert q["2021-Q2"].previous == 0  # the quarters between are periods with no activity


def _binomial_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def test_surge_uses_the_exact_poisson_rate_test_with_a_count_guard() -> None:
    facts = _facts({2018: 2, 2019: 3, 2020: 2, 2021: 14}, "Surger") + _facts({2018: 1, 2019: 0, 2020: 1, 2021: 4}, "Small")
    found = surges(facts, "actor", "year", window=3, min_count=5, alpha=0.05)
    assert [(s.value, s.period, s.count) for s in found] == [("Surger", "2021", 14)]
    surge = found[0]
    assert surge.baseline == pytest.approx(7 / 3, abs=0.01)
    assert surge.p_value == pytest.approx(_binomial_tail(14, 21, 0.25), rel=1e-9)
    assert "Poisson" in surge.test
    # 'Small' went 1 -> 4 (x4), but below the minimum count it is not a surge, however low its p-value.
    assert not surges(facts, "actor", "year", window=3, min_count=15)


def test_filters_periods_and_country_groups(tmp_path: Path) -> None:
    facts = [Fact(id="a", kind="incident", name="", day=date(2020, 1, 5), victim_country=("US", "UA"), sector=("health",)),
             Fact(id="b", kind="incident", name="", day=date(2020, 7, 5), victim_country=("UA",), confidence=90),
             Fact(id="c", kind="incident", name="", day=None, victim_country=("GB",))]
    nato = expand_countries("NATO", load_groups(None))
    result = breakdown(facts, Query("incidents", by=("victim-country",), where=(("victim-country", nato),)))
    assert {r.key: r.count for r in result.rows} == {("US",): 1, ("GB",): 1}  # UA is filtered out of the rows
    windowed = breakdown(facts, Query("incidents", since=parse_bound("2020-Q3"), until=parse_bound("2020", end=True)))
    assert windowed.total == 1 and windowed.counted[0].id == "b"
    assert breakdown(facts, Query("incidents", min_confidence=50)).total == 1
    assert most_targeted(facts, "victim-country", "sector")["US"].value == "health"
    assert period_range("2020-11", "2021-02", "month") == ["2020-11", "2020-12", "2021-01", "2021-02"]
    (tmp_path / "country-groups.json").write_text('{"Allies": ["Ukraine", "PL"], "NATO": ["US"]}')
    groups = load_groups(tmp_path)
    assert groups["ALLIES"] == {"UA", "PL"} and groups["NATO"] == {"US"} and "GB" in groups["FIVE-EYES"]
    with pytest.raises(ValueError):
        expand_countries("Atlantis", groups)


def test_the_analytics_core_imports_no_outer_layer() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "threatmesh" / "analytics"
    forbidden = {"sqlite3", "psycopg", "starlette", "uvicorn", "httpx", "requests", "socket", "taxii2client",
                 "urllib3", "jinja2", "weasyprint"}
    files = list(src.rglob("*.py"))
    assert len(files) >= 5
    for path in files:
        tree = ast.parse(path.read_text("utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        roots = {n.split(".")[0] for n in names}
        assert not roots & forbidden, (path.name, roots & forbidden)
        bad = [n for n in names if n.startswith(("threatmesh.web", "threatmesh.cli", "threatmesh.store.sqlite"))]
        assert not bad, (path.name, bad)
