"""API keys: generated once, shown once, stored only as a hash.

Keys are 256-bit random tokens, so a plain SHA-256 is enough to store them: a
slow password hash defends guessable secrets, and these are not guessable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "tm_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), key_hash)
