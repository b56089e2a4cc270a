"""The TAXII 2.1 server, in process: every endpoint, its errors, rights and paging."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.taxii.support import (
    ACCEPT,
    POST_HEADERS,
    Served,
    basic,
    bearer,
    indicator,
    malware,
)
from threatmesh.auth import hash_key, new_api_key
from threatmesh.store.protocol import Account, ApiRoot, Collection
from threatmesh.taxii.media import TAXII_MEDIA_TYPE
from threatmesh.web.app import create_app


def new_collection(served: Served, *, public: bool = False, api_root: str = "default") -> Collection:
    return served.node.store.add_collection(
        Collection(id=str(uuid.uuid4()), title=f"c-{uuid.uuid4().hex[:6]}", api_root=api_root, public=public)
    )


def new_account(served: Served, name: str, collection: Collection | None = None, *, read: bool = False,
                write: bool = False) -> str:
    key = new_api_key()
    served.node.store.add_account(Account(name=name, key_hash=hash_key(key)))
    if collection is not None and (read or write):
        served.node.store.grant(name, collection.id, read=read, write=write)
    return key


def assert_taxii_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE
    body = response.json()
    assert body["title"] and body["http_status"] == str(status)
    return body


def ids_of(body: dict[str, Any]) -> list[str]:
    return [o["id"] for o in body.get("objects", [])]


# -- discovery, api root, media types ------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    ["application/taxii+json;version=2.1", "application/taxii+json", "application/taxii+json; version=2.1",
     "text/html;q=0.9, application/taxii+json;q=0.5"],
)
def test_discovery_accepts_every_taxii_form(served: Served, accept: str) -> None:
    response = served.client.get("/taxii2/", headers={**served.admin, "Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE
    body = response.json()
    assert body["title"] == "test node"
    assert body["default"] == "/taxii2/default/" and body["api_roots"] == ["/taxii2/default/"]


@pytest.mark.parametrize("accept", ["", "application/foo", "application/taxii+json;version=2.0"])
def test_other_accept_gets_406_in_taxii_json(served: Served, accept: str) -> None:
    assert_taxii_error(served.client.get("/taxii2/", headers={**served.admin, "Accept": accept}), 406)


def test_no_user_agent_is_fine(served: Served) -> None:
    response = served.client.get("/taxii2/", headers={**served.admin, "User-Agent": ""})
    assert response.status_code == 200


def test_api_root_resource(served: Served) -> None:
    body = served.client.get("/taxii2/default/", headers=served.admin).json()
    assert body["versions"] == ["application/taxii+json;version=2.1"]
    assert body["max_content_length"] == 1_000_000 and body["title"]
    assert_taxii_error(served.client.get("/taxii2/nope/", headers=served.admin), 404)


def test_several_api_roots_each_with_their_collections(served: Served) -> None:
    served.node.store.add_api_root(ApiRoot("trusted", "Trusted partners", max_content_length=5000))
    other = new_collection(served, api_root="trusted")
    discovery = served.client.get("/taxii2/", headers=served.admin).json()
    assert discovery["api_roots"] == ["/taxii2/default/", "/taxii2/trusted/"]
    assert served.client.get("/taxii2/trusted/", headers=served.admin).json()["max_content_length"] == 5000
    listed = served.client.get("/taxii2/trusted/collections/", headers=served.admin).json()
    assert [c["id"] for c in listed["collections"]] == [other.id]
    # A collection is only reachable under its own API root.
    assert_taxii_error(served.client.get(f"/taxii2/default/collections/{other.id}/", headers=served.admin), 404)


# -- authentication --------------------------------------------------------------


def test_missing_or_wrong_credentials_get_401_with_challenge(served: Served) -> None:
    for headers in (ACCEPT, bearer("tm_wrong"), basic("tm_wrong"), {**ACCEPT, "Authorization": "Digest x"}):
        for path in ("/taxii2/", "/taxii2/default/", "/taxii2/default/collections/", served.url("objects/")):
            response = served.client.get(path, headers=headers)
            assert_taxii_error(response, 401)
            assert "Bearer" in response.headers["www-authenticate"]
            assert "Basic" in response.headers["www-authenticate"]


def test_basic_with_the_key_as_password(served: Served) -> None:
    assert served.client.get("/taxii2/", headers=basic(served.admin_key, "admin")).status_code == 200


def test_revoked_account_is_refused(served: Served) -> None:
    c = new_collection(served)
    key = new_account(served, "gone", c, read=True)
    assert served.client.get(served.url("", c), headers=bearer(key)).status_code == 200
    served.node.store.revoke_account("gone")
    assert_taxii_error(served.client.get(served.url("", c), headers=bearer(key)), 401)


# -- collections and rights ----------------------------------------------------------


def test_collections_sorted_and_per_account_rights(served: Served) -> None:
    a, b, hidden = new_collection(served), new_collection(served), new_collection(served)
    key = new_account(served, "peer", a, read=True)
    served.node.store.grant("peer", b.id, read=False, write=True)
    body = served.client.get("/taxii2/default/collections/", headers=bearer(key)).json()
    assert [c["id"] for c in body["collections"]] == sorted([a.id, b.id])
    rights = {c["id"]: (c["can_read"], c["can_write"]) for c in body["collections"]}
    assert rights == {a.id: (True, False), b.id: (False, True)}
    admin_view = served.client.get("/taxii2/default/collections/", headers=served.admin).json()
    ids = [c["id"] for c in admin_view["collections"]]
    assert ids == sorted(ids) and hidden.id in ids
    one = served.client.get(served.url("", a), headers=bearer(key)).json()
    assert one == {"id": a.id, "title": a.title, "can_read": True, "can_write": False,
                   "media_types": ["application/stix+json;version=2.1"]}
    assert_taxii_error(served.client.get(served.url("", hidden), headers=bearer(key)), 404)


def test_account_without_any_collection_sees_empty_collections(served: Served) -> None:
    key = new_account(served, "lonely")
    response = served.client.get("/taxii2/default/collections/", headers=bearer(key))
    assert response.status_code == 200 and response.json() == {}


def test_collection_by_alias(served: Served) -> None:
    body = served.client.get("/taxii2/default/collections/default/", headers=served.admin).json()
    assert body["id"] == served.collection.id and body["alias"] == "default"


def test_read_write_matrix(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(1), indicator(2)], collection=c)
    keys = {
        (r, w): new_account(served, f"acct-{int(r)}{int(w)}", c, read=r, write=w)
        for r in (False, True) for w in (False, True)
    }
    obj_url = served.url(f"objects/{indicator(1)['id']}/", c)
    expected_get = {(False, False): 404, (False, True): 403, (True, False): 200, (True, True): 200}
    expected_post = {(False, False): 404, (False, True): 202, (True, False): 403, (True, True): 202}
    expected_delete = {(False, False): 404, (False, True): 403, (True, False): 403}
    for rights, key in keys.items():
        assert served.client.get(served.url("objects/", c), headers=bearer(key)).status_code == expected_get[rights]
        assert served.client.get(served.url("manifest/", c), headers=bearer(key)).status_code == expected_get[rights]
        posted = served.client.post(served.url("objects/", c), headers={**POST_HEADERS, "Authorization": f"Bearer {key}"},
                                    json={"objects": [indicator(9)]})
        assert posted.status_code == expected_post[rights]
        if rights in expected_delete:
            assert_taxii_error(served.client.delete(obj_url, headers=bearer(key)), expected_delete[rights])
    assert served.client.delete(obj_url, headers=bearer(keys[(True, True)])).status_code == 200


def test_public_collection_anonymous_read_clear_only(served: Served) -> None:
    public = new_collection(served, public=True)
    served.post([indicator(1, tlp="clear"), indicator(2, tlp="green"), indicator(3, tlp=None)], collection=public)
    assert served.client.get("/taxii2/", headers=ACCEPT).status_code == 200
    listed = served.client.get("/taxii2/default/collections/", headers=ACCEPT).json()
    assert [c["id"] for c in listed["collections"]] == [public.id]
    assert listed["collections"][0]["can_write"] is False
    body = served.client.get(served.url("objects/", public), headers=ACCEPT).json()
    assert ids_of(body) == [indicator(1)["id"]]
    assert_taxii_error(served.client.get(served.url(f"objects/{indicator(2)['id']}/", public), headers=ACCEPT), 404)
    posted = served.client.post(served.url("objects/", public), headers=POST_HEADERS, json={"objects": [indicator(4)]})
    assert_taxii_error(posted, 401)
    # A private collection stays invisible to anonymous callers.
    assert_taxii_error(served.client.get(served.url("objects/"), headers=ACCEPT), 401)


def test_peer_account_gets_only_what_tlp_allows(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(n, tlp=tlp) for n, tlp in enumerate(["clear", "red", "amber", "clear", None, "clear"])],
                collection=c)
    key = new_account(served, "partner", c, read=True)
    body = served.client.get(served.url("objects/", c) + "?limit=2", headers=bearer(key)).json()
    # The page is filled past the withheld objects, and paging still ends.
    assert ids_of(body) == [indicator(0)["id"], indicator(3)["id"]]
    assert body["more"] is True
    rest = served.client.get(served.url("objects/", c) + f"?limit=2&next={body['next']}", headers=bearer(key)).json()
    assert ids_of(rest) == [indicator(5)["id"]] and rest["more"] is False
    manifest = served.client.get(served.url("manifest/", c), headers=bearer(key)).json()
    assert [r["id"] for r in manifest["objects"]] == [indicator(n)["id"] for n in (0, 3, 5)]


# -- POST ------------------------------------------------------------------------------


def test_post_returns_a_true_status(served: Served) -> None:
    c = new_collection(served)
    good, other = indicator(1), malware(2)
    bad = {"type": "indicator", "id": "indicator--not-a-uuid"}
    status = served.post([good, bad, other, good, "not an object"], collection=c)
    assert status["status"] == "complete"
    assert (status["total_count"], status["success_count"], status["failure_count"], status["pending_count"]) == (
        5, 3, 2, 0)
    assert [s["id"] for s in status["successes"]] == [good["id"], other["id"], good["id"]]
    assert all(s["version"] == good["modified"] for s in status["successes"][::2])
    failures = {f["id"]: f for f in status["failures"]}
    assert set(failures) == {"indicator--not-a-uuid", "objects[4]"}
    assert all(f["message"] for f in failures.values())
    assert "pendings" not in status
    again = served.client.get(f"/taxii2/default/status/{status['id']}/", headers=served.admin).json()
    assert again == status


def test_post_of_an_exact_duplicate_is_a_success(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(1)], collection=c)
    status = served.post([indicator(1)], collection=c)
    assert status["success_count"] == 1 and status["failure_count"] == 0
    changed = indicator(1, name="same version, other content")
    status = served.post([changed], collection=c)
    assert status["failure_count"] == 1 and "already stored" in status["failures"][0]["message"]


def test_post_empty_envelope(served: Served) -> None:
    status = served.post([])
    assert status["total_count"] == 0 and status["status"] == "complete"


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "application/taxii+json;version=2.0"])
def test_post_other_content_types_get_415(served: Served, content_type: str | None) -> None:
    headers = {**served.admin}
    if content_type:
        headers["Content-Type"] = content_type
    response = served.client.post(served.url("objects/"), headers=headers, content=b'{"objects": []}')
    assert_taxii_error(response, 415)


@pytest.mark.parametrize("content_type", ["application/taxii+json", "application/taxii+json;version=2.1",
                                          "application/taxii+json; version=2.1; charset=utf-8"])
def test_post_taxii_content_types_are_read(served: Served, content_type: str) -> None:
    headers = {**served.admin, "Content-Type": content_type}
    response = served.client.post(served.url("objects/"), headers=headers, content=b'{"objects": []}')
    assert response.status_code == 202


@pytest.mark.parametrize(("body", "status"), [(b"{not json", 400), (b"\xff\xfe", 400), (b"[]", 422),
                                              (b'{"objects": {}}', 422), (b'"text"', 422)])
def test_post_unreadable_bodies(served: Served, body: bytes, status: int) -> None:
    response = served.client.post(served.url("objects/"), headers={**served.admin, **POST_HEADERS}, content=body)
    assert_taxii_error(response, status)


def test_post_larger_than_max_content_length_gets_413(served: Served) -> None:
    headers = {**served.admin, **POST_HEADERS}
    limit = served.node.settings.max_content_length
    big = b'{"objects": [], "pad": "' + b"x" * limit + b'"}'
    assert_taxii_error(served.client.post(served.url("objects/"), headers=headers, content=big), 413)

    def chunks() -> Any:  # no Content-Length: the stream itself is cut at the limit
        yield b'{"objects": [], "pad": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    assert_taxii_error(served.client.post(served.url("objects/"), headers=headers, content=chunks()), 413)
    # Just under the limit is served.
    fits = b'{"objects": [], "pad": "' + b"x" * (limit - 100) + b'"}'
    assert served.client.post(served.url("objects/"), headers=headers, content=fits).status_code == 202


# -- GET objects, filters, headers -------------------------------------------------------


def test_objects_sorted_with_date_added_headers(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(3), indicator(1)], collection=c)
    served.post([indicator(2)], collection=c)
    response = served.client.get(served.url("objects/", c), headers=served.admin)
    assert response.status_code == 200
    assert ids_of(response.json()) == [indicator(n)["id"] for n in (3, 1, 2)]
    manifest = served.client.get(served.url("manifest/", c), headers=served.admin)
    dates = [r["date_added"] for r in manifest.json()["objects"]]
    assert dates == sorted(dates) and len(set(dates)) == 3
    for r in (response, manifest):
        assert r.headers["x-taxii-date-added-first"] == dates[0]
        assert r.headers["x-taxii-date-added-last"] == dates[-1]
    empty = served.client.get(served.url("objects/", c) + "?match[type]=malware", headers=served.admin)
    assert empty.json() == {"more": False} and "x-taxii-date-added-first" not in empty.headers


def test_objects_returned_byte_for_byte(served: Served) -> None:
    c = new_collection(served)
    obj = indicator(1, x_custom={"b": 1, "a": [1.5, "é"]})
    served.post([obj], collection=c)
    body = served.client.get(served.url("objects/", c), headers=served.admin).json()
    assert body["objects"] == [obj]


def test_version_filters(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(1, 1), indicator(1, 2), indicator(1, 3), malware(2, 1)], collection=c)
    get = lambda q: served.client.get(served.url("objects/", c) + q, headers=served.admin).json()  # noqa: E731
    modified = lambda body: sorted(o["modified"] for o in body.get("objects", []))  # noqa: E731
    assert modified(get("?match[id]=" + indicator(1)["id"])) == [indicator(1, 3)["modified"]]
    assert modified(get("?match[version]=first&match[type]=indicator")) == [indicator(1, 1)["modified"]]
    assert len(get("?match[version]=all")["objects"]) == 4
    assert modified(get("?match[version]=first,last&match[type]=indicator")) == [
        indicator(1, 1)["modified"], indicator(1, 3)["modified"]]
    assert modified(get(f"?match[version]={indicator(1, 2)['modified']}")) == [indicator(1, 2)["modified"]]
    assert get("?match[spec_version]=2.0") == {"more": False}
    one = served.client.get(served.url(f"objects/{indicator(1)['id']}/", c), headers=served.admin).json()
    assert modified(one) == [indicator(1, 3)["modified"]]
    versions = served.client.get(served.url(f"objects/{indicator(1)['id']}/versions/", c), headers=served.admin)
    assert versions.json()["versions"] == [indicator(1, v)["modified"] for v in (1, 2, 3)]
    assert "x-taxii-date-added-last" in versions.headers
    manifest = served.client.get(served.url("manifest/", c) + "?match[version]=all", headers=served.admin).json()
    assert len(manifest["objects"]) == 4 and all(r["media_type"] for r in manifest["objects"])


@pytest.mark.parametrize(
    ("query", "param"),
    [("added_after=soon", "added_after"), ("limit=0", "limit"), ("limit=x", "limit"),
     ("match[version]=newest", "match[version]"), ("match[version]=all,first", "match[version]"),
     ("match[id]=nope", "match[id]"), ("next=garbage", "next"), ("limit=1&limit=2", "limit")],
)
def test_malformed_parameters_get_400_naming_them(served: Served, query: str, param: str) -> None:
    for path in ("objects/", "manifest/"):
        body = assert_taxii_error(served.client.get(served.url(path) + "?" + query, headers=served.admin), 400)
        assert body["details"] == {"parameter": param}
        assert param in body["description"]


def test_object_endpoints_404_for_unknown_objects(served: Served) -> None:
    missing = indicator(999)["id"]
    for path in (f"objects/{missing}/", f"objects/{missing}/versions/"):
        assert_taxii_error(served.client.get(served.url(path), headers=served.admin), 404)
    assert_taxii_error(served.client.delete(served.url(f"objects/{missing}/"), headers=served.admin), 404)
    assert_taxii_error(served.client.get(served.url(f"objects/{indicator(1)['id']}/"), headers=served.admin), 404)


def test_delete_removes_from_listings(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(1, 1), indicator(1, 2), indicator(2)], collection=c)
    url = served.url(f"objects/{indicator(1)['id']}/", c)
    response = served.client.delete(url + f"?match[version]={indicator(1, 2)['modified']}", headers=served.admin)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE
    # The older version is now the last one.
    left = served.client.get(url, headers=served.admin).json()
    assert [o["modified"] for o in left["objects"]] == [indicator(1, 1)["modified"]]
    assert served.client.delete(url, headers=served.admin).status_code == 200
    assert_taxii_error(served.client.get(url, headers=served.admin), 404)
    listed = served.client.get(served.url("manifest/", c) + "?match[version]=all", headers=served.admin).json()
    assert [r["id"] for r in listed["objects"]] == [indicator(2)["id"]]


def test_status_is_private_to_its_account(served: Served) -> None:
    c = new_collection(served)
    key = new_account(served, "writer", c, read=True, write=True)
    status = served.post([indicator(1)], key=key, collection=c)
    url = f"/taxii2/default/status/{status['id']}/"
    assert served.client.get(url, headers=bearer(key)).json()["id"] == status["id"]
    assert served.client.get(url, headers=served.admin).status_code == 200
    other = new_account(served, "other", c, read=True, write=True)
    assert_taxii_error(served.client.get(url, headers=bearer(other)), 404)
    assert_taxii_error(served.client.get(f"/taxii2/default/status/{uuid.uuid4()}/", headers=served.admin), 404)


# -- pagination ---------------------------------------------------------------------------


def walk_next(served: Served, c: Collection, limit: int, path: str = "objects/", extra: str = "",
              key: str | None = None) -> tuple[list[str], int]:
    headers = bearer(key) if key else served.admin
    seen: list[str] = []
    pages = 0
    body = served.client.get(served.url(path, c) + f"?limit={limit}{extra}", headers=headers).json()
    while True:
        pages += 1
        seen += ids_of(body)
        assert len(body.get("objects", [])) <= limit
        if not body.get("more"):
            return seen, pages
        assert body["next"]
        body = served.client.get(served.url(path, c) + f"?limit={limit}&next={body['next']}{extra}",
                                 headers=headers).json()


def walk_added_after(served: Served, c: Collection, limit: int) -> list[str]:
    seen: list[str] = []
    query = f"?limit={limit}"
    while True:
        response = served.client.get(served.url("objects/", c) + query, headers=served.admin)
        seen += ids_of(response.json())
        if not response.json().get("more"):
            return seen
        query = f"?limit={limit}&added_after={response.headers['x-taxii-date-added-last']}"


def test_thousand_objects_in_one_post_paged_by_next_and_added_after(served: Served) -> None:
    c = new_collection(served)
    objects = [indicator(n) for n in range(1000)]
    status = served.post(objects, collection=c)
    assert status["success_count"] == 1000
    expected = [o["id"] for o in objects]
    by_next, pages = walk_next(served, c, 100)
    assert by_next == expected and pages == 10
    by_added_after = walk_added_after(served, c, 100)
    assert by_added_after == expected
    assert len(set(by_next)) == 1000


def test_paging_while_objects_and_versions_arrive(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(n) for n in range(30)], collection=c)
    first = served.client.get(served.url("objects/", c) + "?limit=10", headers=served.admin).json()
    seen = ids_of(first)
    # New objects, and a new version of one already seen and one not yet seen.
    served.post([indicator(100), indicator(101), indicator(2, 5), indicator(25, 5)], collection=c)
    body = first
    while body.get("more"):
        body = served.client.get(served.url("objects/", c) + f"?limit=10&next={body['next']}",
                                 headers=served.admin).json()
        seen += ids_of(body)
    expected_new = {indicator(n)["id"] for n in (100, 101, 2, 25)}
    assert set(seen) == {indicator(n)["id"] for n in range(30)} | expected_new
    # Only the object whose new version arrived after it was seen comes twice (as its new version).
    assert len(seen) == len(set(seen)) + 1 and seen.count(indicator(2)["id"]) == 2


def test_next_without_limit_and_with_another_limit(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(n) for n in range(12)], collection=c)
    first = served.client.get(served.url("objects/", c) + "?limit=5", headers=served.admin).json()
    rest = served.client.get(served.url("objects/", c) + f"?next={first['next']}", headers=served.admin).json()
    assert ids_of(first) + ids_of(rest) == [indicator(n)["id"] for n in range(12)]
    assert rest["more"] is False


def test_next_is_bound_to_query_and_caller(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(n) for n in range(4)] + [malware(n) for n in range(4)], collection=c)
    token = served.client.get(served.url("objects/", c) + "?limit=2&match[type]=indicator",
                              headers=served.admin).json()["next"]
    other_query = served.client.get(served.url("objects/", c) + f"?limit=2&match[type]=malware&next={token}",
                                    headers=served.admin)
    assert assert_taxii_error(other_query, 400)["details"] == {"parameter": "next"}
    key = new_account(served, "reader", c, read=True)
    other_caller = served.client.get(served.url("objects/", c) + f"?limit=2&match[type]=indicator&next={token}",
                                     headers=bearer(key))
    assert_taxii_error(other_caller, 400)
    other_endpoint = served.client.get(served.url("manifest/", c) + f"?limit=2&match[type]=indicator&next={token}",
                                       headers=served.admin)
    assert_taxii_error(other_endpoint, 400)


def test_next_survives_a_restart(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(n) for n in range(6)], collection=c)
    token = served.client.get(served.url("objects/", c) + "?limit=3", headers=served.admin).json()["next"]
    from starlette.testclient import TestClient

    restarted = TestClient(create_app(served.node.settings, served.node.store))
    body = restarted.get(served.url("objects/", c) + f"?limit=3&next={token}", headers=served.admin).json()
    assert ids_of(body) == [indicator(n)["id"] for n in range(3, 6)]


def test_manifest_and_versions_paginate_with_next(served: Served) -> None:
    c = new_collection(served)
    served.post([indicator(1, v) for v in range(7)], collection=c)
    seen, pages = walk_next(served, c, 3, "manifest/", "&match[version]=all")
    assert pages == 3
    versions: list[str] = []
    url = served.url(f"objects/{indicator(1)['id']}/versions/", c)
    body = served.client.get(url + "?limit=3", headers=served.admin).json()
    versions += body["versions"]
    while body.get("more"):
        body = served.client.get(url + f"?limit=3&next={body['next']}", headers=served.admin).json()
        versions += body["versions"]
    assert versions == [indicator(1, v)["modified"] for v in range(7)]


# -- errors are always TAXII JSON ------------------------------------------------------------


def test_unknown_paths_and_methods_answer_taxii_json(served: Served) -> None:
    assert_taxii_error(served.client.get("/taxii2/default/nothing/here/", headers=served.admin), 404)
    response = served.client.put(served.url("objects/"), headers=served.admin, content=b"{}")
    assert_taxii_error(response, 405)
    assert "POST" in response.headers["allow"]
    assert_taxii_error(served.client.post("/taxii2/", headers=served.admin), 405)


def test_an_internal_failure_is_a_taxii_500(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(served.node.store, "query_rows", broken)  # what GET objects reads
    body = assert_taxii_error(served.client.get(served.url("objects/"), headers=served.admin), 500)
    assert "fire" not in orjson.dumps(body).decode()


def test_every_request_is_audited(served: Served) -> None:
    c = new_collection(served)
    key = new_account(served, "auditee", c, read=True, write=True)
    served.post([indicator(1), indicator(2)], key=key, collection=c)
    served.client.get(served.url("objects/", c), headers=bearer(key))
    served.client.get(served.url("objects/", c), headers=ACCEPT)
    log = served.node.store.audit_log(account="auditee")
    assert [(e.method, e.status, e.objects) for e in log] == [("GET", 200, 2), ("POST", 202, 2)]
    assert log[0].endpoint == served.url("objects/", c)
    anonymous = served.node.store.audit_log(limit=1)[0]
    assert anonymous.account is None and anonymous.status == 401


def test_openapi_describes_every_route(served: Served) -> None:
    spec = served.client.get("/taxii2/openapi.json").json()
    from threatmesh.taxii.server import taxii_routes

    described = set(spec["paths"])
    for route in taxii_routes(served.node.settings, served.node.store):
        path = getattr(route, "path", "")
        if "{rest:path}" in path or path.endswith("openapi.json"):
            continue
        templated = path.replace("{api_root}", "{api_root}")
        assert templated in described, path
