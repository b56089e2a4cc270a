"""The egress policy's TLP 2.0 rules, one recipient kind at a time."""

from __future__ import annotations

import pytest

from threatmesh.share.policy import Recipient, RecipientKind, egress_decision

COMMUNITY = Recipient("isac", RecipientKind.PEER, role="community")
PARTNER_CLEARED = Recipient("cert-b", RecipientKind.PEER, role="partner", cleared_for=frozenset({"amber", "amber+strict"}))
PARTNER = Recipient("vendor", RecipientKind.PEER, role="partner")


@pytest.mark.parametrize(
    ("tlp", "recipient", "allowed"),
    [
        ("clear", Recipient.public(), True),
        ("green", Recipient.public(), False),
        ("green", COMMUNITY, True),
        ("green", PARTNER, False),
        ("amber", COMMUNITY, False),
        ("amber", PARTNER_CLEARED, True),
        ("amber+strict", PARTNER_CLEARED, True),
        ("amber+strict", Recipient("c", RecipientKind.PEER, cleared_for=frozenset({"amber"})), False),
        ("red", PARTNER_CLEARED, False),
        ("red", COMMUNITY, False),
        ("red", Recipient.operator(), True),
    ],
)
def test_tlp_rules(tlp: str, recipient: Recipient, allowed: bool) -> None:
    decision = egress_decision(tlp, recipient, default_tlp="amber")
    assert decision.allowed is allowed
    assert decision.rule


def test_amber_received_from_a_peer_is_never_forwarded() -> None:
    assert not egress_decision("amber", PARTNER_CLEARED, default_tlp="amber", received_from_peer=True).allowed


def test_unmarked_follows_the_node_default() -> None:
    assert not egress_decision(None, COMMUNITY, default_tlp="amber").allowed
    decision = egress_decision(None, COMMUNITY, default_tlp="green")
    assert decision.allowed and "default" in decision.rule
