"""`threatmesh show ID --provenance`: the chain by which each version of an object arrived."""

from __future__ import annotations

from typing import Any, Sequence

import orjson
from rich.console import Console

from threatmesh.stix.timestamps import micros_to_timestamp
from threatmesh.store.protocol import Store, StoredVersion


def provenance_chain(store: Store, versions: Sequence[StoredVersion]) -> list[dict[str, Any]]:
    """Per version: where its first copy came from, then every peer that sent it, oldest first.

    A receipt's chain is its path (the nodes before the sender) followed by the sender.
    """
    receipts = store.provenance(versions[0].id) if versions else []
    chain = []
    for version in versions:
        sent = [r for r in receipts if r.version == version.version]
        chain.append({
            "id": version.id,
            "version": version.version,
            "first_stored": micros_to_timestamp(version.date_added),
            "source": version.source,
            "receipts": [
                {
                    "peer": r.peer,
                    "received": micros_to_timestamp(r.received),
                    "signer": r.signer,
                    "key_fingerprint": r.key_fingerprint,
                    "verified": r.verified,
                    "derived": r.derived,
                    "chain": [*r.path, r.peer, "this node"],
                }
                for r in sent
            ],
        })
    return chain


def print_provenance(store: Store, versions: Sequence[StoredVersion], *, json_out: bool) -> None:
    chain = provenance_chain(store, versions)
    console = Console(soft_wrap=True)
    if json_out:
        console.print_json(orjson.dumps(chain).decode())
        return
    for entry in chain:
        console.print(f"{entry['id']} version {entry['version'] or '(unversioned)'}", highlight=False)
        console.print(f"  first stored {entry['first_stored']} from {entry['source']}", highlight=False)
        if not entry["receipts"]:
            console.print("  no peer has sent this version", highlight=False)
        for receipt in entry["receipts"]:
            trust = "signature verified" if receipt["verified"] else "NOT verified"
            derived = ", the sender's redacted copy" if receipt["derived"] else ""
            console.print(
                f"  {receipt['received']}  {' -> '.join(receipt['chain'])}  ({trust}, key "
                f"{receipt['key_fingerprint'] or '?'}{derived})",
                highlight=False,
            )
