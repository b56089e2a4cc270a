"""Sync wired to a node: its store, default collection, egress default and signing key."""

from __future__ import annotations

from threatmesh.federation.loop import LoopTiming, SyncLoop
from threatmesh.federation.signatures import Signer, load_signer
from threatmesh.federation.sync import SyncContext
from threatmesh.node import Node
from threatmesh.share.keys import key_path
from threatmesh.share.redact import RedactionSettings


def node_signer(node: Node) -> Signer | None:
    """The node's signer, once the node has an Ed25519 key (made by `init`)."""
    return load_signer(key_path(node.settings.home), node.identity_id)


def context_for(node: Node) -> SyncContext:
    return SyncContext(
        store=node.store,
        collection_id=node.default_collection.id,
        default_tlp=node.settings.default_tlp,
        signer=node_signer(node),
        redaction=RedactionSettings.from_settings(node.settings),
    )


def start_sync_loop(node: Node, timing: LoopTiming = LoopTiming()) -> SyncLoop:
    return SyncLoop(context_for(node), timing).start()
