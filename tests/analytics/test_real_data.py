"""Analytics figures on real data, checked against an independent computation over the raw files.

The node is built through the real CLI; the expected figures come from pandas
over the CFR CSV and plain Python over the Unit 42 JSON bundles, never from
threatmesh code.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pycountry
import pytest

from tests.helpers import run_cli
from threatmesh.analytics import build_facts, top
from threatmesh.node import open_node


# What the incident importer documents (ingest/incidents.py), restated here independently:
# CFR names the DPRK 'Korea'; actors are the Affiliations groups without hedging words;
# sectors are the Category values, lower-case and dashed, URLs dropped.
_HEDGE = re.compile(r"^\W*(?:believed to be the work of|associated with|attributed to|possibly|likely|suspected)\W*",
                    re.I)


def _sponsor(text: str) -> str | None:
    # The documented rule: a Sponsor cell that names a recognisable country is the sponsor, even on
    # rows whose cells look shifted (e.g. 'The Philippines' on the 2021 MalKamak aerospace row, ' Bulgaria'
    # on the 'MalKamak' row); only cells that are no country ('Espionage', 'Government') stay unknown.
    # The importer knows 'the philippines' (_COUNTRY_WORDS), so the leading 'The' is dropped here too.
    text = re.sub(r"^the\s+", "", text.strip().strip('"').strip(), flags=re.I)
    if not text:
        return None
    # Short names CFR uses that the ISO tables spell otherwise ('Korea' is the DPRK's cut-off name).
    short = {"Korea": "KP", "Palestine": "PS", "Vietnam": "VN", "Turkey": "TR"}
    if text in short:
        return short[text]
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


def _groups(text: str) -> list[str]:
    text = _HEDGE.sub("", text.replace("?", " ")).strip(" .")
    if not text or re.search(r"\bgovernment\b|\bunknown\b", text, re.I):
        return []
    return [re.sub(r"[^0-9a-z]", "", p.strip(" .").lower()) for p in re.split(r",|;| and ", text)
            if len(p.strip(" .")) >= 2]


@pytest.fixture(scope="module")
def cfr(cfr_csv: Path) -> pd.DataFrame:
    raw = pd.read_csv(cfr_csv, dtype=str, keep_default_na=False, encoding_errors="replace")
    raw["title"] = raw["Title"].map(lambda t: " ".join(t.split()))
    raw["description"] = raw["Description"].map(lambda t: " ".join(t.split()))
    raw["date"] = pd.to_datetime(raw["Date"].str.strip(), format="%m/%d/%Y", errors="coerce")
    raw["own"] = raw["Sponsor"].map(_sponsor)
    raw["groups"] = raw["Affiliations"].map(lambda a: _groups(" ".join(a.split())))
    raw["sectors"] = raw["Category"].map(lambda text: {
        slug for slug in (re.sub(r"[^a-z0-9]+", "-", c.strip().lower()).strip("-")
                          for c in " ".join(text.split()).split(",")) if slug and "http" not in slug})
    # One incident per (title, date, description): rows repeating all three would be one object.
    frame = raw.groupby(["title", "Date", "description"], sort=False).agg(
        date=("date", "first"), own=("own", lambda s: {v for v in s if isinstance(v, str)}),
        groups=("groups", lambda s: {g for gs in s for g in gs}),
        sectors=("sectors", lambda s: set().union(*s)), Title=("Title", "first")).reset_index()
    # Without a sponsor of its own, an incident takes its actor's, if that actor has exactly one.
    actor_states: dict[str, set[str]] = defaultdict(set)
    for own, groups in zip(frame["own"], frame["groups"]):
        for g in groups:
            actor_states[g] |= own
    frame["sponsors"] = [sorted(own) if own else sorted({next(iter(actor_states[g])) for g in groups
                                                           if len(actor_states[g]) == 1})
                         for own, groups in zip(frame["own"], frame["groups"])]
    frame["year"] = frame["date"].dt.year
    frame["sectors"] = frame["sectors"].map(sorted)
    return frame


def _stats(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> dict[str, Any]:
    run = run_cli(capsys, home, "stats", *args, "--json")
    assert run.code == 0, run.err
    return run.json()  # type: ignore[no-any-return]


def test_incidents_per_sponsor_per_year(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                        cfr: pd.DataFrame) -> None:
    data = _stats(capsys, intel_home, "incidents", "--by", "sponsor", "--period", "year")
    got = {(r["period"], r["sponsor"]): r["count"] for r in data["rows"] if r["count"] and r["sponsor"] != "unknown"}
    dated = cfr.dropna(subset=["date"]).explode("sponsors").dropna(subset=["sponsors"])
    expected = {(str(int(y)), s): int(n) for (y, s), n in dated.groupby(["year", "sponsors"]).size().items()}
    assert got == expected
    assert data["undated"] == int(cfr["date"].isna().sum())
    assert data["total"] == int(cfr["date"].notna().sum())
    assert len(cfr) == 768


def test_year_over_year_change_for_the_russian_federation(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                                          cfr: pd.DataFrame) -> None:
    data = _stats(capsys, intel_home, "incidents", "--by", "sponsor", "--period", "year",
                  "--where", "sponsor=Russian Federation")
    assert {r["sponsor"] for r in data["rows"]} == {"RU"}
    per_year = cfr[cfr["sponsors"].map(lambda s: "RU" in s)].dropna(subset=["date"]).groupby("year").size()
    rows = {r["period"]: r for r in data["rows"]}
    for year in (2019, 2020, 2021, 2022):
        row, before, after = rows[str(year)], int(per_year.get(year - 1, 0)), int(per_year.get(year, 0))
        assert (row["previous"], row["count"]) == (before, after)
        assert row["change_pct"] == pytest.approx(round((after - before) * 100 / before, 1))
    # A sponsor's growth is also reachable by code, and filters narrow the total.
    by_code = _stats(capsys, intel_home, "incidents", "--period", "year", "--where", "sponsor=RU")
    assert by_code["total"] == int(per_year.sum())


def test_share_of_government_victims(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                     cfr: pd.DataFrame) -> None:
    data = _stats(capsys, intel_home, "incidents", "--by", "sector")
    rows = {r["sector"]: r for r in data["rows"]}
    with_sector = cfr[cfr["sectors"].map(bool)]
    government = with_sector["sectors"].map(lambda s: "government" in s).sum()
    assert rows["government"]["count"] == government
    assert rows["government"]["share"] == pytest.approx(government / len(with_sector), abs=1e-4)
    assert rows["unknown"]["count"] == len(cfr) - len(with_sector)
    assert rows["government"]["share"] > 0.45  # the most targeted sector by far
    # The most targeted sector is government, as in the raw file.
    exploded = with_sector.explode("sectors")["sectors"].value_counts()
    assert max(rows, key=lambda k: rows[k]["count"] if k != "unknown" else -1) == exploded.index[0]


def test_top_sponsors(intel_home: Path, cfr: pd.DataFrame) -> None:
    node = open_node(intel_home)
    try:
        facts = build_facts(node.store.iter_objects()).of("incidents")
    finally:
        node.close()
    ranked = top(facts, "sponsor", 5)
    expected = cfr["sponsors"].explode().dropna().value_counts().head(5)
    assert [(r.value, r.count) for r in ranked] == [(k, int(v)) for k, v in expected.items()]
    assert ranked[0].share == pytest.approx(expected.iloc[0] / cfr["sponsors"].map(bool).sum(), abs=1e-4)


def _unit42_latest(folder: Path) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        for obj in json.loads(path.read_text("utf-8")).get("objects", []):
            known = latest.get(obj["id"])
            if known is None or obj.get("modified", "") > known.get("modified", ""):
                latest[obj["id"]] = obj
    return latest


def test_unit42_campaigns_by_sector_and_victim_country(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                                       unit42_dir: Path) -> None:
    objects = _unit42_latest(unit42_dir)
    sectors: dict[str, set[str]] = defaultdict(set)
    countries: dict[str, set[str]] = defaultdict(set)
    for rel in objects.values():
        if rel["type"] != "relationship" or rel["relationship_type"] != "targets":
            continue
        source, target = objects.get(rel["source_ref"]), objects.get(rel["target_ref"])
        if not source or not target or source["type"] != "campaign" or target["type"] != "identity":
            continue
        sectors[source["id"]].update(s.lower() for s in target.get("sectors", []))
        value = target.get("x_cta_country", [])
        countries[source["id"]].update([value] if isinstance(value, str) else value)
    expected_sectors = Counter(s for values in sectors.values() for s in values)
    expected_countries = Counter(c.upper() for values in countries.values() for c in values)

    by_sector = _stats(capsys, intel_home, "campaigns", "--by", "sector")
    assert {r["sector"]: r["count"] for r in by_sector["rows"] if r["sector"] != "unknown"} == dict(expected_sectors)
    campaigns = sum(1 for o in objects.values() if o["type"] == "campaign")
    assert by_sector["total"] == campaigns
    by_country = _stats(capsys, intel_home, "campaigns", "--by", "victim-country")
    got = {r["victim-country"]: r["count"] for r in by_country["rows"] if r["victim-country"] != "unknown"}
    assert got == dict(expected_countries)


def test_explain_lists_exactly_the_objects_counted(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                                   cfr: pd.DataFrame) -> None:
    data = json.loads(run_cli(capsys, intel_home, "stats", "incidents", "--by", "sponsor", "--since", "2021",
                              "--until", "2021", "--where", "sponsor=KP", "--json", "--explain").out)
    row = data["rows"][0]
    assert row["count"] == len(row["ids"]) == len(data["objects"])
    expected = cfr[cfr["sponsors"].map(lambda s: "KP" in s) & (cfr["year"] == 2021)]
    assert sorted(o["name"] for o in data["objects"]) == sorted(expected["title"])
    assert all(o["date"].startswith("2021") for o in data["objects"])
    text = run_cli(capsys, intel_home, "stats", "incidents", "--where", "sponsor=KP", "--since", "2021",
                   "--until", "2021", "--explain")
    assert text.code == 0 and all(i in text.out for i in row["ids"])


def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                        cfr: pd.DataFrame) -> None:
    for args in (("stats", "incidents", "--by", "colour"), ("stats", "widgets"),
                 ("stats", "incidents", "--where", "sponsor=Atlantis"), ("stats", "incidents", "--since", "soon")):
        run = run_cli(capsys, intel_home, *args)
        assert run.code != 0 and "Traceback" not in run.err, args
    plain = run_cli(capsys, intel_home, "stats", "--json")
    assert plain.code == 0 and plain.json()["by_type"]["incident"] == len(cfr)


def test_brief_counts_what_stats_counts_and_renders_as_pdf(capsys: pytest.CaptureFixture[str], intel_home: Path,
                                                         cfr: pd.DataFrame, tmp_path: Path) -> None:
    import shutil
    import subprocess

    md = tmp_path / "brief.md"
    run = run_cli(capsys, intel_home, "report", "brief", "--actor-country", "RU", "--since", "2018",
                  "--format", "md", "-o", str(md), "--json")
    assert run.code == 0, run.err
    figures = run.json()
    in_scope = cfr[cfr["sponsors"].map(lambda s: "RU" in s) & (cfr["date"] >= "2018-01-01")]
    assert figures["total"] == len(in_scope)
    assert dict(figures["trend"]) == {str(int(y)): int(n) for y, n in in_scope.groupby("year").size().items()}
    text = md.read_text("utf-8")
    assert f"{len(in_scope):,} incidents in scope" in text and "## Method" in text
    assert "Sandworm" in text  # the top actor of Russian operations in the tracker
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    pdf = tmp_path / "brief.pdf"
    assert run_cli(capsys, intel_home, "report", "brief", "--actor-country", "RU", "--victim-countries", "NATO",
                   "--format", "pdf", "-o", str(pdf)).code == 0
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert 1 <= len(pages) <= 2  # a one-to-two page brief
    # A rendered page with charts is not blank: far more than a few kilobytes of PNG.
    assert pages[0].stat().st_size > 20_000
