"""Shared fixtures: the third-party corpora, read in place from ../shared/corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


def corpus_path(*parts: str) -> Path:
    """A path inside the shared corpora; skips the calling test when it is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus {path} is absent (tests read ../shared/corpora; see its MANIFEST.md)")
    return path


@pytest.fixture
def corpora_dir() -> Path:
    return corpus_path()
