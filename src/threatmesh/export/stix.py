"""STIX 2.1 bundle export, streamed: objects are written as stored, never re-serialised."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from threatmesh.share.policy import Recipient, egress_decision
from threatmesh.store.protocol import Store


@dataclass(frozen=True, slots=True)
class ExportReport:
    written: int
    withheld: int  # refused by the egress policy


def export_bundle(
    store: Store,
    out: BinaryIO,
    *,
    recipient: Recipient,
    default_tlp: str,
    collection_id: str | None = None,
    all_versions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    written = withheld = 0
    out.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":[')
    for version in store.iter_objects(collection_id, all_versions=all_versions):
        decision = egress_decision(version.tlp, recipient, default_tlp=default_tlp,
                                   received_from_peer=version.source.startswith("peer:"))
        if not decision.allowed:
            withheld += 1
            continue
        if written:
            out.write(b",")
        out.write(version.json)
        written += 1
        if progress and written % 1000 == 0:
            progress(1000)
    out.write(b"]}\n")
    return ExportReport(written, withheld)
