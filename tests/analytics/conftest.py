"""A node holding the CFR incidents (through the product's incident importer) and the Unit 42 playbooks.

Built once per session through the real CLI (`init`, `ingest`), since every
analytics test reads the same data and an import takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import corpus_path
from threatmesh.cli import main


@pytest.fixture(scope="session")
def cfr_csv() -> Path:
    return corpus_path("incidents", "cfr-cyber-operations.csv")


@pytest.fixture(scope="session")
def unit42_dir() -> Path:
    return corpus_path("stix", "unit42-playbooks", "playbook_json")


@pytest.fixture(scope="session")
def intel_home(tmp_path_factory: pytest.TempPathFactory, cfr_csv: Path, unit42_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("analytics-node")
    assert main(["--home", str(home), "init", "--name", "analytics test node", "--json"]) == 0
    # Both sources have a few bad records (shifted CSV cells, a list-valued identity_class):
    # exit 3 = finished, some rejected and reported.
    assert main(["--home", str(home), "ingest", str(cfr_csv), "--json"]) in (0, 3)
    assert main(["--home", str(home), "ingest", str(unit42_dir), "--json"]) in (0, 3)
    return home
