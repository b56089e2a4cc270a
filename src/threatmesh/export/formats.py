"""The registry of export formats: name -> exporter.

An exporter writes to a binary stream and returns a Tally; it takes its
objects only from `export.select.outgoing` (the egress policy).
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from threatmesh.export.select import ExportOptions, Progress, Tally
from threatmesh.export.misp import export_misp
from threatmesh.export.stix import export_stix
from threatmesh.export.tools import (
    export_csv, export_rpz, export_snort, export_suricata, export_suricata_dataset, export_suricata_iprep,
    export_txt, export_zeek_intel,
)
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
    "misp": export_misp,  # MISP JSON events, for MISP instances and PyMISP
    # Tool formats: values of valid, non-revoked, non-warninglisted indicators (export/blocklists.py).
    "zeek-intel": export_zeek_intel,
    "suricata": export_suricata,  # rules: IPs, domains (DNS, TLS SNI, HTTP host), URLs
    "suricata-iprep": export_suricata_iprep,  # IP reputation list
    "suricata-dataset": export_suricata_dataset,  # `ip` dataset file
    "snort": export_snort,
    "rpz": export_rpz,
    "csv": export_csv,
    "txt": export_txt,
}
