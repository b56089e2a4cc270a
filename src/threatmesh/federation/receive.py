"""What a peer pushes here (TAXII 2.1 §5.5 add objects by a peer-bound account).

The TAXII server hands each envelope a peer posts to `screen_push` before
storing it: signature manifests are taken out (they describe the batch and
are not intelligence to keep), and objects whose signature does not verify
are refused, reported to the peer in the status and kept in the peer's
rejection log. After storing, `record_push` notes which peer sent which
version: its provenance receipt, which is also what tells the sync that the
peer holds that version, so it is never sent back.
Accounts that are not bound to a peer pass through unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from threatmesh.federation.signatures import (
    Screened,
    id_version,
    receipt,
    record_refusals,
    remember_verified,
    screen_signed,
)
from threatmesh.stix.model import StixObject
from threatmesh.store.protocol import Peer, PutResult, Store


# meta key + peer name: when that peer last pushed here (µs); the sync loop skips
# pulling from a peer that is pushing, since a pull would only race its push.
PUSHED_BY_PREFIX = "federation.pushed_by."


def last_pushed_by(store: Store, peer: str) -> int:
    value = store.get_meta(PUSHED_BY_PREFIX + peer)
    return int(value) if value else 0


@dataclass
class ScreenedPush:
    accepted_raw: list[Any]
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (id, version, reason)
    peer: Peer | None = None
    screened: Screened | None = None


def screen_push(store: Store, caller: Any, raw_objects: list[Any]) -> ScreenedPush:
    peer: Peer | None = getattr(caller, "peer", None)
    if peer is None:
        return ScreenedPush(raw_objects)
    screened = screen_signed(peer, raw_objects)
    record_refusals(store, peer, screened)
    return ScreenedPush(list(screened.accepted), list(screened.refused), peer, screened)


def record_push(store: Store, push: ScreenedPush, objects: Sequence[StixObject], results: Sequence[PutResult]) -> None:
    if push.peer is None or push.screened is None or not results:
        return
    now = time.time_ns() // 1000
    store.set_meta(PUSHED_BY_PREFIX + push.peer.name, str(now))
    # The receipts are also the record that the peer holds these versions (no separate
    # `mark_held`: see store.sqlite_peers).
    store.record_provenance([
        receipt(push.peer, r.id, r.version, id_version(obj.data)[1], push.screened, now)
        for obj, r in zip(objects, results)
    ], pks=[r.pk for r in results])
    remember_verified(push.screened, objects)
