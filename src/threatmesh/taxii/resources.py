"""Builders of TAXII 2.1 resources (§4.1.1, §4.2.1, §4.3.1, §5.1.1, §5.2.1, §5.3.1, §5.4.1, §5.8.1, §3.6.1).

Pure functions from values to JSON-ready dicts. Rules kept here once:

- Optional properties with no value are omitted, and so are empty lists,
  which TAXII forbids (§2, "list": at least one element).
- Paginated resources always say `more`, and carry `next` whenever `more` is
  true (the erratum adds `next` to the manifest and versions too).
- Timestamps are TAXII timestamps (µs, 'Z').

The envelope is the one exception to "dicts": it is built as bytes, because
its objects are stored JSON bytes that go out exactly as they were kept
(re-parsing them only to serialise them again would cost more than the query).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from threatmesh.stix.timestamps import micros_to_timestamp
from threatmesh.store.protocol import Collection, StatusDetail
from threatmesh.taxii.media import TAXII_MEDIA_TYPE

TAXII_VERSIONS = (TAXII_MEDIA_TYPE,)


def _without_empty(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if value is not None and value != [] and value != ""}


def discovery(
    title: str,
    *,
    description: str | None = None,
    contact: str | None = None,
    default: str | None = None,
    api_roots: Sequence[str] = (),
) -> dict[str, Any]:
    """§4.1.1. `api_roots` are relative URLs ('/name/'); `default` must be one of them."""
    if default is not None and default not in api_roots:
        raise ValueError(f"default API root {default!r} is not in api_roots")
    for url in api_roots:
        if not url.startswith("/") or url.startswith("//") or "?" in url or "/../" in url:
            raise ValueError(f"API root URL {url!r} must be a relative path starting with one '/'")
    return _without_empty(
        {
            "title": title,
            "description": description,
            "contact": contact,
            "default": default,
            "api_roots": list(api_roots),
        }
    )


def api_root(title: str, *, max_content_length: int, description: str | None = None) -> dict[str, Any]:
    """§4.2.1; `versions` lists media types with their version parameter, as the spec requires."""
    if max_content_length <= 0:
        raise ValueError("max_content_length must be a positive integer")
    return _without_empty(
        {
            "title": title,
            "description": description,
            "versions": list(TAXII_VERSIONS),
            "max_content_length": max_content_length,
        }
    )


def collection(found: Collection, *, can_read: bool, can_write: bool) -> dict[str, Any]:
    """§5.2.1: can_read / can_write are those of the requesting client."""
    return _without_empty(
        {
            "id": found.id,
            "title": found.title,
            "description": found.description,
            "alias": found.alias,
            "can_read": can_read,
            "can_write": can_write,
            "media_types": list(found.media_types),
        }
    )


def collections(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """§5.1.1: `{}` when there is none to show."""
    return {"collections": list(items)} if items else {}


def _page(more: bool, next_token: str | None) -> dict[str, Any]:
    if more and not next_token:
        # taxii2-client's as_pages() loops forever on `more` without `next`.
        raise ValueError("a page with more results needs a next token")
    page: dict[str, Any] = {"more": more}
    if more:
        page["next"] = next_token
    return page


def envelope(objects_json: Sequence[bytes], *, more: bool = False, next_token: str | None = None) -> bytes:
    """§5.4.1, serialised: `objects` are stored STIX JSON documents, sent unchanged."""
    head = orjson.dumps(_page(more, next_token))
    if not objects_json:
        return head
    return head[:-1] + b',"objects":[' + b",".join(objects_json) + b"]}"


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    id: str
    date_added: int  # µs
    version: str  # TAXII timestamp form of the STIX version
    media_type: str | None = None


def manifest(records: Sequence[ManifestRecord], *, more: bool = False, next_token: str | None = None) -> dict[str, Any]:
    """§5.3.1: one record per object version."""
    resource = _page(more, next_token)
    if records:
        resource["objects"] = [
            _without_empty(
                {
                    "id": record.id,
                    "date_added": micros_to_timestamp(record.date_added),
                    "version": record.version,
                    "media_type": record.media_type,
                }
            )
            for record in records
        ]
    return resource


def versions(version_list: Sequence[str], *, more: bool = False, next_token: str | None = None) -> dict[str, Any]:
    """§5.8.1."""
    resource = _page(more, next_token)
    if version_list:
        resource["versions"] = list(version_list)
    return resource


def status(
    status_id: str,
    *,
    complete: bool,
    request_timestamp: int | None,
    successes: Sequence[StatusDetail] = (),
    failures: Sequence[StatusDetail] = (),
    pendings: Sequence[StatusDetail] = (),
    list_successes: bool = True,
) -> dict[str, Any]:
    """§4.3.1; the counts are derived from the lists, so they always add up.
    `list_successes=False` leaves the list of successes out (it is optional), as
    `Prefer: return=minimal` asks; its count stays."""

    def details(items: Sequence[StatusDetail]) -> list[dict[str, Any]]:
        return [_without_empty({"id": d.id, "version": d.version, "message": d.message}) for d in items]

    return _without_empty(
        {
            "id": status_id,
            "status": "complete" if complete else "pending",
            "request_timestamp": None if request_timestamp is None else micros_to_timestamp(request_timestamp),
            "total_count": len(successes) + len(failures) + len(pendings),
            "success_count": len(successes),
            "successes": details(successes) if list_successes else [],
            "failure_count": len(failures),
            "failures": details(failures),
            "pending_count": len(pendings),
            "pendings": details(pendings),
        }
    )


def error(
    title: str,
    *,
    http_status: int,
    description: str | None = None,
    error_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """§3.6.1; `http_status` is a string equal to the response's status code."""
    return _without_empty(
        {
            "title": title,
            "description": description,
            "error_code": error_code,
            "http_status": str(http_status),
            "details": details or None,
        }
    )
