"""`next` tokens for TAXII pagination (TAXII 2.1 §3.4 `next`, §3.5, Appendix B).

Design decisions the checklist asks to make on purpose:

- **Cursor, not snapshot.** A token holds the `date_added` of the last item
  the client got. `date_added` is unique and strictly increasing in the store,
  and results come sorted by it, so "the next page" is exactly "the matching
  items added after that one": nothing is skipped or repeated even when many
  objects share one POST, or when objects or versions arrive while a client
  pages. New data added meanwhile shows up on later pages, as it would with
  `added_after`. Nothing is held on the server, so tokens survive a restart
  and cost nothing to keep.
- **Bound to the query and the caller.** The token carries an HMAC (key from
  the node's secret) over the cursor, the endpoint, the normalised query
  (collection, object, every filter except `limit`) and the account name. A
  token replayed with other filters, on another collection, endpoint or by
  another account is refused with 400. The caller's rights are checked again
  on every request by the server, as for any request (Appendix B).
- **`limit` may change between pages** and may be absent with `next`: it only
  sizes the page, so it is left out of the binding (OpenCTI sends `next` alone).
- **Lifetime:** `max_age` (default 7 days), so a slow consumer can pause for
  hours without losing its place; an expired token gets a 400 that says how
  to resume with `added_after`.

Token layout, base64url without padding: version byte, cursor (signed 64-bit
µs), issue time (unsigned 64-bit seconds), 16 bytes of HMAC-SHA256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import time
from dataclasses import dataclass, replace

from threatmesh.errors import BadParameter
from threatmesh.store.protocol import ObjectQuery

_FORMAT_VERSION = 1
_BODY = struct.Struct(">BqQ")
_MAC_BYTES = 16
_TOKEN_BYTES = _BODY.size + _MAC_BYTES
DEFAULT_MAX_AGE_S = 7 * 24 * 3600
# Clock skew forgiven between nodes of one deployment that share the secret.
_FUTURE_SKEW_S = 300


def query_scope(endpoint: str, query: ObjectQuery) -> bytes:
    """The canonical form of what a token may continue: endpoint and query minus limit."""
    return json.dumps(
        {
            "endpoint": endpoint,
            "collection": query.collection_id,
            "added_after": query.added_after,
            "ids": sorted(query.ids),
            "types": sorted(query.types),
            "versions": sorted(query.versions),
            "spec_versions": sorted(query.spec_versions),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    if len(text) > 4 * _TOKEN_BYTES or not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PageTokens:
    """Issues and opens `next` tokens with a key derived from the node's secret."""

    key: bytes
    max_age_s: int = DEFAULT_MAX_AGE_S

    @classmethod
    def from_secret(cls, secret: str | bytes, *, max_age_s: int = DEFAULT_MAX_AGE_S) -> PageTokens:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not raw:
            raise ValueError("the node secret for next tokens is empty")
        # A key of its own, so the secret could serve other purposes without reuse.
        key = hmac.new(raw, b"threatmesh taxii next token v1", hashlib.sha256).digest()
        return cls(key=key, max_age_s=max_age_s)

    def _mac(self, body: bytes, scope: bytes, account: str) -> bytes:
        message = b"\x00".join([body, scope, account.encode("utf-8")])
        return hmac.new(self.key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(
        self, *, after: int, endpoint: str, query: ObjectQuery, account: str, now: float | None = None
    ) -> str:
        """A token continuing `query` after the item whose date_added is `after` (µs)."""
        issued = int(time.time() if now is None else now)
        body = _BODY.pack(_FORMAT_VERSION, after, issued)
        return _b64encode(body + self._mac(body, query_scope(endpoint, query), account))

    def open(
        self, token: str, *, endpoint: str, query: ObjectQuery, account: str, now: float | None = None
    ) -> int:
        """The cursor (µs) a token continues after; BadParameter('next') if it is not valid here."""
        raw = _b64decode(token)
        if raw is None or len(raw) != _TOKEN_BYTES or raw[0] != _FORMAT_VERSION:
            raise BadParameter("next", "next is not a token this server issued")
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        if not hmac.compare_digest(mac, self._mac(body, query_scope(endpoint, query), account)):
            raise BadParameter(
                "next",
                "next does not belong to this request: send it with the same parameters "
                "(except limit) and credentials as the request that returned it",
            )
        _, after, issued = _BODY.unpack(body)
        current = time.time() if now is None else now
        if issued > current + _FUTURE_SKEW_S or current - issued > self.max_age_s:
            raise BadParameter(
                "next",
                "next has expired; resume with added_after set to the last "
                "X-TAXII-Date-Added-Last you received",
            )
        return int(after)


def continue_after(query: ObjectQuery, cursor: int) -> ObjectQuery:
    """The query for the page after `cursor`: `added_after` moves forward, never back."""
    added_after = cursor if query.added_after is None else max(query.added_after, cursor)
    return replace(query, added_after=added_after)
