"""One sync round with one peer: pull what is new there, push what is new here.

Pull (TAXII 2.1 §5.4): from each of the peer's pull collections, pages of
objects added after the remembered point, to the end. Each page is stored
(source 'peer:NAME') before the point moves past it, so a crash repeats at
most one page, and repeating is harmless: a version already stored is never
stored twice.

Push (§5.5): the versions that joined the local collection after the push
point, oldest first, minus what the peer sent or is known to hold, through
the egress policy, in envelopes under the peer's max_content_length. The
point moves only after the peer answered, so a failed round is sent again;
the receiver stores each (id, version) once, which makes that harmless too.
Each envelope to a peer whose public key was exchanged starts with a signed
manifest of the batch (federation.signatures).

Loops end by themselves: a node stores a version once, a version joins a
collection once, and only joining moves it past the push point; so each
version leaves each node at most once per peer, and never back to a peer
that sent it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from threatmesh.errors import InvalidObject, StoreError
from threatmesh.federation.egress import outgoing
from threatmesh.federation.recipients import peer_recipient
from threatmesh.federation.signatures import Signer, id_version, receipt, remember_verified, screen_signed
from threatmesh.federation.transport import PeerClient, PeerUnreachable
from threatmesh.share.outbound import EgressCache
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import ObjectQuery, PageRow, Peer, PeerRejection, PutOutcome, Store

PULL = "pull"
PUSH = "push"
# Objects per pulled page and per pushed envelope. Large batches keep the per-request
# costs (HTTP, a signature, the receiver's status record) small per object, and so does
# the receiver's transaction: an index keyed by object id takes its inserts at random
# places, and each transaction writes every page it touched once, so twice the objects
# per transaction write about half the pages per object. An envelope also stays under
# the peer's max_content_length (see `_envelopes`). Smaller pushes (2000) would let the
# hops of a line overlap more, but cost more CPU than they save in time. In
# bench/federation.py (line of ten, 100,000 objects, runs alternated), 10,000 against
# 5,000 took 8% less CPU (92-102 against 102-110 s); the hub was the same.
PAGE_SIZE = 10000
BATCH_SIZE = 10000
# Room in each envelope for the envelope itself and a signature manifest.
_ENVELOPE_OVERHEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class PushPage:
    items: tuple[PageRow, ...]  # light rows (`Store.query_rows`): what the egress path and a push need
    more: bool


class PushPages:
    """Pages of the local collection read for pushing, shared by the node's peer workers.

    A node with many peers (a hub) pushes the same versions to each of them, page by
    page from the same positions: the first worker at a position reads the page, the
    others reuse it for `ttl` seconds. A reused page is what a read gave a moment
    earlier: the worker continues from its last date_added and reads on (a reused page
    always claims `more`) until a page comes back empty. Only full pages are kept (a short one grows as objects arrive),
    and only the `keep` newest positions: a full page holds about 10 MB (10,000 rows and
    their JSON), and workers a few pages apart gain little from older pages. Keeping 3
    rather than 8 cut the memory of a line's nodes by a fifth (bench/federation.py:
    4.0-4.2 against 5.2-5.3 GB for ten nodes, with smaller `EgressCache` and `DIGESTS`),
    and each megabyte a process first touches costs page faults.
    """

    def __init__(self, keep: int = 3, ttl: float = 30.0) -> None:
        self.keep = keep
        self.ttl = ttl
        self._pages: dict[tuple[str, int, int], tuple[float, PushPage]] = {}
        self._lock = threading.Lock()

    def read(self, store: Store, collection_id: str, position: int, limit: int) -> PushPage:
        key = (collection_id, position, limit)
        now = time.monotonic()
        with self._lock:
            found = self._pages.get(key)
        if found is not None and now - found[0] < self.ttl:
            # Its `more` is as of the read: objects may have arrived since, so a reused page
            # always claims more, and the worker reads on until a page comes back empty.
            return PushPage(found[1].items, more=True)
        rows = store.query_rows(ObjectQuery(collection_id, added_after=position, versions=("all",), limit=limit))
        page = PushPage(rows.rows, rows.more)
        if len(page.items) == limit:
            with self._lock:
                self._pages[key] = (now, page)
                for stale in [k for k, (at, _) in self._pages.items() if now - at >= self.ttl]:
                    del self._pages[stale]
                while len(self._pages) > self.keep:
                    del self._pages[min(self._pages, key=lambda k: k[1])]
        return page


@dataclass(frozen=True, slots=True)
class SyncContext:
    """What a round needs from the node."""

    store: Store
    collection_id: str  # the local collection pulled into and pushed from
    default_tlp: str
    signer: Signer | None = None  # signs what is pushed, once the node has a key
    redaction: Any = None  # share.redact.RedactionSettings of the node; None: the egress default
    # What the egress path decided for one class of peer, reused for the next peer of that class.
    egress_cache: EgressCache = field(default_factory=EgressCache)
    push_pages: PushPages = field(default_factory=PushPages)


@dataclass
class PeerReport:
    peer: str
    sent: int = 0  # versions the peer accepted from us
    received: int = 0  # versions new here
    unchanged: int = 0  # versions received that were already here
    refused: int = 0  # withheld by the egress policy
    refused_rules: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # refused by the peer
    failures: list[str] = field(default_factory=list)
    rejected: int = 0  # sent by the peer, refused here (invalid, tampered)
    rejections: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0
    error: str | None = None  # the round stopped here; it is retried later

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer, "sent": self.sent, "received": self.received, "unchanged": self.unchanged,
            "refused": self.refused, "refused_rules": self.refused_rules, "failed": self.failed,
            "failures": self.failures[:20], "rejected": self.rejected, "rejections": self.rejections[:20],
            "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received, "error": self.error,
        }


Progress = Callable[[str, int], None]  # (what, how many objects)


def sync_peer(ctx: SyncContext, peer: Peer, client: PeerClient | None = None, *, pull: bool = True,
              push: bool = True, progress: Progress | None = None) -> PeerReport:
    """One round with `peer`; errors end the round early and are reported, never raised."""
    own_client = client is None
    client = client or PeerClient(peer)
    report = PeerReport(peer.name)
    sent_before, received_before = client.bytes_sent, client.bytes_received
    try:
        if pull:
            for remote in peer.pull:
                _pull(ctx, peer, client, remote, report, progress)
        if push:
            for remote in peer.push:
                _push(ctx, peer, client, remote, report, progress)
    except (PeerUnreachable, StoreError) as exc:
        report.error = str(exc)
    finally:
        report.bytes_sent = client.bytes_sent - sent_before
        report.bytes_received = client.bytes_received - received_before
        if own_client:
            client.close()
    _record(ctx.store, report)
    return report


def _record(store: Store, report: PeerReport) -> None:
    now = time.time_ns() // 1000
    state = store.get_sync_state(report.peer)
    store.put_sync_state(replace(
        state,
        last_attempt=now,
        last_success=state.last_success if report.error else now,
        last_error=report.error,
        failures=state.failures + 1 if report.error else 0,
        sent=state.sent + report.sent,
        received=state.received + report.received,
        refused=state.refused + report.refused,
        failed=state.failed + report.failed,
        rejected=state.rejected + report.rejected,
        bytes_sent=state.bytes_sent + report.bytes_sent,
        bytes_received=state.bytes_received + report.bytes_received,
    ))


# -- pull -----------------------------------------------------------------------------


def _pull(ctx: SyncContext, peer: Peer, client: PeerClient, remote: str, report: PeerReport,
          progress: Progress | None) -> None:
    added_after = ctx.store.get_sync_cursor(peer.name, PULL, remote)
    next_token: str | None = None
    while True:
        page = client.get_page(remote, added_after=added_after, next_token=next_token, limit=PAGE_SIZE)
        _store_received(ctx, peer, page.objects, report)
        if page.objects:
            ctx.store.audit(f"peer:{peer.name}", "PULL", f"{peer.url} {remote}", 200, len(page.objects))
        if page.resume_after:
            ctx.store.set_sync_cursor(peer.name, PULL, remote, page.resume_after)
        if progress:
            progress(f"pull {peer.name}", len(page.objects))
        if not page.more:
            return
        if page.next_token:
            next_token = page.next_token
        elif page.resume_after and page.resume_after != added_after:
            added_after, next_token = page.resume_after, None
        else:
            return  # more is claimed but there is no way to ask for it: stop rather than loop


def _store_received(ctx: SyncContext, peer: Peer, raw_objects: list[dict[str, Any]], report: PeerReport) -> None:
    screened = screen_signed(peer, raw_objects)
    now = time.time_ns() // 1000
    for object_id, version, reason in screened.refused:
        _reject(ctx.store, report, PeerRejection(peer.name, now, object_id, version, reason))
    valid = []
    for raw in screened.accepted:
        try:
            valid.append(parse_object(raw))
        except InvalidObject as exc:
            object_id, version = id_version(raw)
            _reject(ctx.store, report, PeerRejection(peer.name, now, object_id, version, exc.describe()))
    if not valid:
        return
    # Search and match rows follow (store/sqlite_index.py), as for what a peer pushes here.
    results = ctx.store.put_objects(valid, collection_id=ctx.collection_id, source=f"peer:{peer.name}",
                                    defer_index=True)
    # A receipt also records that the peer holds the version, so it is never sent back.
    ctx.store.record_provenance([
        receipt(peer, r.id, r.version, id_version(obj.data)[1], screened, now) for obj, r in zip(valid, results)
    ], pks=[r.pk for r in results])
    remember_verified(screened, valid)
    for result in results:
        if result.outcome is PutOutcome.UNCHANGED:
            report.unchanged += 1
        else:
            report.received += 1


def _reject(store: Store, report: PeerReport, rejection: PeerRejection) -> None:
    store.add_peer_rejection(rejection)
    report.rejected += 1
    report.rejections.append(f"{rejection.object_id} {rejection.version}: {rejection.reason}")


# -- push -----------------------------------------------------------------------------


def _push(ctx: SyncContext, peer: Peer, client: PeerClient, remote: str, report: PeerReport,
          progress: Progress | None) -> None:
    recipient = peer_recipient(peer)
    position = int(ctx.store.get_sync_cursor(peer.name, PUSH, remote) or 0)
    max_bytes = max(client.max_content_length() - _ENVELOPE_OVERHEAD, 64 * 1024)
    while True:
        page = ctx.push_pages.read(ctx.store, ctx.collection_id, position, BATCH_SIZE)
        if not page.items:
            return
        candidates = _not_held(ctx.store, peer, page.items)
        out = outgoing(ctx.store, candidates, recipient, default_tlp=ctx.default_tlp, redaction=ctx.redaction,
                       cache=ctx.egress_cache)
        report.refused += sum(out.withheld.values())
        for rule, count in out.withheld.items():
            report.refused_rules[rule] = report.refused_rules.get(rule, 0) + count
        for start, end in _envelopes(out.objects, max_bytes, BATCH_SIZE):
            objects = out.objects[start:end]
            # Signed for peers whose key was exchanged (threatmesh nodes, which verify); a
            # third-party server would only keep the manifest as one more object.
            if ctx.signer is not None and peer.public_key:
                derived = [i - start for i in out.derived if start <= i < end]
                objects = [ctx.signer.manifest(objects, derived), *objects]
            result = client.post_envelope(remote, objects)
            # Every share is in the audit log: what left, to whom, how many.
            ctx.store.audit(f"peer:{peer.name}", "PUSH", f"{peer.url} {remote}", 202, end - start)
            refused_ids = {f.split(":", 1)[0] for f in result.failures}
            report.failed += len(result.failures)
            report.failures.extend(result.failures)
            delivered = [pk for pk, (object_id, _) in zip(out.pks[start:end], out.versions[start:end])
                         if object_id not in refused_ids]
            report.sent += len(delivered)
            ctx.store.mark_held_pks(peer.name, delivered, received=False)
            if progress:
                progress(f"push {peer.name}", end - start)
        position = page.items[-1].date_added
        ctx.store.set_sync_cursor(peer.name, PUSH, remote, str(position))
        if not page.more:
            return


def _not_held(store: Store, peer: Peer, items: Sequence[PageRow]) -> list[PageRow]:
    """The versions the peer neither sent here nor is known to hold."""
    came_from = f"peer:{peer.name}"
    others = [i for i in items if i.source != came_from]
    held = store.held_pks(peer.name, [i.pk for i in others])
    return [i for i in others if i.pk not in held]


def _envelopes(objects: Sequence[bytes], max_bytes: int, max_objects: int) -> list[tuple[int, int]]:
    """[start, end) ranges of `objects` that fit one envelope each (an object larger
    than the limit goes alone, and the peer judges it)."""
    ranges: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, raw in enumerate(objects):
        if index > start and (size + len(raw) + 1 > max_bytes or index - start >= max_objects):
            ranges.append((start, index))
            start, size = index, 0
        size += len(raw) + 1
    if start < len(objects):
        ranges.append((start, len(objects)))
    return ranges


def lag_seconds(store: Store, peer: Peer, collection_id: str) -> float | None:
    """How far (in seconds of local arrivals) the push to a peer trails the newest local
    object; None before the first push."""
    positions = [store.get_sync_cursor(peer.name, PUSH, remote) for remote in peer.push]
    known = [int(p) for p in positions if p]
    if not known:
        return None
    newest = store.query(ObjectQuery(collection_id, added_after=min(known), versions=("all",), limit=1))
    if not newest.items:
        return 0.0
    return max(0.0, (store.last_date_added() - min(known)) / 1e6)

