"""Sightings through `threatmesh match`: counted once per line, updated as new versions, valid STIX."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import corpus_path
from tests.helpers import run_cli, write_bundle
from threatmesh.match.sightings import sighting_id
from threatmesh.node import open_node

ACTOR = "intrusion-set--00000000-0000-4000-8000-00000000aaaa"
CAMPAIGN = "campaign--00000000-0000-4000-8000-00000000bbbb"


def _ind(n: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
            "created": "2018-01-01T00:00:00.000Z", "modified": "2018-01-01T00:00:00.000Z", "name": f"ioc {n}",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2018-01-01T00:00:00Z", **extra}


def _rel(n: int, kind: str, source: str, target: str) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{n:08d}-0000-4000-8000-000000000000",
            "created": "2018-01-01T00:00:00.000Z", "modified": "2018-01-01T00:00:00.000Z",
            "relationship_type": kind, "source_ref": source, "target_ref": target}


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    home = tmp_path / "node"
    assert run_cli(capsys, home, "init", "--name", "SOC", "--json").code == 0
    objects = [
        _ind(1, "[ipv4-addr:value = '173.234.31.186']"),  # the brute forcer in the loghub sshd log
        _ind(2, "[domain-name:value = 'marryaldkfaczcz.com']"),  # its reverse name's parent
        _ind(3, "[ipv4-addr:value = '10.164.94.0/24']"),  # the scanner range of the WRCCDC Zeek logs
        {"type": "intrusion-set", "spec_version": "2.1", "id": ACTOR, "created": "2018-01-01T00:00:00.000Z",
         "modified": "2018-01-01T00:00:00.000Z", "name": "Red Team"},
        {"type": "campaign", "spec_version": "2.1", "id": CAMPAIGN, "created": "2018-01-01T00:00:00.000Z",
         "modified": "2018-01-01T00:00:00.000Z", "name": "Scan wave"},
        _rel(1, "indicates", "indicator--00000003-0000-4000-8000-000000000000", CAMPAIGN),
        _rel(2, "attributed-to", CAMPAIGN, ACTOR),
    ]
    bundle = write_bundle(tmp_path / "iocs.json", objects)
    assert run_cli(capsys, home, "ingest", str(bundle)).code == 0
    return home


def _sighting(home: Path, indicator_n: int) -> dict[str, Any] | None:
    node = open_node(home)
    try:
        sid = sighting_id(node.identity_id, f"indicator--{indicator_n:08d}-0000-4000-8000-000000000000")
        stored = node.store.get_latest(sid)
        return orjson.loads(stored.json) if stored else None
    finally:
        node.close()


def test_match_records_sightings_once_per_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ssh = corpus_path("logs", "loghub", "OpenSSH", "OpenSSH_2k.log")
    first = run_cli(capsys, home, "match", str(ssh), "--year", "2018", "--json")
    assert first.code == 0, first.err
    summary = first.json()
    rows = {r["indicator"][11:19]: r for r in summary["sightings"]}
    expected_ip_lines = sum(1 for line in ssh.read_text().splitlines() if "173.234.31.186" in line)
    assert rows["00000001"]["count"] == rows["00000001"]["new"] == expected_ip_lines
    assert rows["00000002"]["count"] >= 1
    sighting = _sighting(home, 1)
    assert sighting is not None and sighting["count"] == expected_ip_lines
    assert sighting["first_seen"].startswith("2018-12-10T")
    node = open_node(home)
    assert sighting["where_sighted_refs"] == [node.identity_id]
    node.close()

    again = run_cli(capsys, home, "match", str(ssh), "--year", "2018", "--json")
    assert again.json()["new_hits"] == 0
    resighted = _sighting(home, 1)
    assert resighted is not None and resighted["count"] == expected_ip_lines  # not doubled
    assert resighted["modified"] == sighting["modified"]  # nothing new: no new version


def test_grown_log_adds_only_its_new_lines(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n"
    log.write_text(line * 3)
    assert run_cli(capsys, home, "match", str(log), "--year", "2018", "--json").json()["new_hits"] == 3
    with open(log, "a") as fh:
        fh.write(line * 2)
    assert run_cli(capsys, home, "match", str(log), "--year", "2018", "--json").json()["new_hits"] == 2
    sighting = _sighting(home, 1)
    assert sighting is not None and sighting["count"] == 5
    node = open_node(home)
    versions = node.store.get_versions(sighting["id"])
    node.close()
    assert len(versions) == 2  # every update is a new version through put_objects


def test_zeek_hits_table_shows_the_attributed_actor(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smtp = corpus_path("logs", "zeek-wrccdc2018", "zeek-default", "smtp.log")
    result = run_cli(capsys, home, "match", str(smtp))
    assert result.code == 0, result.err
    assert "Red Team" in result.out and "ioc 3" in result.out
    data_lines = sum(1 for t in smtp.read_text().splitlines() if t and not t.startswith("#")
                     and "\t10.164.94." in t)
    assert (_sighting(home, 3) or {}).get("count") == data_lines


def test_evidence_is_stored_as_observed_data(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stix2 = pytest.importorskip("stix2")
    log = tmp_path / "auth.log"
    log.write_text("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n")
    assert run_cli(capsys, home, "match", str(log), "--year", "2018", "--evidence", "--json").code == 0
    sighting = _sighting(home, 1)
    assert sighting is not None and len(sighting["observed_data_refs"]) == 1
    node = open_node(home)
    od = orjson.loads(node.store.get_latest(sighting["observed_data_refs"][0]).json)  # type: ignore[union-attr]
    refs = [orjson.loads(node.store.get_latest(r).json) for r in od["object_refs"]]  # type: ignore[union-attr]
    node.close()
    assert {"type": "ipv4-addr", "value": "173.234.31.186"}.items() <= refs[0].items()
    # the OASIS library accepts what was written (custom x_ properties allowed)
    stix2.parse(sighting, allow_custom=True)
    stix2.parse(od, allow_custom=True)


def test_jsonl_output_alert_command_and_unreadable_lines(home: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    log.write_text("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x from 173.234.31.186\nthis is no syslog\n")
    alerts = tmp_path / "alerts.txt"
    script = tmp_path / "alert.py"
    script.write_text("import os, sys\nopen(sys.argv[1], 'a').write(os.environ['THREATMESH_INDICATOR'] + ' ' + "
                      "sys.stdin.read() + '\\n')\n")
    cmd = f"{sys.executable} {script} {alerts}"
    result = run_cli(capsys, home, "match", str(log), "--format", "syslog", "--year", "2018", "--jsonl",
                     "--alert-cmd", cmd)
    assert result.code == 3  # finished, but a line could not be read
    (hit,) = [json.loads(x) for x in result.out.splitlines()]
    assert hit["indicator"].startswith("indicator--00000001") and hit["line"] == 1 and hit["new"] is True
    assert alerts.read_text().startswith("indicator--00000001")
    # a re-run finds the hit again but it is not new: no alert
    run_cli(capsys, home, "match", str(log), "--format", "syslog", "--year", "2018", "--jsonl", "--alert-cmd", cmd)
    assert len(alerts.read_text().splitlines()) == 1
    summary = run_cli(capsys, home, "match", str(log), "--year", "2018", "--json", "--dry-run").json()
    assert summary["unreadable"] == 1 and summary["unreadable_lines"][0]["line"] == 2


def test_missing_log_is_one_line_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, home, "match", "/nonexistent/x.log")
    assert result.code == 1 and result.err.strip().count("\n") == 0 and "no such file" in result.err


def test_warninglisted_indicators_are_skipped_unless_asked(home: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    warninglists = pytest.importorskip("threatmesh.kb.warninglists")
    node = open_node(home)
    node.store.set_meta(warninglists.META_HITS, json.dumps(
        {"indicator--00000001-0000-4000-8000-000000000000": ["List of known scanners"]}))
    node.close()
    log = tmp_path / "auth.log"
    log.write_text("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n")
    skipped = run_cli(capsys, home, "match", str(log), "--year", "2018", "--json", "--dry-run").json()
    assert skipped["hits"] == 0
    kept = run_cli(capsys, home, "match", str(log), "--year", "2018", "--json", "--dry-run",
                   "--include-warninglisted").json()
    assert kept["hits"] == 1
