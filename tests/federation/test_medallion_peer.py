"""Interop: medallion (the OASIS reference TAXII 2.1 server, its own process on
127.0.0.1) as a threatmesh peer, set up and synced through the CLI: pull with
paging to the end, push under the egress policy, nothing echoed back, a second
round moves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.federation.mesh import indicator
from tests.taxii.test_medallion_peer import (  # noqa: F401  (the fixture is used by name)
    PASSWORD,
    SOURCE,
    TARGET,
    USER,
    _latest,
    _medallion_collection,
    medallion,
)
from threatmesh.node import open_node
from threatmesh.stix.parse import parse_object

pytest.importorskip("medallion", reason="medallion (the OASIS reference server) is in the test extras")


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threatmesh.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=180)


def test_medallion_as_a_peer_pull_and_push(tmp_path: Path, medallion: tuple[str, list[dict[str, Any]]]) -> None:
    root_url, remote = medallion
    home = tmp_path / "node"
    assert _cli(home, "init", "--name", "medallion's peer").returncode == 0
    added = _cli(home, "peer", "add", "med", root_url, "--key", f"{USER}:{PASSWORD}", "--role", "community",
                 "--pull", SOURCE, "--push", TARGET, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["key"].startswith("tm_")

    ours = {"clear": indicator("ours-clear", "clear"), "green": indicator("ours-green", "green"),
            "amber": indicator("ours-amber", "amber"), "red": indicator("ours-red", "red")}
    node = open_node(home, environ={})
    try:
        node.store.put_objects([parse_object(o) for o in ours.values()], collection_id=node.default_collection.id,
                               source="seed")
    finally:
        node.close()

    first = _cli(home, "sync", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    (report,) = json.loads(first.stdout)
    expected_pull = _latest(remote)
    assert report["received"] == len(expected_pull), report
    # Community peer, not cleared: CLEAR and GREEN go; AMBER, RED and the node's unmarked identity do not.
    assert report["sent"] == 2, report
    assert report["refused"] >= 3, report

    pushed = {o["id"]: o for o in _medallion_collection(root_url, TARGET)}
    assert set(pushed) == {ours["clear"]["id"], ours["green"]["id"]}
    assert pushed[ours["clear"]["id"]] == ours["clear"]  # byte-level content intact, as JSON

    node = open_node(home, environ={})
    try:
        for object_id, obj in expected_pull.items():
            stored = node.store.get_latest(object_id)
            assert stored is not None and json.loads(stored.json) == obj
            assert stored.source == "peer:med"
    finally:
        node.close()

    # Nothing pulled from medallion was pushed back to it, and a second round moves nothing.
    second = _cli(home, "sync", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    (again,) = json.loads(second.stdout)
    assert again["received"] == 0 and again["sent"] == 0, again
    listed = _cli(home, "peer", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["error"] is None and row["received"] == len(expected_pull) and row["sent"] == 2
