"""Reading MISP documents and feeds (files, feed folders, feed URLs) into STIX objects.

A document is read whole (MISP events are JSON objects whose event-level fields
may follow the attributes, so they cannot be converted while streaming); a
broken document is an InputError with its line and column.
"""

from __future__ import annotations

import gzip
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from threatmesh.errors import InputError
from threatmesh.ingest.formats import Rejected
from threatmesh.ingest.misp_convert import convert_event
from threatmesh.ingest.misp_templates import TemplateRegistry
from threatmesh.ingest.stix_reader import RawObject

MAX_DOCUMENT = 512 * 1024 * 1024  # a MISP document larger than this is refused, not loaded


def decode(data: bytes, source: str) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}); is the file truncated?", source=source,
                         line=exc.lineno, column=exc.colno) from None


def events_of(document: Any, source: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, event) for every event in a MISP document; InputError when it holds none."""
    if isinstance(document, Mapping) and isinstance(document.get("response"), list):
        for n, item in enumerate(document["response"]):
            event = item.get("Event") if isinstance(item, Mapping) else None
            if not isinstance(event, Mapping):
                raise InputError(f"response[{n}] holds no Event", source=source)
            yield f"{source}, response[{n}]", event
        return
    if isinstance(document, Mapping) and isinstance(document.get("Event"), Mapping):
        yield source, document["Event"]
        return
    if isinstance(document, Mapping) and "uuid" in document and ("Attribute" in document or "Object" in document):
        yield source, document
        return
    raise InputError('not a MISP event: expected {"response": [...]}, {"Event": {...}} or an event', source=source)


def read_document(data: bytes, source: str, templates: TemplateRegistry | None = None) -> Iterator[RawObject | Rejected]:
    """STIX objects (and rejections) for every event of one MISP JSON document (objects read with `templates`)."""
    index = 0
    for location, event in events_of(decode(data, source), source):
        objects, rejected = convert_event(event, location, templates)
        yield from rejected
        for obj in objects:
            yield RawObject(source, index, obj)
            index += 1


def _read_bytes(name: str) -> bytes:
    try:
        if name.lower().endswith(".gz"):
            with gzip.open(name, "rb") as stream:
                data = stream.read(MAX_DOCUMENT + 1)
        else:
            with open(name, "rb") as raw:
                data = raw.read(MAX_DOCUMENT + 1)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", source=name) from exc
    if len(data) > MAX_DOCUMENT:
        raise InputError(f"larger than {MAX_DOCUMENT} bytes; refusing to load it whole", source=name)
    return data


def read_file(name: str, templates: TemplateRegistry | None = None) -> Iterator[RawObject | Rejected]:
    """One file: an event document, or a feed's manifest.json / hashes.csv."""
    path = Path(name)
    if path.name == "manifest.json":
        # A feed's index: its events are the sibling files, each read on its own;
        # here we only report the events it lists whose file is missing.
        yield from _check_manifest(path)
        return
    if path.name == "hashes.csv":
        return  # a lookup aid for MISP's correlation: every hash in it is in the event files
    yield from read_document(_read_bytes(name), name, templates)


def events_in_file(name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, event) for every event of one MISP event file; InputError when it is unreadable."""
    yield from events_of(decode(_read_bytes(name), name), name)


def _check_manifest(path: Path) -> Iterator[Rejected]:
    manifest = decode(_read_bytes(str(path)), str(path))
    if not isinstance(manifest, Mapping):
        raise InputError("a MISP feed manifest is an object of event uuid -> summary", source=str(path))
    for event_uuid in manifest:
        if not any((path.parent / f"{event_uuid}{suffix}").exists() for suffix in (".json", ".json.gz")):
            yield Rejected(f"{path}, event {event_uuid}", "listed in the manifest but its file is missing")


def read_feed_url(url: str, *, timeout: float = 30.0,
                  templates: TemplateRegistry | None = None) -> Iterator[RawObject | Rejected]:
    """Every event of a MISP feed served over HTTP(S): manifest.json, then `<uuid>.json` each.

    An event that cannot be fetched or read is reported and the rest of the feed goes on.
    """
    base = url if url.endswith("/") else url + "/"
    manifest_url = urllib.parse.urljoin(base, "manifest.json")
    manifest = decode(_fetch(manifest_url, timeout), manifest_url)
    if not isinstance(manifest, Mapping):
        raise InputError("a MISP feed manifest is an object of event uuid -> summary", source=manifest_url)
    for event_uuid in manifest:
        event_url = urllib.parse.urljoin(base, f"{urllib.parse.quote(str(event_uuid))}.json")
        try:
            items = list(read_document(_fetch(event_url, timeout), event_url, templates))
        except InputError as exc:
            yield Rejected(exc.location(), exc.reason)
            continue
        yield from items


def _fetch(url: str, timeout: float) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise InputError("only http and https feed URLs are read", source=url)
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "threatmesh"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            data: bytes = response.read(MAX_DOCUMENT + 1)
    except OSError as exc:
        raise InputError(f"cannot fetch: {exc}", source=url) from exc
    if len(data) > MAX_DOCUMENT:
        raise InputError(f"larger than {MAX_DOCUMENT} bytes", source=url)
    return data
