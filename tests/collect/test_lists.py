"""Lists and tables: CSV/TSV with --map, plain lists, maltrail trails, Sophos CSVs, encodings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from threatmesh.ingest.formats import ReadOptions, Rejected, reader_for
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.stix.parse import parse_object
from tests.conftest import corpus_path
from tests.helpers import run_cli


def _read(path: Path, **mapping: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
    reader = reader_for(str(path))
    objects, rejected = [], []
    for item in reader.read(str(path), ReadOptions(mapping=mapping)):
        if isinstance(item, RawObject):
            objects.append(item.data)
        else:
            rejected.append(item)
    return objects, rejected


def test_sophos_typed_csv_with_bom(tmp_path: Path) -> None:
    path = corpus_path("reports", "sophos", "2023-12 Akira followup.csv")
    assert reader_for(str(path)).name == "list"
    objects, rejected = _read(path)
    indicators = [o for o in objects if o["type"] == "indicator"]
    assert any(o["pattern"] == "[ipv4-addr:value = '45.227.254.26']" for o in indicators)
    # the 'Description' row is reported with its line, not stored and not dropped silently
    assert len(rejected) == 1 and rejected[0].location.endswith("line 2") and "Description" in rejected[0].reason
    import stix2

    for obj in objects:
        parse_object(obj)
        stix2.parse(obj, allow_custom=False)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le"])
def test_csv_encodings_and_explicit_mapping(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("Indicator_type,Data,Comment\nSHA256,e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,x\n"
                    "domain,evil[.]com,é\nMD5,not-a-hash,\n", encoding=encoding)
    objects, rejected = _read(path, type="Indicator_type", value="Data")
    patterns = sorted(o["pattern"] for o in objects if o["type"] == "indicator")
    assert patterns == ["[domain-name:value = 'evil.com']",
                        "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']"]
    assert [r.location.rsplit(", ", 1)[1] for r in rejected] == ["line 4"]
    assert "not a valid md5" in rejected[0].reason


def test_a_mapping_that_names_a_missing_column_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1.2.3.4\tx\n")
    objects, rejected = _read(path, value="Nope")
    assert not objects and "Nope" in rejected[0].reason


def test_maltrail_trail_attributes_its_indicators_to_an_intrusion_set() -> None:
    path = corpus_path("feeds", "maltrail", "trails", "static", "malware", "apt_sofacy.txt")
    objects, rejected = _read(path)
    sets = [o for o in objects if o["type"] == "intrusion-set"]
    assert len(sets) == 1 and sets[0]["name"] == "sofacy" and "fancy bear" in sets[0]["aliases"]
    assert any(ref.get("url", "").startswith("https://www.alienvault.com") for ref in sets[0]["external_references"])
    indicators = {o["id"] for o in objects if o["type"] == "indicator"}
    indicates = [o for o in objects if o["type"] == "relationship"]
    assert len(indicators) > 1000 and {r["source_ref"] for r in indicates} == indicators
    assert all(r["target_ref"] == sets[0]["id"] for r in indicates)
    assert all(r.location.startswith(str(path)) and ", line " in r.location for r in rejected)


def test_plain_list_ingest_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "node"
    assert run_cli(capsys, home, "init", "--json").code == 0
    listing = tmp_path / "block.txt"
    listing.write_text("# my list\nevil[.]com\n1.2.3.4\nhxxp://bad[.]org/x\n5.6.7.8\nnot-an-indicator\n")
    first = run_cli(capsys, home, "ingest", str(listing), "--json")
    assert first.code == 3  # one line rejected
    data = first.json()
    assert data["new"] == 8 and data["rejected"] == 1
    assert data["sources"][0]["rejections"][0]["location"].endswith("line 6")
    again = run_cli(capsys, home, "ingest", str(listing), "--json").json()
    assert again["new"] == 0 and again["unchanged"] == 8
