"""The one egress policy: may this object version leave to this recipient?

Every path by which data leaves the node (TAXII GET, push, exports, web
downloads, reports) asks `egress_decision`. Rules follow TLP 2.0
(https://www.first.org/tlp/): RED never leaves; AMBER and AMBER+STRICT go only
to peers cleared for them and are never forwarded by a node that received them;
GREEN stays in the community; CLEAR goes anywhere. Unmarked objects follow the
node's default level. The operator's own view (exports for the node's own use)
sees everything, since nothing leaves the organisation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RecipientKind(enum.Enum):
    OPERATOR = "operator"  # the node's own operators: their full view
    PEER = "peer"  # another organisation's node or account
    PUBLIC = "public"  # anonymous readers of a public collection


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    kind: RecipientKind
    role: str = "partner"  # 'community' peers may receive GREEN
    cleared_for: frozenset[str] = field(default_factory=frozenset)  # {'amber', 'amber+strict'}

    @classmethod
    def operator(cls) -> "Recipient":
        return cls("operator", RecipientKind.OPERATOR)

    @classmethod
    def public(cls) -> "Recipient":
        return cls("public", RecipientKind.PUBLIC)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # which rule decided, in words an operator understands


def egress_decision(
    tlp: str | None,
    recipient: Recipient,
    *,
    default_tlp: str,
    received_from_peer: bool = False,
) -> Decision:
    """Decide whether an object version at `tlp` may go to `recipient`."""
    if recipient.kind is RecipientKind.OPERATOR:
        return Decision(True, "operator's own view")
    level = tlp or default_tlp
    origin = f"TLP:{level.upper()}" + ("" if tlp else " (node default for unmarked objects)")
    if level == "clear":
        return Decision(True, f"{origin} may go anywhere")
    if recipient.kind is RecipientKind.PUBLIC:
        return Decision(False, f"{origin} never goes to a public collection")
    if level == "red":
        return Decision(False, f"{origin} never leaves this node")
    if level == "green":
        if recipient.role == "community":
            return Decision(True, f"{origin} may go to community peers")
        return Decision(False, f"{origin} goes only to community peers; {recipient.name} is a {recipient.role} peer")
    if level in ("amber", "amber+strict"):
        if received_from_peer:
            return Decision(False, f"{origin} received from a peer is never forwarded")
        if level in recipient.cleared_for:
            return Decision(True, f"{origin} may go to {recipient.name}, cleared for it")
        return Decision(False, f"{origin} goes only to peers cleared for it; {recipient.name} is not")
    return Decision(False, f"unknown TLP level {level!r}: not shared")
