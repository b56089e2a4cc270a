"""TAXII query parameters, parsed once into an `ObjectQuery` (TAXII 2.1 §3.4, §3.4.1).

Every store turns the same frozen `ObjectQuery` into its own SQL; nothing
downstream reads the raw query string again. Rules kept here:

- Each parameter at most once per request (3.4): a repeated one is a 400.
- Values of one `match[...]` field are ORed (comma-separated); different
  fields are ANDed. Whitespace around a value is forgiven.
- `added_after` is a TAXII timestamp, exclusive, kept as integer µs. Digits
  beyond the microsecond are dropped, which keeps "strictly after" exact
  because stored `date_added` values are whole microseconds.
- `match[version]` holds `first`, `last`, `all` and/or STIX timestamps,
  normalised to 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; `all` stands alone and a value
  may not repeat (3.4.1). Absent means `last` (or `all` where the endpoint
  works on every version: the versions list and DELETE).
- `match[spec_version]` absent means "the latest spec version of each object",
  which the store applies (an empty tuple).
- `limit` is a positive integer; larger values are clamped to the server's
  page size, and an absent limit gets the server's default page size.
- Parameters an endpoint does not support, and unknown `match[...]` fields,
  are ignored (3.4.1 allows it).

A malformed value raises `BadParameter` naming the parameter; the web layer
answers 400 with that name.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterable

from threatmesh.errors import BadParameter
from threatmesh.stix.timestamps import normalize_timestamp, timestamp_to_micros
from threatmesh.store.protocol import ObjectQuery

# STIX 2.1 §2.9 / §3.1: a type name is 3-250 of a-z, 0-9 and '-'.
_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]--" + _UUID)
_SPEC_VERSION_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
_LIMIT_RE = re.compile(r"[0-9]{1,40}")
_VERSION_KEYWORDS = ("first", "last", "all")
# One request names at most this many values in one match field: enough for any
# client, small enough to keep one query inside every database's parameter cap.
MAX_MATCH_VALUES = 1000


class Endpoint(enum.Enum):
    """The TAXII endpoints that take query parameters, each with the set it supports."""

    OBJECTS = "objects"  # §5.4
    MANIFEST = "manifest"  # §5.3
    OBJECT = "object"  # §5.6
    VERSIONS = "versions"  # §5.8
    DELETE = "delete"  # §5.7


_ALL_FILTERS = frozenset(
    {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"}
)
SUPPORTED: dict[Endpoint, frozenset[str]] = {
    Endpoint.OBJECTS: _ALL_FILTERS,
    Endpoint.MANIFEST: _ALL_FILTERS,
    Endpoint.OBJECT: frozenset({"added_after", "limit", "next", "match[version]", "match[spec_version]"}),
    Endpoint.VERSIONS: frozenset({"added_after", "limit", "next", "match[spec_version]"}),
    Endpoint.DELETE: frozenset({"match[version]", "match[spec_version]"}),
}
_DEFAULT_VERSIONS: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.OBJECTS: ("last",),
    Endpoint.MANIFEST: ("last",),
    Endpoint.OBJECT: ("last",),
    # The versions endpoint lists every version; DELETE removes every version
    # unless narrowed (after it, a GET of the object must answer 404, §5.7).
    Endpoint.VERSIONS: ("all",),
    Endpoint.DELETE: ("all",),
}


@dataclass(frozen=True, slots=True)
class TaxiiQuery:
    """What one request asks for: the store query, and the `next` token if it continues one."""

    query: ObjectQuery
    next_token: str | None = None


def _single_values(params: Iterable[tuple[str, str]], wanted: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in params:
        if name not in wanted:
            continue
        if name in values:
            raise BadParameter(name, f"{name} may appear only once in a request")
        values[name] = value
    return values


def _split(param: str, raw: str) -> list[str]:
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise BadParameter(param, f"{param} has an empty value (values are separated by single commas)")
    if len(items) > MAX_MATCH_VALUES:
        raise BadParameter(param, f"{param} has more than {MAX_MATCH_VALUES} values")
    return items


def _dedupe_sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


def parse_added_after(raw: str) -> int:
    """A TAXII timestamp as µs since the epoch; BadParameter('added_after') if it is not one."""
    try:
        return timestamp_to_micros(raw)
    except ValueError:
        raise BadParameter(
            "added_after",
            f"added_after must be a timestamp like 2021-06-10T12:00:00.000000Z, not {raw!r}",
        ) from None


def parse_limit(raw: str, *, page_size_max: int) -> int:
    if not _LIMIT_RE.fullmatch(raw) or int(raw) <= 0:
        raise BadParameter("limit", f"limit must be a positive integer, not {raw!r}")
    return min(int(raw), page_size_max)


def parse_ids(raw: str) -> tuple[str, ...]:
    ids = _split("match[id]", raw)
    for object_id in ids:
        if not _ID_RE.fullmatch(object_id):
            raise BadParameter("match[id]", f"match[id]: {object_id!r} is not a STIX id (type--uuid)")
    return _dedupe_sorted(ids)


def parse_types(raw: str) -> tuple[str, ...]:
    types = _split("match[type]", raw)
    for object_type in types:
        if not _TYPE_RE.fullmatch(object_type):
            raise BadParameter(
                "match[type]",
                f"match[type]: {object_type!r} is not a STIX type name (3-250 of a-z, 0-9, '-')",
            )
    return _dedupe_sorted(types)


def parse_versions(raw: str) -> tuple[str, ...]:
    """`match[version]` values: keywords first (in a fixed order), then sorted timestamps."""
    param = "match[version]"
    keywords: list[str] = []
    timestamps: list[str] = []
    for value in _split(param, raw):
        if value in _VERSION_KEYWORDS:
            normalised = value
        else:
            try:
                normalised = normalize_timestamp(value)
            except ValueError:
                raise BadParameter(
                    param,
                    f"{param}: {value!r} is neither first, last, all nor a timestamp",
                ) from None
        if normalised in keywords or normalised in timestamps:
            raise BadParameter(param, f"{param}: {value!r} is given twice")
        (keywords if value in _VERSION_KEYWORDS else timestamps).append(normalised)
    if "all" in keywords and len(keywords) + len(timestamps) > 1:
        raise BadParameter(param, f"{param}: 'all' cannot be combined with other values")
    ordered_keywords = [k for k in _VERSION_KEYWORDS if k in keywords]
    return tuple(ordered_keywords) + tuple(sorted(timestamps))


def parse_spec_versions(raw: str) -> tuple[str, ...]:
    values = _split("match[spec_version]", raw)
    for value in values:
        if not _SPEC_VERSION_RE.fullmatch(value):
            raise BadParameter(
                "match[spec_version]",
                f"match[spec_version]: {value!r} is not a spec version such as 2.1",
            )
    return _dedupe_sorted(values)


def parse_query(
    params: Iterable[tuple[str, str]],
    *,
    endpoint: Endpoint,
    collection_id: str,
    page_size_default: int,
    page_size_max: int,
    object_id: str | None = None,
) -> TaxiiQuery:
    """Parse the query parameters of one request (as (name, value) pairs, repeats included).

    `object_id` is the `{object-id}` of the object, versions and delete endpoints.
    Raises BadParameter for the first malformed parameter.
    """
    supported = SUPPORTED[endpoint]
    values = _single_values(params, supported)

    added_after = parse_added_after(values["added_after"]) if "added_after" in values else None

    limit: int | None = None
    if "limit" in supported:
        limit = min(page_size_default, page_size_max)
        if "limit" in values:
            limit = parse_limit(values["limit"], page_size_max=page_size_max)

    if object_id is not None:
        ids: tuple[str, ...] = (object_id,)
    else:
        ids = parse_ids(values["match[id]"]) if "match[id]" in values else ()
    types = parse_types(values["match[type]"]) if "match[type]" in values else ()
    versions = (
        parse_versions(values["match[version]"])
        if "match[version]" in values
        else _DEFAULT_VERSIONS[endpoint]
    )
    spec_versions = (
        parse_spec_versions(values["match[spec_version]"]) if "match[spec_version]" in values else ()
    )

    next_token = values.get("next")
    if next_token is not None and not next_token:
        raise BadParameter("next", "next is empty; send the value of the previous page's next")

    query = ObjectQuery(
        collection_id=collection_id,
        added_after=added_after,
        ids=ids,
        types=types,
        versions=versions,
        spec_versions=spec_versions,
        limit=limit,
    )
    return TaxiiQuery(query=query, next_token=next_token)
