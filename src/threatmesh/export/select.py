"""What an export may contain: the one place exports meet the egress policy.

Every exporter takes its objects from `outgoing`, which asks `egress_decision`
for each version; no exporter reads the store directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from threatmesh.share.policy import Recipient, egress_decision
from threatmesh.store.protocol import Store, StoredVersion


@dataclass(frozen=True, slots=True)
class ExportOptions:
    collection_id: str | None = None
    all_versions: bool = False
    types: tuple[str, ...] = ()  # STIX types, or observable kinds for tool formats; empty = all
    min_confidence: int | None = None
    since: int | None = None  # µs; only versions added after this
    extra: dict[str, str] = field(default_factory=dict)  # format-specific settings


@dataclass(slots=True)
class Tally:
    written: int = 0
    withheld: int = 0  # refused by the egress policy


def outgoing(
    store: Store,
    recipient: Recipient,
    *,
    default_tlp: str,
    options: ExportOptions,
    tally: Tally,
    stix_types: tuple[str, ...] = (),
) -> Iterator[StoredVersion]:
    """Stored versions that may go to `recipient`, counting the ones withheld."""
    for version in store.iter_objects(options.collection_id, all_versions=options.all_versions):
        if stix_types and version.type not in stix_types:
            continue
        if options.since is not None and version.date_added <= options.since:
            continue
        decision = egress_decision(
            version.tlp, recipient, default_tlp=default_tlp, received_from_peer=version.source.startswith("peer:")
        )
        if not decision.allowed:
            tally.withheld += 1
            continue
        yield version


Progress = Callable[[int], None]
