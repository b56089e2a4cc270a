"""Signed batches: Ed25519 over RFC 8785 canonical JSON, beside the objects."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from threatmesh.errors import ConfigError
from threatmesh.node import init_node
from threatmesh.share.keys import KEY_FILE, META_PUBLIC_KEY, load_node_key
from threatmesh.share.signing import (
    canonical_json,
    generate_private_key,
    key_fingerprint,
    public_key_text,
    sign_batch,
    verify_batch,
)

OBJECTS = [
    orjson.dumps({"type": "indicator", "id": f"indicator--{n}", "modified": "2024-01-01T00:00:00.000Z",
                  "name": f"x{n}", "confidence": 50})
    for n in range(5)
]


def test_a_signed_batch_verifies_in_any_order_and_any_key_order() -> None:
    key = generate_private_key()
    manifest = sign_batch(key, OBJECTS, signer="identity--a", derived=[2])
    result = verify_batch(manifest, OBJECTS, public_key_text(key))
    assert result.ok and result.signer == "identity--a" and len(result.good) == 5
    # Canonical JSON: reordered keys and other whitespace still verify.
    rewritten = [orjson.dumps(dict(reversed(list(orjson.loads(o).items())))) + b"\n" for o in reversed(OBJECTS)]
    reordered = verify_batch(manifest, rewritten, public_key_text(key))
    assert reordered.ok
    assert result.derived == {2} and reordered.derived == {2}  # flags follow the object, not its position
    assert all("x_signature" not in orjson.loads(o) for o in OBJECTS)  # beside, never inside


def test_a_tampered_object_is_named_and_the_rest_verify() -> None:
    key = generate_private_key()
    manifest = sign_batch(key, OBJECTS)
    tampered = list(OBJECTS)
    data = orjson.loads(tampered[3])
    data["confidence"] = 100
    tampered[3] = orjson.dumps(data)
    result = verify_batch(manifest, tampered, public_key_text(key))
    assert not result.ok and result.signature_valid
    assert [(b.index, b.id) for b in result.bad] == [(3, "indicator--3")]
    assert "differs" in result.bad[0].reason
    assert result.good == (0, 1, 2, 4)
    extra = verify_batch(manifest, [*OBJECTS, orjson.dumps({"id": "indicator--9", "modified": "x"})],
                         public_key_text(key))
    assert [b.id for b in extra.bad] == ["indicator--9"]


def test_a_wrong_key_or_an_altered_manifest_fails_everything() -> None:
    key, other = generate_private_key(), generate_private_key()
    manifest = sign_batch(key, OBJECTS)
    assert len(verify_batch(manifest, OBJECTS, public_key_text(other)).bad) == 5
    # An attacker re-signing with its own key and putting that key inside gains nothing:
    # only the key exchanged when the peer was added counts.
    forged = sign_batch(other, OBJECTS)
    forged["x_key"] = public_key_text(key)
    assert not verify_batch(forged, OBJECTS, public_key_text(key)).signature_valid
    altered = dict(manifest, x_signer="identity--someone-else")
    assert not verify_batch(altered, OBJECTS, public_key_text(key)).signature_valid


def test_init_creates_a_private_key_only_the_owner_reads(tmp_path: Path) -> None:
    created = init_node(tmp_path / "n", "n", environ={})
    try:
        path = tmp_path / "n" / KEY_FILE
        assert path.stat().st_mode & 0o777 == 0o600
        public = created.node.store.get_meta(META_PUBLIC_KEY)
        assert public == public_key_text(load_node_key(tmp_path / "n"))
        assert len(key_fingerprint(public)) == 16
        os.chmod(path, 0o644)
        with pytest.raises(ConfigError, match="readable by other users"):
            load_node_key(tmp_path / "n")
    finally:
        created.node.close()


def test_the_manifest_costs_about_44_bytes_per_object() -> None:
    key = generate_private_key()
    many = [orjson.dumps({"type": "indicator", "id": f"indicator--{n}", "modified": "2024-01-01T00:00:00.000Z"})
            for n in range(1000)]
    size = len(orjson.dumps(sign_batch(key, many)))
    assert size < 1000 * 44 + 1000, size


_KEY = generate_private_key()
# Generated JSON values, floats, big integers and non-BMP keys included, so that the fast
# (orjson) path of canonical_json is checked against the reference implementation.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**60), max_value=2**60),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=4), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _json, max_size=6))
def test_canonical_json_is_rfc8785(value: dict) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, OverflowError):
        with pytest.raises((rfc8785.CanonicalizationError, ValueError, OverflowError)):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
    # From JSON text, as a push hands it over: the same form.
    assert canonical_json(orjson.dumps(value)) == expected
    manifest = sign_batch(_KEY, [orjson.dumps(value)])
    assert verify_batch(manifest, [value], public_key_text(_KEY)).good == (0,)


def test_canonical_json_of_json_text_with_numbers_orjson_writes_differently() -> None:
    # Floats, exponents and integers past 2**53 must take the reference path.
    for value in ({"a": 9007199254740993, "b": -1.5e-7}, {"c": [1e21, 0.1]}, {"d": [1, 2.0]},
                  {"e": -9007199254740993}, {"f": "x:1.5", "g": 1}, {"h": {"i": 100000000000000000}}):
        text = orjson.dumps(value)
        try:
            expected = rfc8785.dumps(orjson.loads(text))
        except rfc8785.CanonicalizationError:  # integers past 2**53: refused, not written wrong
            with pytest.raises(rfc8785.CanonicalizationError):
                canonical_json(text)
            continue
        assert canonical_json(text) == expected, value


def test_canonical_json_orders_keys_by_utf16_code_units() -> None:
    # U+E000 sorts after U+1F600 in UTF-8 bytes but before it in UTF-16 code units (RFC 8785 §3.2.3).
    value = {"\ue000": 1, "\U0001f600": 2, "a": 1.5}
    assert canonical_json(value) == rfc8785.dumps(value)
