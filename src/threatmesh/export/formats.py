"""The registry of export formats: name -> exporter.

An exporter writes to a binary stream and returns a Tally; it takes its
objects only from `export.select.outgoing` (the egress policy).
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from threatmesh.export.select import ExportOptions, Progress, Tally
from threatmesh.export.stix import export_stix
from threatmesh.share.policy import Recipient
from threatmesh.store.protocol import Store


class Exporter(Protocol):
    def __call__(
        self,
        store: Store,
        out: BinaryIO,
        *,
        recipient: Recipient,
        default_tlp: str,
        options: ExportOptions,
        progress: Progress | None = None,
    ) -> Tally: ...


FORMATS: dict[str, Exporter] = {
    "stix": export_stix,
}
