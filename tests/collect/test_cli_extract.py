"""`threatmesh extract`: triage without storing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli


def test_extract_prints_json_with_positions_and_stores_nothing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.md"
    report.write_text("# Report\n\nC2: hxxps://evil[.]com/gate and https://www.welivesecurity.com/x\n")
    run = run_cli(capsys, tmp_path / "no-node", "extract", str(report), "--json")
    assert run.code == 0
    hits = run.json()["hits"]
    assert [(h["type"], h["found"], h["value"], h["line"], h["column"]) for h in hits] == [
        ("url", "hxxps://evil[.]com/gate", "https://evil.com/gate", 3, 5)]
    assert not (tmp_path / "no-node").exists()
    everything = run_cli(capsys, tmp_path, "extract", str(report), "--json", "--no-default-ignores").json()
    assert len(everything["hits"]) == 2


def test_extract_reports_an_unreadable_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_cli(capsys, tmp_path, "extract", str(tmp_path / "missing.txt"))
    assert run.code == 3
    assert "missing.txt" in run.err and "Traceback" not in run.err
