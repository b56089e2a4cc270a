"""Who is calling, and what may they do (TAXII 2.1 §1.6.9, §5.1-5.8, §8.3.1).

Credentials: the account's API key, sent as `Authorization: Bearer KEY` or as
the password of HTTP Basic (RFC 7617; the user name is not checked, since the
key alone names the account and clients such as taxii2-client only do Basic).
Keys are looked up by their hash; a revoked account is as good as no account.

Rights per collection: an admin account may do everything; other accounts
have the `can_read` / `can_write` granted to them; anyone (anonymous callers
included) may read a public collection.

What leaves through a read is decided by the node's one egress policy; the
recipient an account stands for is chosen here. An account bound to a peer
(`threatmesh peer add` creates it) is that peer, with its role, clearances and
sharing groups, exactly as pushes to it see it; what it writes is recorded as
received from that peer (source 'peer:NAME'), and it is never sent back what it
sent or is known to hold. Any other account is a partner peer cleared for
nothing (so it gets TLP:CLEAR only), an admin is the operator, and an
anonymous reader is the public.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from threatmesh.auth import hash_key
from threatmesh.errors import AuthError
from threatmesh.share.policy import Recipient, RecipientKind
from threatmesh.store.protocol import Account, Collection, Peer, Rights, Store

WWW_AUTHENTICATE = 'Bearer realm="threatmesh", Basic realm="threatmesh", charset="UTF-8"'
# Longer headers cannot hold a threatmesh key; refusing them early bounds the work.
_MAX_AUTHORIZATION = 4096


@dataclass(frozen=True, slots=True)
class Caller:
    account: Account | None  # None: no credentials were sent
    peer: Peer | None = None  # the peer this account is bound to (`threatmesh peer add`)

    @property
    def name(self) -> str:
        return self.account.name if self.account else ""

    @property
    def anonymous(self) -> bool:
        return self.account is None

    @property
    def is_admin(self) -> bool:
        return self.account is not None and self.account.is_admin


ANONYMOUS = Caller(None)


def key_from_authorization(header: str | None) -> str | None:
    """The API key in an Authorization header; None when there is none; AuthError when unreadable."""
    if header is None or not header.strip():
        return None
    if len(header) > _MAX_AUTHORIZATION:
        raise AuthError("the Authorization header is too long")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthError("the Basic credentials are not base64 of user:password") from None
        _, colon, password = decoded.partition(":")
        if colon and password:
            return password
        raise AuthError("the Basic credentials carry no password (send the API key as the password)")
    raise AuthError("unsupported Authorization scheme: use Bearer or Basic")


def authenticate(header: str | None, store: Store) -> Caller:
    """The caller named by the credentials; ANONYMOUS without any; AuthError when they are wrong."""
    key = key_from_authorization(header)
    if key is None:
        return ANONYMOUS
    account = store.account_by_key_hash(hash_key(key))
    if account is None or account.revoked:
        raise AuthError("unknown or revoked API key")
    # A peer-bound account reads and writes as that peer: same policy as pushes to it.
    find_peer = getattr(store, "peer_for_account", None)
    return Caller(account, find_peer(account.name) if find_peer else None)


def collection_rights(caller: Caller, collection: Collection, store: Store) -> Rights:
    """can_read / can_write of this caller on this collection (§5.2.1: per requesting client)."""
    if caller.is_admin:
        return Rights(read=True, write=True)
    granted = store.rights(caller.name, collection.id) if caller.account else Rights()
    if collection.public and not granted.read:
        return Rights(read=True, write=granted.write)
    return granted


def recipient_for(caller: Caller) -> Recipient:
    """Whom the egress policy sees when this caller reads."""
    if caller.account is None:
        return Recipient.public()
    if caller.is_admin:
        return Recipient.operator()
    if caller.peer is not None:
        from threatmesh.federation.recipients import peer_recipient

        return peer_recipient(caller.peer)
    return Recipient(caller.name, RecipientKind.PEER)


def source_for(caller: Caller) -> str:
    """The provenance recorded for objects this caller writes: 'peer:NAME' for a
    peer-bound account, so that the policy knows they were received from a peer."""
    if caller.peer is not None:
        return f"peer:{caller.peer.name}"
    return f"user:{caller.name}"
