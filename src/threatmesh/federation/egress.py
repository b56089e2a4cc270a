"""The one door by which sync sends objects to a peer.

Everything pushed goes through `outgoing`, which is the node's one egress path
(`share.outbound.prepare_outgoing`: the per-version policy, the reference-leak
rules and redaction), reshaped for the sync: the bytes to send, the (id,
version) of each stored version among them, and what was withheld by which rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from threatmesh.share.outbound import EgressCache, prepare_outgoing
from threatmesh.share.policy import Recipient
from threatmesh.store.protocol import PageRow, Store


@dataclass
class Outgoing:
    objects: list[bytes] = field(default_factory=list)  # what may leave, in the form it may leave in
    # (id, version key) of the stored versions that go; objects past its length are
    # additions of the egress path (an anonymous identity), not stored versions.
    versions: list[tuple[str, str]] = field(default_factory=list)
    pks: list[int] = field(default_factory=list)  # their store keys, as `versions`
    withheld: dict[str, int] = field(default_factory=dict)  # rule -> how many versions it held back
    redactions: int = 0
    derived: list[int] = field(default_factory=list)  # indexes of this node's modified copies (redacted, cut)


def outgoing(store: Store, versions: Sequence[PageRow], recipient: Recipient, *, default_tlp: str,
             redaction: Any = None, cache: EgressCache | None = None) -> Outgoing:
    """What of `versions` may go to `recipient`, and in what form (`cache`: outcomes shared
    between the node's peers of one policy class, see `share.outbound.EgressCache`)."""
    options = {} if redaction is None else {"redaction": redaction}
    batch = prepare_outgoing(store, list(versions), recipient, default_tlp=default_tlp, cache=cache, **options)
    return Outgoing(
        objects=[item.json for item in batch.items] + list(batch.extra),
        versions=[(item.id, item.version) for item in batch.items],
        pks=[item.pk for item in batch.items],
        withheld=batch.withheld_by_rule(),
        redactions=len(batch.redactions),
        derived=list(batch.derived),
    )
