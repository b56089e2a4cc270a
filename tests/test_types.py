"""The type checker passes over the whole of src/ (STYLE: type-annotate everything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_src() -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extras; install them to type-check")
    done = subprocess.run([sys.executable, "-m", "mypy", "src/threatmesh"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
