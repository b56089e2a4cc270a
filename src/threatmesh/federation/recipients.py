"""How the egress policy sees a peer: the same Recipient for its TAXII reads here
and for what this node pushes to it."""

from __future__ import annotations

from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.store.protocol import Peer

ROLES = ("community", "partner")
CLEARANCES = ("amber", "amber+strict")


def peer_recipient(peer: Peer) -> Recipient:
    return Recipient(
        peer.name,
        RecipientKind.PEER,
        role=peer.role,
        cleared_for=frozenset(peer.cleared_for),
        groups=frozenset(peer.groups),
    )
