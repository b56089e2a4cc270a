"""Incident datasets: the CFR Cyber Operations Tracker and mapping files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from threatmesh.errors import InputError
from threatmesh.ingest.formats import ReadOptions, Rejected, reader_for
from threatmesh.ingest.incidents import countries_named, country_code, load_mapping
from threatmesh.ingest.stix_reader import RawObject
from tests.conftest import corpus_path


def _read(path: Path, **mapping: str) -> tuple[dict[str, dict[str, Any]], list[Rejected]]:
    objects: dict[str, dict[str, Any]] = {}
    rejected: list[Rejected] = []
    for item in reader_for(str(path)).read(str(path), ReadOptions(mapping=mapping)):
        if isinstance(item, RawObject):
            assert item.data["id"] not in objects
            objects[item.data["id"]] = item.data
        else:
            rejected.append(item)
    return objects, rejected


@pytest.fixture(scope="module")
def cfr() -> tuple[dict[str, dict[str, Any]], list[Rejected]]:
    return _read(corpus_path("incidents", "cfr-cyber-operations.csv"))


def _targets_of(objects: dict[str, dict[str, Any]], source: str, kind: str) -> list[dict[str, Any]]:
    return [objects[r["target_ref"]] for r in objects.values()
            if r["type"] == "relationship" and r["source_ref"] == source and r["relationship_type"] == kind]


def test_every_row_becomes_one_incident(cfr: tuple[dict[str, dict[str, Any]], list[Rejected]]) -> None:
    objects, _ = cfr
    incidents = [o for o in objects.values() if o["type"] == "incident"]
    assert len(incidents) == 768
    years = Counter(o["x_threatmesh_date"][:4] for o in incidents if "x_threatmesh_date" in o)
    assert min(years) == "2005" and max(years) == "2022"


def test_the_ghana_row_is_represented_as_documented(cfr: tuple[dict[str, dict[str, Any]], list[Rejected]]) -> None:
    objects, _ = cfr
    ghana = next(o for o in objects.values() if o.get("name") == "Targeting of dissidents and opposition political "
                                                                  "candidates in Ghana")
    assert ghana["x_threatmesh_date"] == "2022-01-20" and ghana["x_threatmesh_operation_type"] == "espionage"
    assert any("haaretz.com" in ref.get("url", "") for ref in ghana["external_references"])
    sponsors = [o for o in _targets_of(objects, ghana["id"], "attributed-to") if o["type"] == "location"]
    assert [s["country"] for s in sponsors] == ["GH"]
    # 'Believed to be the work of Ghana's government' names a state, not a group: no intrusion set invented
    assert not [o for o in _targets_of(objects, ghana["id"], "attributed-to") if o["type"] == "intrusion-set"]
    victims = [o for o in _targets_of(objects, ghana["id"], "targets") if o["type"] == "identity"]
    assert victims[0]["sectors"] == ["civil-society"]
    assert [o["country"] for o in _targets_of(objects, ghana["id"], "targets") if o["type"] == "location"] == ["GH"]


def test_actors_are_attributed_to_their_sponsor(cfr: tuple[dict[str, dict[str, Any]], list[Rejected]]) -> None:
    objects, _ = cfr
    unc = next(o for o in objects.values() if o["type"] == "intrusion-set" and o["name"] == "UNC1151")
    # four rows name UNC1151, under three different sponsors: each row's claim is kept, none merged away
    assert {o["country"] for o in _targets_of(objects, unc["id"], "attributed-to")} == {"BY", "CN", "RU"}
    sponsors = Counter(objects[r["target_ref"]]["country"] for r in objects.values()
                       if r["type"] == "relationship" and r["relationship_type"] == "attributed-to"
                       and r["source_ref"].startswith("incident--") and r["target_ref"].startswith("location--"))
    assert sponsors.most_common(4) == [("CN", 256), ("RU", 154), ("IR", 96), ("KP", 79)]


def test_shifted_cells_are_reported_and_left_unknown(cfr: tuple[dict[str, dict[str, Any]], list[Rejected]]) -> None:
    objects, rejected = cfr
    reasons = [r.reason for r in rejected]
    assert any("sponsor 'Espionage'" in r for r in reasons)
    assert any(r.startswith("type 'https://") for r in reasons)
    assert all(", line " in r.location and r.object_id for r in rejected)
    assert not any(o.get("name") == "Espionage" for o in objects.values() if o["type"] == "location")


def test_all_objects_pass_the_oasis_library(cfr: tuple[dict[str, dict[str, Any]], list[Rejected]]) -> None:
    import stix2

    objects, _ = cfr
    for obj in objects.values():
        stix2.parse(obj, allow_custom=True)


def test_a_mapping_file_for_another_dataset(tmp_path: Path) -> None:
    data = tmp_path / "ops.csv"
    data.write_text("Name,When,Who,State,Target,Sector\nOp One,2021-03-04,Sandworm,Russia,Ukrainian power grid,"
                    "Energy\nOp Two,someday,,Narnia,,\n")
    mapping = tmp_path / "ops.yaml"
    mapping.write_text("name: ops\ncolumns:\n  title: Name\n  date: When\n  actor: Who\n  sponsor: State\n"
                       "  victims: Target\n  sector: Sector\n")
    reader = reader_for(str(data), "incidents")
    items = list(reader.read(str(data), ReadOptions(mapping={"incidents": str(mapping)})))
    objects = [i.data for i in items if isinstance(i, RawObject)]
    rejected = [i for i in items if not isinstance(i, RawObject)]
    one = next(o for o in objects if o.get("name") == "Op One")
    assert one["x_threatmesh_date"] == "2021-03-04"
    assert {o["country"] for o in objects if o["type"] == "location"} == {"RU", "UA"}
    assert sorted(r.reason.split(" ")[0] for r in rejected) == ["date", "sponsor"]
    two = next(o for o in objects if o.get("name") == "Op Two")
    assert "x_threatmesh_date" not in two


def test_a_bad_mapping_file_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"name": "x", "columns": {"title": "T", "colour": "C"}}))
    with pytest.raises(InputError, match="colour"):
        load_mapping(str(bad))


def test_country_names_and_demonyms() -> None:
    assert country_code("Russian Federation") == "RU" and country_code("Espionage") is None
    assert countries_named("Pharmaceutical companies in the United States, Canada, France, India, and South Korea") \
        == {"US", "CA", "FR", "IN", "KR"}
    assert countries_named("Ukrainian state entities") == {"UA"}
    assert countries_named("Political dissidents") == set()
