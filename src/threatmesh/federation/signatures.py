"""Signed batches on the wire: sign what is pushed, check what is received.

The signing itself is `share.signing` (Ed25519 over RFC 8785 canonical JSON,
one manifest per batch). Here: the manifest rides as the first object of each
pushed envelope; a receiver takes manifests out before anything is stored,
checks every other object against the manifest with the key exchanged when
the peer was added, refuses those that do not verify, and records a
provenance receipt for each version it accepts.

Pushes to, and pages served to, a peer whose public key this node knows (a
threatmesh node) carry a manifest. From such a peer a signature is required:
objects that arrive without a manifest, or that its manifest does not cover,
are refused and reported. Peers with no key exchanged (third-party TAXII
servers such as medallion) and accounts not bound to a peer (plain TAXII
clients) send no manifest; what they send is accepted as unverified, and its
receipt says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import orjson

from threatmesh.node import META_IDENTITY
from threatmesh.share import signing
from threatmesh.share.keys import key_path, load_node_key
from threatmesh.stix.model import StixObject
from threatmesh.store.protocol import Peer, PeerRejection, ProvenanceRecord, Store

MANIFEST_TYPE = signing.MANIFEST_TYPE


class DigestMemo:
    """Digests of object versions this process hashed or verified lately, keyed by the
    version's exact JSON bytes, shared by every Signer and the receiving side.

    A node that sends one version to several peers, or again after a retry, hashes it
    once; and a version received with a verified signature is forwarded without hashing
    it again: its stored bytes are what the egress path sends when nothing is redacted
    (`remember_verified`). Bounded in two generations of `size / 2` entries: when the
    newer one is full it becomes the older one, and the older one is dropped (deleting
    entries one by one from the front of a dict makes each later scan for its first
    entry longer). A miss only costs hashing.
    """

    def __init__(self, size: int) -> None:
        self.half = max(1, size // 2)
        self._new: dict[bytes, bytes] = {}
        self._old: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def get(self, raw: bytes) -> bytes | None:
        found = self._new.get(raw)
        return self._old.get(raw) if found is None else found

    def put(self, raw: bytes, digest: bytes) -> None:
        with self._lock:
            if len(self._new) >= self.half:
                self._old, self._new = self._new, {}
            self._new[raw] = digest

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


# About 15 MB of object bytes at 500 bytes each: a received version is forwarded within
# a push or two of arriving, so three pages of pushes are enough to find it.
DIGESTS = DigestMemo(30_000)


class Signer:
    """This node's key and identity, as used to sign what it pushes."""

    def __init__(self, private_key: Any, identity: str, digests: DigestMemo = DIGESTS) -> None:
        self.private_key = private_key  # Ed25519PrivateKey
        self.identity = identity
        self.digests = digests

    def digest(self, raw: bytes) -> bytes:
        found = self.digests.get(raw)
        if found is None:
            found = signing.object_digest_bytes(raw)
            self.digests.put(raw, found)
        return found

    def manifest(self, objects: Sequence[bytes], derived: Sequence[int] = ()) -> bytes:
        digests = [self.digest(raw) for raw in objects]
        return orjson.dumps(signing.sign_batch(self.private_key, objects, signer=self.identity, derived=derived,
                                               digests=digests))

    @property
    def public_key(self) -> str:
        return signing.public_key_text(self.private_key)


def load_signer(key_file: Path, identity: str) -> Signer | None:
    """The node's signer from its PEM key file; None when the node has no key yet."""
    if not key_file.exists():
        return None
    return Signer(load_node_key(key_file.parent), identity)


def manifest_for_caller(caller: Any, objects: Sequence[bytes], home: Path, store: Store) -> bytes | None:
    """The signed manifest of a page served to a peer-bound caller whose public key this
    node knows (a threatmesh node, which verifies it); None for anyone else, or before
    this node has a key."""
    peer: Peer | None = getattr(caller, "peer", None)
    if peer is None or not peer.public_key or not objects:
        return None
    signer = load_signer(key_path(home), store.get_meta(META_IDENTITY) or "")
    return signer.manifest(objects) if signer else None


@dataclass
class Screened:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (id, version, reason)
    # (id, version as sent) -> what the signature says of it: signer, key, derived, path
    verified: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # id() of an accepted object -> the digest its signature covers (the objects are kept
    # alive by `accepted`, so no other live object has the same id)
    digests: dict[int, bytes] = field(default_factory=dict)


def id_version(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        return "", ""
    return str(raw.get("id", "")), str(raw.get("modified") or raw.get("created") or "")


def screen_signed(peer: Peer, raw_objects: Sequence[Any]) -> Screened:
    """Split what a peer sent into objects to store and objects to refuse (see module docstring)."""
    result = Screened()
    manifests = [o for o in raw_objects if isinstance(o, dict) and o.get("type") == MANIFEST_TYPE]
    objects = [o for o in raw_objects if not (isinstance(o, dict) and o.get("type") == MANIFEST_TYPE)]
    if not peer.public_key:
        result.accepted = [o for o in objects if isinstance(o, dict)]
        result.refused = [(*id_version(o), "not a JSON object") for o in objects if not isinstance(o, dict)]
        return result
    if not manifests:
        result.refused = [(*id_version(o), f"unsigned: this node holds the public key of peer {peer.name} and "
                           "requires its batch signature") for o in objects]
        return result
    if len(manifests) > 1:
        result.refused = [(*id_version(o), "more than one signature manifest in one envelope") for o in objects]
        return result
    manifest = manifests[0]
    verdict = signing.verify_batch(manifest, objects, peer.public_key)
    fingerprint = signing.key_fingerprint(peer.public_key)
    for bad in verdict.bad:
        object_id, version = bad.id or id_version(objects[bad.index])[0], bad.version
        result.refused.append((object_id, version, f"signature check failed: {bad.reason}"))
    # Two shared, read-only details (as signed, or flagged derived) rather than one per object.
    details = [{"signer": verdict.signer, "key_fingerprint": fingerprint, "verified": True, "derived": derived,
                "path": ()} for derived in (False, True)]
    for index, digest in zip(verdict.good, verdict.digests):
        raw = objects[index]
        result.accepted.append(raw)
        result.verified[id_version(raw)] = details[index in verdict.derived]
        result.digests[id(raw)] = digest
    return result


def remember_verified(screened: Screened, stored: Sequence[StixObject], memo: DigestMemo = DIGESTS) -> None:
    """Keep the verified digest of each stored version under its stored JSON bytes (see
    DigestMemo). Only for versions stored as received: an object upgraded from STIX 2.0
    is a new dict, whose id is not among the accepted ones."""
    if not screened.digests:
        return
    for obj in stored:
        digest = screened.digests.get(id(obj.data))
        if digest is not None:
            memo.put(obj.json, digest)


def receipt(peer: Peer, object_id: str, version: str, sent_version: str, screened: Screened,
            now: int) -> ProvenanceRecord:
    """The provenance record of one stored version (`version` is the store's key)."""
    details = screened.verified.get((object_id, sent_version))
    if details is None:
        return ProvenanceRecord(object_id, version, peer.name, now)
    return ProvenanceRecord(object_id, version, peer.name, now, details["signer"], details["key_fingerprint"],
                            details["verified"], details["derived"], details["path"])


def record_refusals(store: Store, peer: Peer, screened: Screened) -> None:
    """Report refused objects: kept for `peer show`, counted in the sync state."""
    now = time.time_ns() // 1000
    for object_id, version, reason in screened.refused:
        store.add_peer_rejection(PeerRejection(peer.name, now, object_id, version, reason))
