"""Ingesting a prose report links its indicators to the actors the node already knows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import write_bundle
from threatmesh.ingest.pipeline import ingest_paths
from threatmesh.node import init_node

ACTOR = {
    "type": "intrusion-set", "spec_version": "2.1", "id": "intrusion-set--6c1b1c1e-4a51-4bd4-a5a1-6f1d7e8e9a01",
    "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
    "name": "Granite Heron", "aliases": ["Granite Heron", "Stone Crane"],
}


def test_prose_ingest_links_to_known_actor_by_alias(tmp_path: Path) -> None:
    node = init_node(tmp_path / "node", "t", environ={}).node
    try:
        collection = node.default_collection.id
        ingest_paths([str(write_bundle(tmp_path / "actor.json", [ACTOR]))], node.store, collection_id=collection)
        report = tmp_path / "report.md"
        report.write_text("# Campaign\n\nStone Crane operators used update-check[.]net and 203.0.113[.]77 "
                          "against hospitals.\n")
        result = ingest_paths([str(report)], node.store, collection_id=collection)
        assert result.rejected == 0 and result.total("new") > 0
        relationships = [json.loads(v.json) for v in node.store.iter_objects() if v.type == "relationship"]
        indicates = [r for r in relationships
                     if r["relationship_type"] == "indicates" and r["target_ref"] == ACTOR["id"]]
        assert len(indicates) == 2  # the domain and the IP indicator
        reports = [json.loads(v.json) for v in node.store.iter_objects() if v.type == "report"]
        assert ACTOR["id"] in reports[0]["object_refs"]
    finally:
        node.close()
