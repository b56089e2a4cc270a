"""Deletions propagate as revocations.

A TAXII DELETE only takes versions out of one collection here; peers that
already hold the object would keep it forever. So when an object this node
authored (it did not come from a peer) leaves the collection the node shares
with its peers, the node issues a new version of it with `revoked: true`
(STIX 2.1 §3.6: the creator revokes by a new version), which the sync then
carries like any other version. Objects received from a peer are not the
node's to revoke: their deletion stays local.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson

from threatmesh.node import META_DEFAULT_COLLECTION
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Store


def _now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def revoke_deleted(store: Store, collection_id: str, object_id: str) -> bool:
    """After a delete: issue a revoked version when the object is gone from the shared
    collection (the node's default one), was authored here, has a version to revoke
    and is not revoked already. True when one was issued."""
    if collection_id != store.get_meta(META_DEFAULT_COLLECTION) or not store.list_peers():
        return False
    if store.get_versions(object_id, collection_id):
        return False  # some versions are still shared: nothing was withdrawn
    latest = store.get_latest(object_id)
    if latest is None or latest.revoked or latest.source.startswith("peer:") or not latest.version:
        return False
    data: dict[str, Any] = dict(orjson.loads(latest.json))
    stamp = _now_stamp()
    if str(data.get("modified", "")) >= stamp:
        return False  # a version from the future cannot be superseded by the clock
    data["modified"] = stamp
    data["revoked"] = True
    store.put_objects([parse_object(data)], collection_id=collection_id, source="node:revocation")
    return True
