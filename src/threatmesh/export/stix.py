"""STIX 2.1 bundle export, streamed: objects are written as stored, never re-serialised."""

from __future__ import annotations

import uuid
from typing import BinaryIO

from threatmesh.export.select import ExportOptions, Progress, Tally, outgoing
from threatmesh.share.policy import Recipient
from threatmesh.store.protocol import Store


def export_stix(
    store: Store,
    out: BinaryIO,
    *,
    recipient: Recipient,
    default_tlp: str,
    options: ExportOptions,
    progress: Progress | None = None,
) -> Tally:
    tally = Tally()
    out.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":[')
    types = tuple(t for t in options.types)
    for version in outgoing(store, recipient, default_tlp=default_tlp, options=options, tally=tally, stix_types=types):
        if tally.written:
            out.write(b",")
        out.write(version.json)
        tally.written += 1
        if progress and tally.written % 1000 == 0:
            progress(1000)
    out.write(b"]}\n")
    return tally
