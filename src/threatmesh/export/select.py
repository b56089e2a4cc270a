"""What an export may contain: the one place exports meet the egress policy.

Every exporter takes its objects from `outgoing`, which sends each version
through `share.outbound` (policy, references, redaction); no exporter reads
the store directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from dataclasses import dataclass, field

from threatmesh.share.outbound import Outbound, added_version
from threatmesh.share.policy import Recipient
from threatmesh.share.redact import RedactionSettings
from threatmesh.store.protocol import Store, StoredVersion


@dataclass(frozen=True, slots=True)
class ExportOptions:
    collection_id: str | None = None
    all_versions: bool = False
    types: tuple[str, ...] = ()  # STIX types, or observable kinds for tool formats; empty = all
    min_confidence: int | None = None
    since: int | None = None  # µs; only versions added after this
    extra: dict[str, str] = field(default_factory=dict)  # format-specific settings
    redaction: RedactionSettings = field(default_factory=RedactionSettings)  # for recipients other than the operator


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
    """Stored versions that may go to `recipient`, in the form they may go in (redacted copies
    carry their redacted `json`), counting the ones withheld."""
    path = Outbound(store, recipient, default_tlp=default_tlp, redaction=options.redaction)
    chunk: list[StoredVersion] = []

    def flush() -> Iterator[StoredVersion]:
        batch = path.prepare(chunk)
        tally.withheld += len(batch.withheld)
        yield from batch.items
        for raw in batch.extra:  # objects the node adds to keep what it sends whole
            yield added_version(raw)
        chunk.clear()

    for version in store.iter_objects(options.collection_id, all_versions=options.all_versions):
        if stix_types and version.type not in stix_types:
            continue
        if options.since is not None and version.date_added <= options.since:
            continue
        chunk.append(version)
        if len(chunk) >= _CHUNK:
            yield from flush()
    if chunk:
        yield from flush()


# Versions sent through the egress path at once: bounds memory, amortises lookups.
_CHUNK = 500


Progress = Callable[[int], None]
