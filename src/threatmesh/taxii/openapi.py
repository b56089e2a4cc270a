"""An OpenAPI 3.1 description of the TAXII 2.1 API this node serves.

Generated from Python rather than kept as a JSON file, so that it follows the
routes and limits of the running node (the test suite checks that every route
of the server is described, and schemathesis drives the live server from it).
Served at `/taxii2/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from threatmesh.taxii.media import STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE

PREFIX = "/taxii2"

_TIMESTAMP = {
    "type": "string",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$",
}
_STIX_TIMESTAMP = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"}
_IDENTIFIER = {"type": "string", "format": "uuid"}
_STIX_ID = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]+[a-z0-9]--[0-9a-fA-F-]{36}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 1}


_SCHEMAS: dict[str, Any] = {
    "discovery": {
        "type": "object",
        "required": ["title"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "contact": {"type": "string"},
            "default": {"type": "string"},
            "api_roots": _list_of({"type": "string"}),
        },
    },
    "api-root": {
        "type": "object",
        "required": ["title", "versions", "max_content_length"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "versions": _list_of({"type": "string", "const": TAXII_MEDIA_TYPE}),
            "max_content_length": {"type": "integer", "minimum": 1},
        },
    },
    "status-details": {
        "type": "object",
        "required": ["id", "version"],
        "properties": {"id": {"type": "string"}, "version": {"type": "string"}, "message": {"type": "string"}},
    },
    "status": {
        "type": "object",
        "required": ["id", "status", "total_count", "success_count", "failure_count", "pending_count"],
        "properties": {
            "id": _IDENTIFIER,
            "status": {"type": "string", "enum": ["complete", "pending"]},
            "request_timestamp": _TIMESTAMP,
            "total_count": {"type": "integer", "minimum": 0},
            "success_count": {"type": "integer", "minimum": 0},
            "successes": _list_of(_ref("status-details")),
            "failure_count": {"type": "integer", "minimum": 0},
            "failures": _list_of(_ref("status-details")),
            "pending_count": {"type": "integer", "minimum": 0},
            "pendings": _list_of(_ref("status-details")),
        },
    },
    "collection": {
        "type": "object",
        "required": ["id", "title", "can_read", "can_write"],
        "properties": {
            "id": _IDENTIFIER,
            "title": {"type": "string"},
            "description": {"type": "string"},
            "alias": {"type": "string"},
            "can_read": {"type": "boolean"},
            "can_write": {"type": "boolean"},
            "media_types": _list_of({"type": "string"}),
        },
    },
    "collections": {
        "type": "object",
        "properties": {"collections": _list_of(_ref("collection"))},
    },
    "manifest-record": {
        "type": "object",
        "required": ["id", "date_added", "version"],
        "properties": {
            "id": _STIX_ID,
            "date_added": _TIMESTAMP,
            "version": {"type": "string"},
            "media_type": {"type": "string"},
        },
    },
    "manifest": {
        "type": "object",
        "properties": {
            "more": {"type": "boolean"},
            "next": {"type": "string"},
            "objects": _list_of(_ref("manifest-record")),
        },
    },
    "stix-object": {
        "type": "object",
        "required": ["type", "id"],
        "properties": {"type": {"type": "string"}, "id": _STIX_ID, "spec_version": {"type": "string"}},
        "additionalProperties": True,
    },
    "envelope": {
        "type": "object",
        "properties": {
            "more": {"type": "boolean"},
            "next": {"type": "string"},
            "objects": _list_of(_ref("stix-object")),
        },
    },
    "versions": {
        "type": "object",
        "properties": {
            "more": {"type": "boolean"},
            "next": {"type": "string"},
            "versions": _list_of({"type": "string"}),
        },
    },
    "error": {
        "type": "object",
        "required": ["title"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "error_id": {"type": "string"},
            "error_code": {"type": "string"},
            "http_status": {"type": "string"},
            "external_details": {"type": "string"},
            "details": {"type": "object"},
        },
    },
}


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema, "description": description}


_ACCEPT = _param(
    "Accept",
    "header",
    {"type": "string", "enum": [TAXII_MEDIA_TYPE, "application/taxii+json"]},
    "A TAXII media range (§3.1); q-values and lists are understood.",
    required=True,
)
_API_ROOT = _param("api_root", "path", {"type": "string", "pattern": "^[A-Za-z0-9_.~-]+$"}, "API root name")
_COLLECTION = _param("collection_id", "path", {"type": "string"}, "Collection id (UUID) or alias")
_OBJECT = _param("object_id", "path", _STIX_ID, "STIX id")
_STATUS = _param("status_id", "path", _IDENTIFIER, "Status id")

_FILTERS = {
    "added_after": _param("added_after", "query", _STIX_TIMESTAMP, "Only items added strictly after (§3.4)"),
    "limit": _param("limit", "query", {"type": "integer", "minimum": 1}, "Page size; capped by the server"),
    "next": _param("next", "query", {"type": "string"}, "Token from the previous page (same parameters)"),
    "match[id]": _param("match[id]", "query", {"type": "string"}, "STIX ids, comma-separated"),
    "match[type]": _param("match[type]", "query", {"type": "string"}, "STIX types, comma-separated"),
    "match[version]": _param(
        "match[version]", "query", {"type": "string"}, "first, last, all or timestamps, comma-separated"
    ),
    "match[spec_version]": _param(
        "match[spec_version]", "query", {"type": "string"}, "Spec versions such as 2.1, comma-separated"
    ),
}

_DATE_ADDED_HEADERS = {
    "X-TAXII-Date-Added-First": {"schema": _TIMESTAMP, "description": "date_added of the first item"},
    "X-TAXII-Date-Added-Last": {"schema": _TIMESTAMP, "description": "date_added of the last item"},
}


def _content(schema: str) -> dict[str, Any]:
    return {TAXII_MEDIA_TYPE: {"schema": _ref(schema)}}


def _responses(success_status: str, schema: str | None, failures: list[int], *, paged: bool = False) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if schema is not None:
        success["content"] = _content(schema)
    if paged:
        success["headers"] = _DATE_ADDED_HEADERS
    responses: dict[str, Any] = {success_status: success}
    for code in failures:
        responses[str(code)] = {"description": "TAXII error", "content": _content("error")}
    responses["500"] = {"description": "Server error", "content": _content("error")}
    return responses


def _op(summary: str, params: list[dict[str, Any]], responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "parameters": [_ACCEPT, *params], "responses": responses, **extra}


_COMMON_FAILURES = [400, 401, 403, 404, 406]


def openapi_spec(*, title: str = "threatmesh TAXII 2.1", version: str = "2.1") -> dict[str, Any]:
    """The OpenAPI document of every TAXII endpoint under `/taxii2/`."""
    root = PREFIX + "/{api_root}"
    collection = root + "/collections/{collection_id}"
    all_filters = list(_FILTERS.values())
    object_filters = [_FILTERS[n] for n in ("added_after", "limit", "next", "match[version]", "match[spec_version]")]
    version_filters = [_FILTERS[n] for n in ("added_after", "limit", "next", "match[spec_version]")]
    delete_filters = [_FILTERS[n] for n in ("match[version]", "match[spec_version]")]
    paths: dict[str, Any] = {
        PREFIX + "/": {"get": _op("Server discovery (§4.1)", [], _responses("200", "discovery", [401, 403, 404, 406]))},
        root + "/": {
            "get": _op("API root information (§4.2)", [_API_ROOT], _responses("200", "api-root", [401, 403, 404, 406]))
        },
        root + "/status/{status_id}/": {
            "get": _op("A status resource (§4.3)", [_API_ROOT, _STATUS], _responses("200", "status", [401, 403, 404, 406]))
        },
        root + "/collections/": {
            "get": _op("Collections (§5.1)", [_API_ROOT], _responses("200", "collections", _COMMON_FAILURES))
        },
        collection + "/": {
            "get": _op("One collection (§5.2)", [_API_ROOT, _COLLECTION], _responses("200", "collection", _COMMON_FAILURES))
        },
        collection + "/manifest/": {
            "get": _op(
                "Manifest of the collection (§5.3)",
                [_API_ROOT, _COLLECTION, *all_filters],
                _responses("200", "manifest", _COMMON_FAILURES, paged=True),
            )
        },
        collection + "/objects/": {
            "get": _op(
                "Objects of the collection (§5.4)",
                [_API_ROOT, _COLLECTION, *all_filters],
                _responses("200", "envelope", _COMMON_FAILURES, paged=True),
            ),
            "post": _op(
                "Add objects (§5.5)",
                [_API_ROOT, _COLLECTION],
                _responses("202", "status", [*_COMMON_FAILURES, 413, 415, 422]),
                requestBody={
                    "required": True,
                    "content": {
                        TAXII_MEDIA_TYPE: {"schema": _ref("envelope")},
                        STIX_MEDIA_TYPE: {"schema": _ref("envelope")},
                    },
                },
            ),
        },
        collection + "/objects/{object_id}/": {
            "get": _op(
                "One object, all matching versions (§5.6)",
                [_API_ROOT, _COLLECTION, _OBJECT, *object_filters],
                _responses("200", "envelope", _COMMON_FAILURES, paged=True),
            ),
            "delete": _op(
                "Delete an object (§5.7)",
                [_API_ROOT, _COLLECTION, _OBJECT, *delete_filters],
                _responses("200", None, _COMMON_FAILURES),
            ),
        },
        collection + "/objects/{object_id}/versions/": {
            "get": _op(
                "Versions of an object (§5.8)",
                [_API_ROOT, _COLLECTION, _OBJECT, *version_filters],
                _responses("200", "versions", _COMMON_FAILURES, paged=True),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "TAXII 2.1 (OASIS Standard, 10 June 2021). Every response is "
            f"{TAXII_MEDIA_TYPE}, errors included.",
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key"},
                "basic": {"type": "http", "scheme": "basic", "description": "Any user name; the API key as password"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}, {}],
    }
