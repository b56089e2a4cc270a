"""Small helpers for tests that drive the CLI in-process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from threatmesh.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Run:
    capsys.readouterr()
    code = main(["--home", str(home), *args])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def write_bundle(path: Path, objects: list[dict[str, Any]], **bundle: Any) -> Path:
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
                                **bundle, "objects": objects}))
    return path


def indicator(n: int, modified: str = "2024-01-01T00:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": modified,
        "name": f"bad domain {n}",
        "pattern": f"[domain-name:value = 'bad{n}.example']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        **extra,
    }
