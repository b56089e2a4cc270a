"""A version received with a verified signature is forwarded without hashing it again.

The receiving side keeps each verified digest under the version's stored bytes
(`remember_verified`); a Signer signs those bytes with the kept digest. Here:
what is kept is the digest of exactly those bytes, only verified versions as
stored are kept, a Signer uses what is kept, and the memo stays bounded.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.federation.mesh import indicator
from threatmesh.federation.signatures import DigestMemo, Signer, remember_verified, screen_signed
from threatmesh.share import signing
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Peer


def _signed_envelope(objects: list[dict[str, Any]]) -> tuple[Peer, list[Any]]:
    key = signing.generate_private_key()
    manifest = signing.sign_batch(key, [orjson.dumps(o) for o in objects], signer="identity--a")
    peer = Peer("a", "http://127.0.0.1:1/taxii2/", "peer-a", public_key=signing.public_key_text(key))
    # What travels: the manifest and the objects, read back from JSON like a request body.
    return peer, orjson.loads(orjson.dumps([manifest, *objects]))


def test_verified_versions_are_kept_under_their_stored_bytes() -> None:
    objects = [indicator(f"memo-{i}", "clear", description=f"object {i}") for i in range(5)]
    old = {  # STIX 2.0: stored upgraded, so its stored bytes are not what was signed
        "type": "indicator", "id": "indicator--00000000-0000-4000-8000-0000000000aa",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "labels": ["malicious-activity"], "pattern": "[domain-name:value = 'old.example']",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    peer, raw = _signed_envelope([*objects, old])
    raw[2]["description"] = "tampered on the way"  # no longer what was signed
    screened = screen_signed(peer, raw)
    assert len(screened.accepted) == 5 and len(screened.refused) == 1
    stored = [parse_object(o) for o in screened.accepted]
    assert stored[-1].upgraded_from == "2.0"

    memo = DigestMemo(100)
    remember_verified(screened, stored, memo)
    assert len(memo) == 4
    for obj in stored[:-1]:
        assert memo.get(obj.json) == signing.object_digest_bytes(obj.json)
    assert memo.get(stored[-1].json) is None


def test_a_signer_signs_with_the_kept_digest() -> None:
    raw = orjson.dumps(indicator("memo-signer", "clear"))
    memo = DigestMemo(10)
    planted = bytes(range(32))  # not the real digest: shows that the kept one is used
    memo.put(raw, planted)
    signer = Signer(signing.generate_private_key(), "identity--b", memo)
    manifest = orjson.loads(signer.manifest([raw]))
    assert signing.signed_digests(manifest) == [planted]

    other = orjson.dumps(indicator("memo-signer-2", "clear"))
    manifest = orjson.loads(signer.manifest([other]))
    assert signing.signed_digests(manifest) == [signing.object_digest_bytes(other)]
    assert memo.get(other) == signing.object_digest_bytes(other)  # hashed once, then kept


def test_the_memo_forgets_the_oldest_first() -> None:
    memo = DigestMemo(4)  # two generations of two
    for i in range(5):
        memo.put(b"%d" % i, bytes([i]) * 32)
    assert len(memo) == 3
    assert [memo.get(b"%d" % i) for i in range(5)] == [None, None, bytes([2]) * 32, bytes([3]) * 32,
                                                        bytes([4]) * 32]
    memo.put(b"5", bytes([5]) * 32)
    assert len(memo) == 4 and memo.get(b"2") == bytes([2]) * 32
    memo.put(b"6", bytes([6]) * 32)
    assert len(memo) == 3 and memo.get(b"3") is None and memo.get(b"6") == bytes([6]) * 32
