"""The CLI end to end, in-process, on a real SQLite node in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import indicator, run_cli, write_bundle
from threatmesh.auth import hash_key


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    home = tmp_path / "node"
    result = run_cli(capsys, home, "init", "--name", "Test SOC", "--json")
    assert result.code == 0, result.err
    return home


def test_init_creates_node_and_shows_key_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "n"
    first = run_cli(capsys, home, "init", "--name", "Alpha", "--json")
    assert first.code == 0
    info = first.json()
    assert info["identity"].startswith("identity--")
    assert info["admin_key"].startswith("tm_")
    db = (home / "threatmesh.db").read_bytes()
    # the key itself is nowhere in the database, only its hash
    assert info["admin_key"].encode() not in db
    assert hash_key(info["admin_key"]).encode() in db
    shown = run_cli(capsys, home, "show", info["identity"], "--json")
    assert shown.json()["name"] == "Alpha"


def test_init_refuses_to_overwrite(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    again = run_cli(capsys, home, "init")
    assert again.code == 1
    assert "already exists" in again.err
    assert "Traceback" not in again.err
    assert len(again.err.strip().splitlines()) == 1
    ok = run_cli(capsys, home, "init", "--exist-ok")
    assert ok.code == 0


def test_home_from_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from threatmesh.cli import main

    monkeypatch.setenv("THREATMESH_HOME", str(tmp_path / "envhome"))
    assert main(["init", "--json"]) == 0
    assert (tmp_path / "envhome" / "threatmesh.db").exists()


def test_commands_without_node_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, tmp_path / "missing", "stats")
    assert result.code == 1
    assert "no node in" in result.err and "threatmesh init" in result.err
    assert "Traceback" not in result.err


def test_ingest_summary_new_updated_unchanged(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write_bundle(tmp_path / "a.json", [indicator(1), indicator(2)])
    second = write_bundle(tmp_path / "b.json", [indicator(1, "2024-02-01T00:00:00.000Z"), indicator(2), indicator(3)])
    r1 = run_cli(capsys, home, "ingest", str(first), "--json")
    assert r1.code == 0, r1.err
    assert (r1.json()["new"], r1.json()["updated"], r1.json()["unchanged"]) == (2, 0, 0)
    r2 = run_cli(capsys, home, "ingest", str(second), "--json")
    summary = r2.json()
    assert (summary["new"], summary["updated"], summary["unchanged"]) == (1, 1, 1)
    assert summary["sources"][0]["source"] == str(second)
    versions = run_cli(capsys, home, "show", indicator(1)["id"], "--all-versions", "--json").json()
    assert [v["modified"] for v in versions] == ["2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"]
    latest = run_cli(capsys, home, "show", indicator(1)["id"], "--json").json()
    assert latest["modified"] == "2024-02-01T00:00:00.000Z"


def test_ingest_reports_rejections_and_keeps_the_rest(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = dict(indicator(5))
    del broken["id"]
    path = write_bundle(tmp_path / "mixed.json", [indicator(4), broken, indicator(6)])
    result = run_cli(capsys, home, "ingest", str(path), "--json")
    assert result.code == 3
    summary = result.json()
    assert summary["new"] == 2 and summary["rejected"] == 1
    rejection = summary["sources"][0]["rejections"][0]
    assert "objects[1]" in rejection["location"] and str(path) in rejection["location"]
    assert "id" in rejection["reason"]


def test_ingest_tlp_option_is_kept_beside_the_object(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_bundle(tmp_path / "amber.json", [indicator(7)])
    assert run_cli(capsys, home, "ingest", str(path), "--tlp", "amber").code == 0
    stats = run_cli(capsys, home, "stats", "--json").json()
    assert stats["by_tlp"].get("amber") == 1
    exported = tmp_path / "out.json"
    assert run_cli(capsys, home, "export", "--format", "stix", "-o", str(exported)).code == 0
    objects = {o["id"]: o for o in json.loads(exported.read_text())["objects"]}
    assert objects[indicator(7)["id"]] == indicator(7)  # the object itself is unchanged


def test_ingest_unknown_tlp_is_a_usage_error(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_bundle(tmp_path / "x.json", [indicator(8)])
    result = run_cli(capsys, home, "ingest", str(path), "--tlp", "purple")
    assert result.code == 2
    assert "purple" in result.err


def test_search_and_stats(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_bundle(tmp_path / "s.json", [
        indicator(9),
        {"type": "intrusion-set", "spec_version": "2.1", "id": "intrusion-set--0f6c3a34-8c7e-4c3e-9ff7-1d2a3b4c5d6e",
         "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z", "name": "Granite Heron",
         "aliases": ["Stone Crane"], "description": "Targets hospitals."},
    ])
    assert run_cli(capsys, home, "ingest", str(path)).code == 0
    by_alias = run_cli(capsys, home, "search", "Stone Crane", "--json").json()
    assert [o["name"] for o in by_alias] == ["Granite Heron"]
    by_value = run_cli(capsys, home, "search", "bad9.example", "--json").json()
    assert by_value and by_value[0]["id"] == indicator(9)["id"]
    hostile = run_cli(capsys, home, "search", 'APT28 " OR (', "--json")
    assert hostile.code == 0 and hostile.json() == []
    stats = run_cli(capsys, home, "stats", "--json").json()
    assert stats["by_type"]["indicator"] == 1 and stats["by_type"]["intrusion-set"] == 1
    assert stats["by_type"]["identity"] == 1  # the node's own identity
    assert stats["database_bytes"] > 0


def test_show_unknown_id(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, home, "show", "indicator--00000000-0000-4000-8000-000000000000")
    assert result.code == 1 and "no object" in result.err


def test_demo_is_idempotent_and_exportable(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(capsys, home, "demo", "--json").json()
    assert first["new"] > 100 and first["rejected"] == 0
    second = run_cli(capsys, home, "demo", "--json").json()
    assert second["new"] == 0 and second["unchanged"] == first["new"]
    stats = run_cli(capsys, home, "stats", "--json").json()
    assert set(stats["by_tlp"]) >= {"clear", "green", "amber", "amber+strict", "red"}


def test_help_explains(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run_cli(capsys, tmp_path, "ingest", "--help")
    assert result.code == 0
    assert "--tlp" in result.out and "stdin" in result.out and "--strict" in result.out
