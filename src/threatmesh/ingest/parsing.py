"""Raw objects in, parsed versions (or rejections with their location) out.

Kept apart from the pipeline, with only the STIX core beneath it, so that the
process that parses a big file in parallel (ingest/parallel.py) starts without
importing every reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from threatmesh.errors import InputError, InvalidObject
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.stix.model import StixObject
from threatmesh.stix.parse import parse_object

if TYPE_CHECKING:
    from threatmesh.ingest.formats import Rejected


@dataclass(frozen=True, slots=True)
class Rejection:
    location: str
    reason: str
    object_id: str | None = None


def parse_raw(raws: Iterable[RawObject | Rejected], *, strict: bool = False) -> Iterator[StixObject | Rejection]:
    """Each raw object parsed (or the reason it is rejected, with its location), in order.

    An InputError raised by the stream itself (broken JSON) passes through,
    after everything read before it."""
    for raw in raws:
        if not isinstance(raw, RawObject):  # a record the reader already rejected
            yield Rejection(raw.location, raw.reason, raw.object_id)
            continue
        try:
            yield parse_object(raw.data, strict=strict)
        except InvalidObject as exc:
            object_id = exc.object_id or _id_of(raw.data)
            location = f"{raw.source}, objects[{raw.index}]" + (f", {object_id}" if object_id else "")
            yield Rejection(location, exc.reason, object_id)


def relabelled(items: Iterable[RawObject | Rejected], path: str, label: str) -> Iterator[RawObject | Rejected]:
    """The items of `path` named as coming from `label` (stdin is spooled to a file first)."""
    if path == label:
        yield from items
        return
    try:
        for item in items:
            if isinstance(item, RawObject):
                yield RawObject(label, item.index, item.data)
            else:
                yield replace(item, location=item.location.replace(path, label))
    except InputError as exc:
        exc.source = label
        raise


def _id_of(data: object) -> str | None:
    if isinstance(data, dict):
        value = data.get("id")
        return value if isinstance(value, str) else None
    return None
