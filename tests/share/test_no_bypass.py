"""There is one egress path: refuse everything in `share.outbound` and nothing leaves.

`Outbound.prepare` is patched to withhold every version, for every recipient
(the operator included). Then every way out is tried, with data that would
otherwise go: TAXII GET (objects, one object, versions, manifest), TAXII push
to a live server on 127.0.0.1, and every registered export format. Any seeded
value that still appears came out by another path.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest
from starlette.testclient import TestClient

from tests.taxii.support import LiveServer, bearer
from threatmesh.export.formats import FORMATS
from threatmesh.export.select import ExportOptions
from threatmesh.node import Node, init_node
from threatmesh.share.outbound import OutgoingBatch, Outbound, Withheld
from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import StoredVersion
from threatmesh.taxii.client import Credentials, push
from threatmesh.web.app import create_app

CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
MARK = "nobypass"  # every seeded value carries it; it must appear in no output


def _indicator(n: int) -> dict[str, Any]:
    return {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": f"{MARK} {n}", "pattern": f"[domain-name:value = '{MARK}{n}.example']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": [CLEAR],
    }


def _refuse_everything(self: Outbound, versions: Iterable[StoredVersion]) -> OutgoingBatch:
    return OutgoingBatch(withheld=[Withheld(v.id, v.version, "refused by the test", "test") for v in versions])


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Node, str]]:
    created = init_node(tmp_path / "a", "a", environ={})
    node = created.node
    objects = [_indicator(n) for n in range(20)]
    node.store.put_objects([parse_object(o) for o in objects], collection_id=node.default_collection.id,
                           source="test")
    yield node, created.admin_key
    node.close()


def _control_leaks(node: Node) -> bool:
    """Without the patch the same export does emit the data: the test can tell."""
    out = io.BytesIO()
    FORMATS["stix"](node.store, out, recipient=Recipient.public(), default_tlp="amber", options=ExportOptions())
    return MARK.encode() in out.getvalue()


def test_taxii_get_emits_nothing_the_path_refuses(seeded: tuple[Node, str], monkeypatch: pytest.MonkeyPatch) -> None:
    node, admin_key = seeded
    collection = node.default_collection
    base = f"/taxii2/{collection.api_root}/collections/{collection.id}/"
    some_id = f"indicator--{uuid.UUID(int=3, version=4)}"
    with TestClient(create_app(node.settings, node.store)) as client:
        assert MARK in client.get(base + "objects/", headers=bearer(admin_key)).text  # control
        monkeypatch.setattr(Outbound, "prepare", _refuse_everything)
        for path in ("objects/", "manifest/", f"objects/{some_id}/", f"objects/{some_id}/versions/"):
            response = client.get(base + path, headers=bearer(admin_key))
            assert MARK not in response.text, path
            if response.status_code == 200:
                body = response.json()
                assert not body.get("objects") and not body.get("versions"), path
            else:  # a 404 names only the id the client asked for
                assert response.status_code == 404, path


def test_push_sends_nothing_the_path_refuses(seeded: tuple[Node, str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    node, _ = seeded
    remote = init_node(tmp_path / "b", "b", environ={})
    try:
        peer = Recipient("b", RecipientKind.PEER, role="community")
        monkeypatch.setattr(Outbound, "prepare", _refuse_everything)
        with LiveServer(create_app(remote.node.settings, remote.node.store)) as server:
            report = push(node.store, f"{server.url}/taxii2/default/", remote.node.default_collection.id,
                          node.store.iter_objects(node.default_collection.id), recipient=peer, default_tlp="amber",
                          credentials=Credentials(key=remote.admin_key))
        assert report.sent == 0 and report.withheld == 21  # 20 indicators and the node identity
        assert not any(MARK.encode() in v.json for v in remote.node.store.iter_objects())
    finally:
        remote.node.close()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("recipient", [Recipient.operator(), Recipient.public()], ids=["operator", "public"])
def test_every_export_format_emits_nothing_the_path_refuses(
    seeded: tuple[Node, str], monkeypatch: pytest.MonkeyPatch, fmt: str, recipient: Recipient
) -> None:
    node, _ = seeded
    assert _control_leaks(node)
    monkeypatch.setattr(Outbound, "prepare", _refuse_everything)
    out = io.BytesIO()
    tally = FORMATS[fmt](node.store, out, recipient=recipient, default_tlp="amber", options=ExportOptions())
    assert MARK.encode() not in out.getvalue()
    assert tally.written == 0
