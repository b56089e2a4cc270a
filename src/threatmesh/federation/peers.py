"""Registering a peer: its record, and the account it uses to reach this node."""

from __future__ import annotations

import time
from dataclasses import dataclass

from threatmesh.auth import hash_key, new_api_key
from threatmesh.errors import ConfigError, NotFound
from threatmesh.federation.recipients import CLEARANCES, ROLES
from threatmesh.store.protocol import Account, Peer, Store


@dataclass(frozen=True, slots=True)
class AddedPeer:
    peer: Peer
    key: str  # what the peer presents here (shown once; only its hash is stored)


def bound_account_name(store: Store, peer: str) -> str:
    """`peer:NAME`, or `peer:NAME#2`... when an earlier (revoked) account holds the name."""
    taken = {a.name for a in store.list_accounts()}
    name, n = f"peer:{peer}", 1
    while name in taken:
        n += 1
        name = f"peer:{peer}#{n}"
    return name


def check_peer(peer: Peer) -> None:
    if not peer.name or any(c in peer.name for c in " :/#"):
        raise ConfigError(f"peer name {peer.name!r}: give a short name without spaces, ':', '/' or '#'")
    if peer.role not in ROLES:
        raise ConfigError(f"peer {peer.name}: role {peer.role!r} is not one of {', '.join(ROLES)}")
    if not set(peer.cleared_for) <= set(CLEARANCES):
        raise ConfigError(f"peer {peer.name}: only {', '.join(CLEARANCES)} need clearance")


def add_peer(store: Store, collection_id: str, peer: Peer) -> AddedPeer:
    """Record `peer` (its `account` is chosen here) and create the account it uses to
    reach this node, with read and write on `collection_id`: everything it reads
    goes through the egress policy as this peer, everything it writes is recorded
    as received from it."""
    check_peer(peer)
    try:
        store.get_peer(peer.name)
        raise ConfigError(f"peer {peer.name!r} exists; change it with `threatmesh peer set`")
    except NotFound:
        pass
    key = new_api_key()
    account = bound_account_name(store, peer.name)
    store.add_account(Account(name=account, key_hash=hash_key(key), created=time.time_ns() // 1000))
    store.grant(account, collection_id, read=True, write=True)
    from dataclasses import replace

    return AddedPeer(store.add_peer(replace(peer, account=account)), key)
