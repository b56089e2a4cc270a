"""TAXII resource builders (TAXII 2.1 §3.6.1, §4, §5)."""

from __future__ import annotations

import orjson
import pytest

from threatmesh.store.protocol import Collection, StatusDetail
from threatmesh.taxii import resources


def test_discovery_omits_what_it_lacks_and_checks_urls() -> None:
    assert resources.discovery("node") == {"title": "node"}
    body = resources.discovery("node", default="/api/", api_roots=["/api/", "/trusted/"])
    assert body == {"title": "node", "default": "/api/", "api_roots": ["/api/", "/trusted/"]}
    with pytest.raises(ValueError):
        resources.discovery("node", default="/x/", api_roots=["/api/"])
    for bad in ("//evil/", "../up/", "api/", "/api/?x=1"):
        with pytest.raises(ValueError):
            resources.discovery("node", api_roots=[bad])


def test_api_root_lists_versions_with_the_parameter() -> None:
    body = resources.api_root("root", max_content_length=1024)
    assert body == {
        "title": "root",
        "versions": ["application/taxii+json;version=2.1"],
        "max_content_length": 1024,
    }
    with pytest.raises(ValueError):
        resources.api_root("root", max_content_length=0)


def test_collection_and_collections() -> None:
    c = Collection(id="91a7b528-80eb-42ed-a74d-c6fbd5a26116", title="t")
    body = resources.collection(c, can_read=True, can_write=False)
    assert body == {
        "id": c.id,
        "title": "t",
        "can_read": True,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
    }
    assert resources.collections([]) == {}
    assert resources.collections([body]) == {"collections": [body]}


def test_envelope_splices_stored_json_unchanged() -> None:
    stored = [b'{"type":"x-a","id":"x-a--1","z":1,"a":2}', b'{"id":"x-b--2", "type":"x-b"}']
    raw = resources.envelope(stored, more=True, next_token="tok")
    assert orjson.loads(raw) == {"more": True, "next": "tok", "objects": [orjson.loads(s) for s in stored]}
    assert stored[1] in raw  # not re-serialised
    assert orjson.loads(resources.envelope([])) == {"more": False}
    with pytest.raises(ValueError):
        resources.envelope(stored, more=True)


def test_manifest_and_versions_pages() -> None:
    record = resources.ManifestRecord("indicator--1", 1_000_000, "2020-01-01T00:00:00.000Z", "application/stix+json;version=2.1")
    body = resources.manifest([record], more=True, next_token="n")
    assert body == {
        "more": True,
        "next": "n",
        "objects": [
            {
                "id": "indicator--1",
                "date_added": "1970-01-01T00:00:01.000000Z",
                "version": "2020-01-01T00:00:00.000Z",
                "media_type": "application/stix+json;version=2.1",
            }
        ],
    }
    assert resources.manifest([]) == {"more": False}
    assert resources.versions(["a", "b"]) == {"more": False, "versions": ["a", "b"]}
    assert resources.versions([]) == {"more": False}


def test_status_counts_come_from_the_lists_and_empty_lists_are_omitted() -> None:
    ok = StatusDetail("indicator--1", "2020-01-01T00:00:00.000Z")
    bad = StatusDetail("indicator--2", "2020-01-01T00:00:00.000Z", "no pattern")
    body = resources.status("s1", complete=True, request_timestamp=0, successes=[ok], failures=[bad])
    assert body == {
        "id": "s1",
        "status": "complete",
        "request_timestamp": "1970-01-01T00:00:00.000000Z",
        "total_count": 2,
        "success_count": 1,
        "successes": [{"id": "indicator--1", "version": "2020-01-01T00:00:00.000Z"}],
        "failure_count": 1,
        "failures": [{"id": "indicator--2", "version": "2020-01-01T00:00:00.000Z", "message": "no pattern"}],
        "pending_count": 0,
    }


def test_error_http_status_is_a_string() -> None:
    assert resources.error("Not Found", http_status=404) == {"title": "Not Found", "http_status": "404"}
    body = resources.error("Bad", http_status=400, description="d", details={"parameter": "limit"})
    assert body["details"] == {"parameter": "limit"} and body["http_status"] == "400"
