"""The registry of input formats: one reader module per format, detected by content.

A reader turns one source (a file path) into STIX 2.x objects as plain dicts
(`RawObject`) and reports what it cannot turn into STIX as `Rejected` items,
with a location (file, line or record), so the pipeline counts and lists
them while the rest of the source goes in. Readers that create objects give
them deterministic ids (UUIDv5 over what identifies the record), so ingesting
the same source twice changes nothing.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from threatmesh.errors import InputError
from threatmesh.ingest.stix_reader import RawObject, read_stix
from threatmesh.ingest.misp import MispFormat

HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record a reader could not turn into STIX; reported, never dropped silently."""

    location: str  # 'file, line 12' or 'file, Event 5f1c..., Attribute 3'
    reason: str
    object_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Options a user can pass to readers (`--map type=Indicator_type,value=Data`)."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    # Names the node already knows (actors, malware, techniques), built on first
    # use: readers of prose call it to link what a text names to stored objects.
    known_names: Callable[[], Any] | None = None
    # The MISP object templates the node reads MISP objects with (a TemplateRegistry), built on first use.
    misp_templates: Callable[[], Any] | None = None


class Reader(Protocol):
    @property
    def name(self) -> str:
        """What `--format` calls it."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File names taken when a directory is expanded."""
        ...

    def detect(self, name: str, head: bytes) -> bool:
        """Whether this reader recognises the source from its name and first bytes."""
        ...

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]: ...


class StixFormat:
    name = "stix"
    suffixes = (".json", ".json.gz")

    def detect(self, name: str, head: bytes) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
        return text[:1] in (b"{", b"[")

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]:
        yield from read_stix(name)


# Most specific first: the first reader whose `detect` accepts a source reads it.
# STIX comes last among the JSON readers, since MISP JSON is JSON too.
READERS: list[Reader] = [
    MispFormat(),  # MISP events and feeds: JSON too, recognised by their Event/Attribute keys
    StixFormat(),
]


def _register_collect_readers() -> None:
    """Incident CSVs, lists/tables and prose go first: each rejects JSON-looking input and
    needs its own suffix or header, so none takes a STIX or MISP file, whereas STIX's detect
    would take a Markdown file that starts with '['. Imported here, late: they import this module."""
    from threatmesh.ingest.incidents import IncidentFormat
    from threatmesh.ingest.lists import ListFormat
    from threatmesh.ingest.prose import ProseFormat

    # After MISP, whose detect is narrow (MISP JSON keys, or a feed's manifest.json /
    # hashes.csv beside a manifest) and must own a feed's hashes.csv.
    at = next((i + 1 for i, r in enumerate(READERS) if r.name == "misp"), 0)
    READERS[at:at] = [IncidentFormat(), ListFormat(), ProseFormat()]


_register_collect_readers()


def read_head(name: str) -> bytes:
    """The first bytes of a file (decompressed for .gz), for detection."""
    try:
        if name.lower().endswith(".gz"):
            with gzip.open(name, "rb") as stream:
                return stream.read(HEAD_BYTES)
        with open(name, "rb") as raw:
            return raw.read(HEAD_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", source=name) from exc


def reader_for(name: str, fmt: str | None = None) -> Reader:
    """The reader named by `fmt`, else the first that recognises the source."""
    if fmt and fmt != "auto":
        for reader in READERS:
            if reader.name == fmt:
                return reader
        raise InputError(f"unknown format {fmt!r}; known: {', '.join(r.name for r in READERS)}", source=name)
    head = read_head(name)
    for reader in READERS:
        if reader.detect(name, head):
            return reader
    raise InputError("unrecognised format; pass --format (known: " + ", ".join(r.name for r in READERS) + ")",
                     source=name)


def directory_suffixes() -> tuple[str, ...]:
    return tuple(sorted({s for reader in READERS for s in reader.suffixes}))
