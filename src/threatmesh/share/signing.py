"""Signed batches (pure): Ed25519 over the RFC 8785 canonical JSON of each object.

A signature travels beside the objects it covers, never inside them, so that
an object stays byte-for-byte what its author wrote. The unit is a batch
manifest: the SHA-256 of each object's canonical JSON, concatenated in batch
order into one compact string (`x_digests`, base64), and one Ed25519
signature over the canonical JSON of the manifest without its
`x_signature`. Hashing each object and signing the list once covers every
object as surely as one signature per object (the signature binds each
digest) and costs one signing per batch; carrying digests only (no ids, no
versions) keeps the manifest at about 44 bytes per object. A receiver
recomputes each digest from the bytes it got, so it can name exactly the
objects that were altered on the way (their digest is not among the signed
ones) and accept the rest.

The manifest is a STIX 2.1 custom object (`x-threatmesh-batch-signature`),
so it can ride in the same TAXII envelope and a standard client simply
stores or ignores it.

Canonical JSON is computed with orjson (keys sorted) when that is provably
the RFC 8785 form: no floating-point numbers (whose ECMAScript formatting
differs), integers within the IEEE-754 exact range, and object keys whose
characters all sort the same in UTF-8 and UTF-16 (below U+D800). Anything
else goes through the reference implementation, `rfc8785`.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_TYPE = "x-threatmesh-batch-signature"
ALGORITHM = "Ed25519"
CANONICALIZATION = "RFC8785"


@dataclass(frozen=True, slots=True)
class BadObject:
    index: int  # position in the list given to verify_batch
    id: str
    version: str
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    signature_valid: bool  # the manifest's own signature, with the given public key
    signer: str  # the manifest's `signer` (the sending node's identity id)
    bad: tuple[BadObject, ...] = ()  # objects not covered by a valid signature
    good: tuple[int, ...] = ()  # indexes of the objects that verified
    derived: frozenset[int] = frozenset()  # indexes of good objects the sender flagged as its modified copies
    digests: tuple[bytes, ...] = ()  # the digest of each good object, in the order of `good`

    @property
    def ok(self) -> bool:
        return self.signature_valid and not self.bad


# -- keys ------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the file holding it is readable by the node's user only."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the node key is not an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as exchanged between peers: 'ed25519:' + base64 of its 32 raw bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Read a key written by `public_key_text`; ValueError when it is not one."""
    body = text.removeprefix("ed25519:")
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise ValueError(f"not a base64 Ed25519 public key: {exc}") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_fingerprint(public: str | Ed25519PublicKey) -> str:
    """A short, stable name of a public key (SHA-256 of its raw bytes, hex, 16 chars)."""
    key = load_public_key(public) if isinstance(public, str) else public
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- canonical form ----------------------------------------------------------------------


_SAFE_INTEGER = 2**53 - 1


def _orjson_is_canonical(value: Any) -> bool:
    """Whether orjson with sorted keys writes `value` exactly as RFC 8785 does (see the module docstring).

    Every digest of a push and of its verification walks an object here, so the loop
    tests each item's type inline, and a dict's keys in one go (joined: a key that is
    not a string fails the join)."""
    kind = type(value)
    if kind is dict:
        try:
            keys = "".join(value)
        except TypeError:
            return False
        if not keys.isascii() and max(keys) >= "\ud800":
            return False
        items: Iterable[Any] = value.values()
    elif kind is list:
        items = value
    else:
        items = (value,)
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                return False
        elif kind is dict or kind is list:
            if not _orjson_is_canonical(item):
                return False
        else:
            return False  # floats, and anything orjson and RFC 8785 might write differently
    return True


def canonical_json(obj_json: bytes | Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an object given as bytes or as parsed JSON."""
    data = orjson.loads(obj_json) if isinstance(obj_json, (bytes, bytearray, memoryview, str)) else obj_json
    if _orjson_is_canonical(data):
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate: let the reference implementation refuse it
            pass
    return rfc8785.dumps(data)


def object_digest_bytes(obj_json: bytes | Mapping[str, Any]) -> bytes:
    """SHA-256 of the object's canonical JSON, raw (what a manifest carries)."""
    return hashlib.sha256(canonical_json(obj_json)).digest()


def object_digest(obj_json: bytes | Mapping[str, Any]) -> str:
    return object_digest_bytes(obj_json).hex()


def _id_and_version(data: Mapping[str, Any]) -> tuple[str, str]:
    version = data.get("modified") or data.get("created") or ""
    return str(data.get("id", "")), str(version)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- sign and verify ---------------------------------------------------------------------


def sign_batch(
    private_key: Ed25519PrivateKey,
    objects_json: Sequence[bytes],
    *,
    signer: str = "",
    derived: Iterable[int] = (),
    digests: Sequence[bytes] | None = None,
) -> dict[str, Any]:
    """A signed manifest covering each object of `objects_json`, in order.

    `signer` names the sending node (its STIX identity id). `derived` lists the
    indexes of objects that are this node's modified copies (redacted, or a
    report cut to the refs that may go), flagged so the receiver knows they
    are not the author's bytes. `digests`, when given, are the objects' raw
    SHA-256 digests (`object_digest_bytes`) computed earlier: a node that sends
    one version to many peers hashes it once.
    """
    if digests is None:
        digests = [object_digest_bytes(raw) for raw in objects_json]
    elif len(digests) != len(objects_json):
        raise ValueError("one digest per object")
    now = _now()
    manifest: dict[str, Any] = {
        "type": MANIFEST_TYPE,
        "spec_version": "2.1",
        "id": f"{MANIFEST_TYPE}--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "x_signer": signer,
        "x_key": public_key_text(private_key),
        "x_algorithm": ALGORITHM,
        "x_canonicalization": CANONICALIZATION,
        "x_digests": base64.b64encode(b"".join(digests)).decode("ascii"),
        "x_derived": sorted(set(derived)),
    }
    signature = private_key.sign(canonical_json(manifest))
    manifest["x_signature"] = base64.b64encode(signature).decode("ascii")
    return manifest


def signed_digests(manifest: Mapping[str, Any]) -> list[bytes]:
    """The digests a manifest lists, in order; [] when `x_digests` is malformed."""
    encoded = manifest.get("x_digests")
    if not isinstance(encoded, str):
        return []
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        return []
    if len(raw) % 32:
        return []
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def verify_batch(
    manifest: Mapping[str, Any], objects: Sequence[bytes | Mapping[str, Any]], public_key: Ed25519PublicKey | str
) -> VerifyResult:
    """Check the manifest's signature with the sender's known key, then each object's digest.

    An object verifies when the digest of its canonical JSON is among the
    signed ones, so the objects' order may differ from the manifest's. With a
    bad manifest signature every object is bad. The key inside the manifest
    is never trusted: only `public_key`, the one exchanged when the peer was
    added.
    """
    key = load_public_key(public_key) if isinstance(public_key, str) else public_key
    signer = str(manifest.get("x_signer", ""))
    signature_valid = _signature_valid(manifest, key)
    listed = signed_digests(manifest)
    flagged = {int(i) for i in manifest.get("x_derived") or [] if isinstance(i, int)}
    position = {digest: index for index, digest in enumerate(listed)}
    bad: list[BadObject] = []
    good: list[int] = []
    good_digests: list[bytes] = []
    derived: set[int] = set()
    for index, raw in enumerate(objects):
        try:
            data = orjson.loads(raw) if isinstance(raw, (bytes, bytearray, memoryview, str)) else raw
            if not isinstance(data, Mapping):
                bad.append(BadObject(index, "", "", "not a JSON object"))
                continue
            object_id, version = _id_and_version(data)
            digest = object_digest_bytes(data)
        except (orjson.JSONDecodeError, TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
            bad.append(BadObject(index, "", "", f"not canonicalisable JSON: {exc}"))
            continue
        if not signature_valid:
            bad.append(BadObject(index, object_id, version, "the batch signature does not verify with the peer's key"))
        elif digest not in position:
            bad.append(BadObject(index, object_id, version,
                                 "not covered by the batch signature: content differs from what was signed, "
                                 "or it was never signed"))
        else:
            good.append(index)
            good_digests.append(digest)
            if position[digest] in flagged:
                derived.add(index)
    return VerifyResult(signature_valid, signer, tuple(bad), tuple(good), frozenset(derived), tuple(good_digests))


def _signature_valid(manifest: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    if manifest.get("type") != MANIFEST_TYPE or manifest.get("x_algorithm") != ALGORITHM:
        return False
    encoded = manifest.get("x_signature")
    if not isinstance(encoded, str):
        return False
    try:
        signature = base64.b64decode(encoded, validate=True)
        body = {k: v for k, v in manifest.items() if k != "x_signature"}
        key.verify(signature, canonical_json(body))
    except (InvalidSignature, ValueError, TypeError, rfc8785.CanonicalizationError):
        return False
    return True
