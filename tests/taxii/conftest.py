"""Fixtures for the TAXII server tests: a fresh node served in process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from tests.taxii.support import Served
from threatmesh.node import init_node
from threatmesh.web.app import create_app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    created = init_node(tmp_path / "node", "test node", environ={})
    node = created.node
    node.settings = replace(node.settings, max_content_length=1_000_000, page_size_max=500, page_size_default=100)
    app = create_app(node.settings, node.store)
    with TestClient(app) as client:
        yield Served(node, client, created.admin_key, node.default_collection)
    node.close()
