"""A node: its home folder, settings, store and identity.

`init_node` creates one (refusing to overwrite); `open_node` opens an existing one.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import orjson

from threatmesh.auth import hash_key, new_api_key
from threatmesh.errors import ConfigError, NodeExists
from threatmesh.settings import Settings, load_settings, save_settings
from threatmesh.share.keys import create_node_key
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Account, Collection, Store
from threatmesh.store.sqlite import SQLiteStore

DEFAULT_COLLECTION_ALIAS = "default"
META_IDENTITY = "node_identity_id"
META_DEFAULT_COLLECTION = "default_collection_id"
ADMIN_ACCOUNT = "admin"


@dataclass
class Node:
    settings: Settings
    store: Store

    @property
    def identity_id(self) -> str:
        value = self.store.get_meta(META_IDENTITY)
        if not value:
            raise ConfigError(f"{self.settings.home}: node has no identity; was `threatmesh init` interrupted?")
        return value

    @property
    def default_collection(self) -> Collection:
        value = self.store.get_meta(META_DEFAULT_COLLECTION) or DEFAULT_COLLECTION_ALIAS
        return self.store.get_collection(value)

    def collection(self, id_or_alias: str | None) -> Collection:
        """The named collection, or the node's default one."""
        return self.store.get_collection(id_or_alias) if id_or_alias else self.default_collection

    def close(self) -> None:
        self.store.close()


@dataclass(frozen=True)
class Initialised:
    node: Node
    admin_key: str  # shown once; only its hash is stored


def _stix_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def init_node(home: Path, name: str | None = None, environ: Mapping[str, str] | None = None) -> Initialised:
    """Create a node in `home`: SQLite store, config, STIX identity, default collection, admin key."""
    settings = load_settings(home, os.environ if environ is None else environ)
    if settings.db_path.exists() or settings.config_path.exists():
        raise NodeExists(f"a node already exists in {home}; refusing to overwrite it")
    home.mkdir(parents=True, exist_ok=True)
    if name:
        from dataclasses import replace

        settings = replace(settings, node_name=name)
    save_settings(settings)
    store = SQLiteStore(settings.db_path)
    try:
        collection = store.add_collection(
            Collection(
                id=str(uuid.uuid4()),
                title="Default",
                alias=DEFAULT_COLLECTION_ALIAS,
                description="The node's own intelligence; what peers pull and push by default.",
            )
        )
        now = _stix_now()
        identity = {
            "type": "identity",
            "spec_version": "2.1",
            "id": f"identity--{uuid.uuid4()}",
            "created": now,
            "modified": now,
            "name": settings.node_name,
            "identity_class": "organization",
            "description": "The threatmesh node that created this object.",
        }
        store.put_objects([parse_object(identity)], collection_id=collection.id, source="node", tlp=None)
        store.set_meta(META_IDENTITY, identity["id"])
        store.set_meta(META_DEFAULT_COLLECTION, collection.id)
        # The Ed25519 pair that signs what this node sends.
        create_node_key(home, store)
        admin_key = new_api_key()
        store.add_account(
            Account(name=ADMIN_ACCOUNT, key_hash=hash_key(admin_key), is_admin=True, created=time.time_ns() // 1000)
        )
    except BaseException:
        store.close()
        raise
    return Initialised(Node(settings, store), admin_key)


def open_node(home: Path, environ: Mapping[str, str] | None = None) -> Node:
    """Open the node in `home`; ConfigError when there is none."""
    settings = load_settings(home, os.environ if environ is None else environ)
    if not settings.db_path.exists():
        raise ConfigError(f"no node in {home}; create one with `threatmesh init` (or pass --home)")
    return Node(settings, SQLiteStore(settings.db_path))


def identity_json(node: Node) -> dict[str, object]:
    latest = node.store.get_latest(node.identity_id)
    if latest is None:
        raise ConfigError("the node identity object is missing from the store")
    return orjson.loads(latest.json)  # type: ignore[no-any-return]
