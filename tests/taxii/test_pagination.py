"""`next` tokens: bound to query and caller, valid across restarts (TAXII 2.1 §3.5, App. B)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatmesh.errors import BadParameter
from threatmesh.store.protocol import ObjectQuery
from threatmesh.taxii.pagination import PageTokens, continue_after

QUERY = ObjectQuery(collection_id="c1", types=("indicator",), limit=100)
NOW = 1_700_000_000.0


def tokens() -> PageTokens:
    return PageTokens.from_secret("node secret")


def test_round_trip_across_instances() -> None:
    # A new PageTokens from the same secret is what a restarted server has.
    token = tokens().issue(after=123_456, endpoint="objects", query=QUERY, account="alice", now=NOW)
    assert tokens().open(token, endpoint="objects", query=QUERY, account="alice", now=NOW + 60) == 123_456


def test_token_is_url_safe_and_opaque() -> None:
    token = tokens().issue(after=1, endpoint="objects", query=QUERY, account="alice", now=NOW)
    assert all(c.isalnum() or c in "-_" for c in token)


def test_limit_may_change_between_pages() -> None:
    token = tokens().issue(after=5, endpoint="objects", query=QUERY, account="a", now=NOW)
    assert tokens().open(token, endpoint="objects", query=replace(QUERY, limit=None), account="a", now=NOW) == 5


@pytest.mark.parametrize(
    "change",
    [
        {"collection_id": "c2"},
        {"types": ("malware",)},
        {"types": ()},
        {"ids": ("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",)},
        {"versions": ("all",)},
        {"spec_versions": ("2.0",)},
        {"added_after": 1},
    ],
)
def test_another_query_is_refused(change: dict[str, object]) -> None:
    token = tokens().issue(after=5, endpoint="objects", query=QUERY, account="a", now=NOW)
    with pytest.raises(BadParameter) as caught:
        tokens().open(token, endpoint="objects", query=replace(QUERY, **change), account="a", now=NOW)  # type: ignore[arg-type]
    assert caught.value.param == "next"


def test_another_caller_endpoint_or_key_is_refused() -> None:
    token = tokens().issue(after=5, endpoint="objects", query=QUERY, account="alice", now=NOW)
    for kwargs in (
        {"endpoint": "objects", "account": "bob"},
        {"endpoint": "objects", "account": ""},
        {"endpoint": "manifest", "account": "alice"},
    ):
        with pytest.raises(BadParameter):
            tokens().open(token, query=QUERY, now=NOW, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BadParameter):
        PageTokens.from_secret("other secret").open(token, endpoint="objects", query=QUERY, account="alice", now=NOW)


def test_expired_and_future_tokens_are_refused() -> None:
    t = PageTokens.from_secret("s", max_age_s=3600)
    token = t.issue(after=5, endpoint="objects", query=QUERY, account="a", now=NOW)
    assert t.open(token, endpoint="objects", query=QUERY, account="a", now=NOW + 3600) == 5
    with pytest.raises(BadParameter, match="expired"):
        t.open(token, endpoint="objects", query=QUERY, account="a", now=NOW + 3601)
    with pytest.raises(BadParameter):
        t.open(token, endpoint="objects", query=QUERY, account="a", now=NOW - 3600)


@given(st.text(max_size=80))
def test_garbage_is_refused_never_crashes(garbage: str) -> None:
    with pytest.raises(BadParameter):
        tokens().open(garbage, endpoint="objects", query=QUERY, account="a", now=NOW)


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=23), st.integers(0, 7))
def test_any_flipped_bit_is_refused(after: int, byte: int, bit: int) -> None:
    import base64

    token = tokens().issue(after=after, endpoint="objects", query=QUERY, account="a", now=NOW)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[byte % len(raw)] ^= 1 << bit
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(BadParameter):
        tokens().open(forged, endpoint="objects", query=QUERY, account="a", now=NOW)


def test_continue_after_only_moves_forward() -> None:
    assert continue_after(QUERY, 10).added_after == 10
    assert continue_after(replace(QUERY, added_after=20), 10).added_after == 20
    assert continue_after(replace(QUERY, added_after=5), 10).added_after == 10
