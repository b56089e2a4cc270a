"""The node's Ed25519 key pair on disk: private key in the node home (0600), public key in meta.

Kept apart from `share.signing`, which is pure: this module touches the file system.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from threatmesh.errors import ConfigError
from threatmesh.share.signing import generate_private_key, load_private_key, private_key_pem, public_key_text
from threatmesh.store.protocol import Store

KEY_FILE = "node_key.pem"
META_PUBLIC_KEY = "node_public_key"


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def create_node_key(home: Path, store: Store) -> str:
    """Generate the node's key pair; the private key file is created 0600 and never overwritten.

    Returns the public key text (also stored in meta `node_public_key`).
    """
    key = generate_private_key()
    path = key_path(home)
    # O_EXCL: an existing key is the node's identity and must never be replaced by accident.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; refusing to replace the node's signing key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))
        handle.flush()
        os.fsync(handle.fileno())
    public = public_key_text(key)
    store.set_meta(META_PUBLIC_KEY, public)
    return public


def load_node_key(home: Path) -> Ed25519PrivateKey:
    """The node's private key; ConfigError when missing, unreadable, or readable by others."""
    path = key_path(home)
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{path} is readable by other users (mode {mode:o}); run chmod 600 on it")
        return load_private_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: the node has no signing key") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the node's signing key: {exc}") from exc


def ensure_node_key(home: Path, store: Store) -> str:
    """The node's public key, creating the pair for a node made before keys existed."""
    if key_path(home).exists():
        public = public_key_text(load_node_key(home))
        if store.get_meta(META_PUBLIC_KEY) != public:
            store.set_meta(META_PUBLIC_KEY, public)
        return public
    return create_node_key(home, store)
