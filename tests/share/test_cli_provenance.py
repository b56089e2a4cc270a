"""`threatmesh show ID --provenance` shows the chain by which a version arrived."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli
from threatmesh.node import init_node
from threatmesh.store.protocol import ProvenanceRecord


def test_show_provenance_prints_the_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "n"
    node = init_node(home, "n", environ={}).node
    latest = node.store.get_latest(node.identity_id)
    assert latest is not None
    node.store.record_provenance([ProvenanceRecord(latest.id, latest.version, "cert-b", 1_700_000_000_000_000,
                                                   signer="identity--b", key_fingerprint="0123abcd0123abcd",
                                                   verified=True, path=("hospital-a", "isac"))])
    node.close()
    shown = run_cli(capsys, home, "show", latest.id, "--provenance", "--json")
    assert shown.code == 0, shown.err
    [entry] = shown.json()
    assert entry["source"] == "node"
    assert entry["receipts"][0]["chain"] == ["hospital-a", "isac", "cert-b", "this node"]
    assert entry["receipts"][0]["verified"] is True
    text = run_cli(capsys, home, "show", latest.id, "--provenance")
    assert "hospital-a -> isac -> cert-b -> this node" in text.out and "signature verified" in text.out
