"""Dashboard sessions: a signed token in a cookie, never the API key itself.

A person logs in by pasting an API key; the key is checked exactly as the
TAXII API checks it (`taxii.access.authenticate`), then forgotten. The browser
keeps only a token:

    base64url(JSON {"a": account, "e": expiry, "g": epoch}) "." base64url(HMAC-SHA256)

The HMAC key is a random secret kept in the store's meta table, so every
worker of a node accepts the same tokens and a restart does not log anyone
out. The MAC also covers the account's current key hash and its session
epoch, so a session ends when the account is revoked, when its key is
replaced, or when the person logs out (logout bumps the epoch, which ends every
session of that account: there is no server-side session table to clean).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from threatmesh.store.protocol import Account, Store

SESSION_COOKIE = "tm_session"
SESSION_SECONDS = 8 * 3600  # a working day
META_SECRET = "dashboard_session_secret"
_META_EPOCH = "dashboard_session_epoch:"
# A token is a few hundred bytes; anything much longer is not one of ours.
_MAX_TOKEN = 2048


def node_secret(store: Store) -> bytes:
    """The node's session-signing secret, created on first use."""
    value = store.get_meta(META_SECRET)
    if not value:
        store.set_meta(META_SECRET, secrets.token_hex(32))
        # Read back: if two workers raced, both now use whichever write won.
        value = store.get_meta(META_SECRET) or ""
    return bytes.fromhex(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_epoch(store: Store, account: str) -> int:
    raw = store.get_meta(_META_EPOCH + account)
    return int(raw) if raw and raw.isdigit() else 0


def end_sessions(store: Store, account: str) -> None:
    """Invalidate every session token of an account (logout)."""
    store.set_meta(_META_EPOCH + account, str(session_epoch(store, account) + 1))


def _mac(secret: bytes, payload: str, account: Account) -> bytes:
    message = f"{payload}|{account.key_hash}".encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).digest()


def issue_token(secret: bytes, account: Account, epoch: int, *, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + SESSION_SECONDS)
    payload = _b64(orjson.dumps({"a": account.name, "e": expiry, "g": epoch}))
    return payload + "." + _b64(_mac(secret, payload, account))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    account: str
    expiry: int
    epoch: int


def read_claims(token: str) -> TokenClaims | None:
    """The unverified claims of a well-formed token; None for anything else."""
    if not token or len(token) > _MAX_TOKEN or token.count(".") != 1:
        return None
    payload, _ = token.split(".")
    try:
        data = orjson.loads(_unb64(payload))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    name, expiry, epoch = data.get("a"), data.get("e"), data.get("g")
    if not isinstance(name, str) or not isinstance(expiry, int) or not isinstance(epoch, int):
        return None
    return TokenClaims(name, expiry, epoch)


def verify_token(secret: bytes, token: str, store: Store, *, now: float | None = None) -> Account | None:
    """The account a token stands for, or None when it is forged, expired, revoked or logged out."""
    claims = read_claims(token)
    if claims is None or claims.expiry < (time.time() if now is None else now):
        return None
    account = next((a for a in store.list_accounts() if a.name == claims.account), None)
    if account is None or account.revoked:
        return None
    payload, mac = token.split(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(secret, payload, account)):
        return None
    if claims.epoch != session_epoch(store, account.name):
        return None
    return account
