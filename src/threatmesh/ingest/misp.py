"""MISP JSON as an input format: events in the three shapes seen in the wild, and MISP feeds.

Shapes: `{"response": [{"Event": {...}}, ...]}` (the REST API), `{"Event": {...}}`
(an export or a feed file) and a bare event (`{"uuid", "info", "Attribute", ...}`).
A feed is a folder (or a URL) with `manifest.json` (event uuid -> summary),
one `<uuid>.json` per event and `hashes.csv`; its event files are ordinary
events. Reading is in `misp_read`, conversion to STIX in `misp_convert`.

This module imports nothing of `ingest.formats` at load time, since that
registry imports it to list the reader.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import ijson

if TYPE_CHECKING:
    from threatmesh.ingest.formats import ReadOptions, Rejected
    from threatmesh.ingest.stix_reader import RawObject

_WRAPPED = re.compile(rb'^\{\s*"(?:response|Event)"\s*:')
_BUNDLE = re.compile(rb'"type"\s*:\s*"bundle"')
FEED_INDEX_FILES = ("manifest.json", "hashes.csv")


def looks_like_misp(head: bytes) -> bool:
    """Whether the first bytes of a JSON document are a MISP event in one of its shapes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _WRAPPED.match(text):
        return True
    if not text.startswith(b"{") or _BUNDLE.search(text):
        return False
    # A bare event: a top-level `Attribute` or `Object` (capitalised: MISP's own keys).
    # `info` and `uuid` may come after thousands of attributes, beyond the head.
    return bool(_top_level_keys(text) & {"Attribute", "Object"})


def _top_level_keys(text: bytes) -> set[str]:
    keys: set[str] = set()
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(text)):
            if prefix == "" and event == "map_key":
                keys.add(str(value))
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError):
        pass  # the head ends mid-document, or it is not JSON: what was seen is enough
    return keys


class MispFormat:
    """Reader of MISP events and feed folders (registered before STIX in ingest.formats)."""

    name = "misp"
    suffixes = (".json", ".json.gz")

    def detect(self, name: str, head: bytes) -> bool:
        path = Path(name)
        if path.name in FEED_INDEX_FILES and (path.parent / "manifest.json").exists():
            return True
        return looks_like_misp(head)

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]:
        from threatmesh.ingest.misp_read import read_file

        templates = options.misp_templates() if options.misp_templates else None
        yield from read_file(name, templates)
