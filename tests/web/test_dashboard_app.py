"""The dashboard in-process (Starlette's TestClient): sessions, redirects, and the egress rule."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from tests.web.dashboard_data import CLEAR_INCIDENT_NAME, RED_INCIDENT_NAME, DashboardNode, build_node
from threatmesh.auth import hash_key, new_api_key
from threatmesh.store.protocol import Account, Peer
from threatmesh.web.app import create_app
from threatmesh.web.dashboard.session import (
    SESSION_COOKIE,
    issue_token,
    node_secret,
    read_claims,
    verify_token,
)
from threatmesh.web.dashboard.view import SnapshotCache, Viewer

BASE = "http://127.0.0.1:8470"
PAGES = ["/ui/", "/ui/search?q=heron", "/ui/object/incident--d45b0a4d-0000-4000-8000-000000000015",
         "/ui/actor/intrusion-set--d23f0824-128b-4f33-8c5c-7fd0a6a3a450"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardNode]:
    built = build_node(tmp_path_factory.mktemp("dashboard-app") / "node")
    yield built
    built.node.close()


def _client(data: DashboardNode) -> TestClient:
    return TestClient(create_app(data.node.settings, data.node.store), base_url=BASE)


def _signed_in(data: DashboardNode, key: str) -> TestClient:
    client = _client(data)
    answer = client.post("/ui/login", data={"api_key": key}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_strangers_to_the_login_form(data: DashboardNode, path: str) -> None:
    answer = _client(data).get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login?next=")
    login = _client(data).get(answer.headers["location"])
    assert login.status_code == 200 and 'name="api_key"' in login.text


def test_root_goes_to_the_dashboard(data: DashboardNode) -> None:
    answer = _client(data).get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/ui/"


def test_login_sets_a_signed_httponly_strict_cookie_not_the_key(data: DashboardNode) -> None:
    client = _client(data)
    answer = client.post("/ui/login", data={"api_key": data.admin_key, "next": "/ui/search?q=x"},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/search?q=x"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/ui" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert data.admin_key not in token and hash_key(data.admin_key) not in token
    claims = read_claims(token)
    assert claims is not None and claims.account == "admin"
    assert client.get("/ui/").status_code == 200


def test_a_wrong_key_is_refused_and_audited(data: DashboardNode) -> None:
    answer = _client(data).post("/ui/login", data={"api_key": new_api_key()}, follow_redirects=False)
    assert answer.status_code == 401 and "set-cookie" not in answer.headers
    assert "not valid" in answer.text


def test_login_never_redirects_off_the_dashboard(data: DashboardNode) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/taxii2/", "/ui\\..\\x"):
        answer = _client(data).post("/ui/login", data={"api_key": data.admin_key, "next": target},
                                    follow_redirects=False)
        assert answer.headers["location"] == "/ui/", target


def test_a_cross_site_login_post_is_refused(data: DashboardNode) -> None:
    answer = _client(data).post("/ui/login", data={"api_key": data.admin_key},
                                headers={"origin": "http://evil.example"}, follow_redirects=False)
    assert answer.status_code == 400 and "set-cookie" not in answer.headers


def test_forged_expired_and_logged_out_tokens_open_nothing(data: DashboardNode) -> None:
    store = data.node.store
    secret = node_secret(store)
    admin = next(a for a in store.list_accounts() if a.name == "admin")
    good = issue_token(secret, admin, 0)
    assert verify_token(secret, good, store) == admin
    payload, mac = good.split(".")
    # Claim another account with the admin's MAC; sign with another secret; expire; garble.
    other_payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert verify_token(secret, f"{other_payload}.{mac}", store) is None
    assert verify_token(b"x" * 32, good, store) is None
    assert verify_token(secret, issue_token(secret, admin, 0, now=time.time() - 9 * 3600), store) is None
    assert verify_token(secret, "garbage", store) is None

    client = _signed_in(data, data.admin_key)
    token = client.cookies[SESSION_COOKIE]
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    assert client.post("/ui/logout", follow_redirects=False).status_code == 303
    replay = _client(data)
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/ui/", follow_redirects=False).status_code == 303, "a logged-out token still works"


def test_a_revoked_account_loses_its_session(tmp_path: Path) -> None:
    built = build_node(tmp_path / "node")
    try:
        client = _signed_in(built, built.reader_key)
        assert client.get("/ui/", follow_redirects=False).status_code == 200
        built.node.store.revoke_account("reader")
        assert client.get("/ui/", follow_redirects=False).status_code == 303
    finally:
        built.node.close()


def test_pages_carry_a_strict_content_security_policy(data: DashboardNode) -> None:
    client = _signed_in(data, data.admin_key)
    for path in ("/ui/", "/ui/static/dashboard.css", "/ui/login"):
        policy = client.get(path).headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy, path
    page = client.get("/ui/").text
    # Nothing is fetched from another host: every src and href is local or an in-page anchor.
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "#")), url


# -- the egress rule -----------------------------------------------------------------------


def test_admin_sees_tlp_red(data: DashboardNode) -> None:
    client = _signed_in(data, data.admin_key)
    assert RED_INCIDENT_NAME in client.get(f"/ui/object/{data.red_incident_id}").text
    assert RED_INCIDENT_NAME in client.get("/ui/search", params={"q": "Crimson"}).text
    assert "TLP:RED" in client.get("/ui/").text


def test_non_admin_never_sees_tlp_red(data: DashboardNode) -> None:
    client = _signed_in(data, data.reader_key)
    red = client.get(f"/ui/object/{data.red_incident_id}")
    assert red.status_code == 404 and RED_INCIDENT_NAME not in red.text
    # The same answer as for an id that does not exist: the page is no oracle.
    missing = client.get("/ui/object/incident--00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.text == red.text
    assert RED_INCIDENT_NAME not in client.get("/ui/search", params={"q": "Crimson"}).text
    assert RED_INCIDENT_NAME not in client.get(f"/ui/actor/{data.actor_id}").text
    assert RED_INCIDENT_NAME not in client.get(f"/ui/object/{data.actor_id}").text
    assert CLEAR_INCIDENT_NAME in client.get(f"/ui/actor/{data.actor_id}").text
    overview = client.get("/ui/").text
    assert "TLP:RED" not in overview and "TLP:AMBER" not in overview
    # Every version list, neighbour and search result a reader gets is TLP:CLEAR (a partner
    # cleared for nothing), so no other badge appears anywhere.
    search = client.get("/ui/search", params={"q": "infrastructure"}).text
    assert set(re.findall(r'class="tlp tlp-([a-z-]+)"', search)) == {"clear"}


def test_the_view_follows_the_accounts_clearance(data: DashboardNode) -> None:
    """A peer-bound account cleared for AMBER sees AMBER (the policy decides), never RED."""
    store = data.node.store
    key = new_api_key()
    store.add_account(Account("ally", hash_key(key)))
    store.add_peer(Peer(name="ally", url="https://ally.example/taxii2/", account="ally", cleared_for=("amber",)))
    settings, cache = data.node.settings, SnapshotCache()
    accounts = {a.name: a for a in store.list_accounts()}
    views = {name: Viewer.for_account(accounts[name], store, settings, cache).snapshot()
             for name in ("admin", "reader", "ally")}
    assert views["admin"].by_tlp["red"] > 0 and views["admin"].withheld == 0
    assert set(views["reader"].by_tlp) == {"clear"}
    # Unmarked objects follow the node's default level (amber here), so the ally gets them too.
    assert data.node.settings.default_tlp == "amber"
    assert set(views["ally"].by_tlp) == {"clear", "amber", "unmarked"}
    assert views["reader"].objects < views["ally"].objects < views["admin"].objects
    red_facts = [f for f in views["ally"].facts.of("incidents") if f.name == RED_INCIDENT_NAME]
    assert red_facts == []
    client = _signed_in(data, key)
    assert client.get(f"/ui/object/{data.red_incident_id}").status_code == 404
    assert "TLP:AMBER" in client.get("/ui/").text


def test_versions_are_listed_and_each_is_viewable_under_the_policy(tmp_path: Path) -> None:
    """An incident first stored at TLP:RED, then re-issued at TLP:CLEAR: the reader gets only the new version."""
    from tests.web.dashboard_data import _sdo
    from threatmesh.ingest.pipeline import SourceReport, ingest_raw
    from threatmesh.ingest.stix_reader import RawObject

    built = build_node(tmp_path / "node")
    try:
        first = _sdo("incident", 90, "red", name="Operation Two Faces", description="early, secret")
        second = {**_sdo("incident", 90, "clear", name="Operation Two Faces", description="later, public"),
                  "modified": "2025-02-01T00:00:00.000Z"}
        report = SourceReport("versions")
        ingest_raw([RawObject("t", 0, first), RawObject("t", 1, second)], built.node.store, report,
                   collection_id=built.node.default_collection.id, source="demo")
        assert not report.rejected
        page = f"/ui/object/{first['id']}"
        admin = _signed_in(built, built.admin_key)
        listing = admin.get(page).text
        older = re.findall(r'href="(/ui/object/[^"]+\?version=[^"]+)"', listing)
        assert len(older) == 1, "the admin sees both versions, the older one as a link"
        old_page = admin.get(older[0].replace("&amp;", "&")).text
        assert "an older version" in old_page and "early, secret" in old_page

        reader = _signed_in(built, built.reader_key)
        latest = reader.get(page).text
        assert "later, public" in latest and "?version=" not in latest
        assert reader.get(older[0].replace("&amp;", "&")).status_code == 404
    finally:
        built.node.close()


# -- search facets from the analytics facts ----------------------------------------------------


def _facet(page: str, name: str) -> dict[str, int]:
    block = re.search(rf'<ul class="facet-{name}">(.*?)</ul>', page, re.S)
    assert block is not None, f"no {name} facet"
    items = re.findall(r'<li>(?:<a href="[^"]*">|<strong[^>]*>)([^<]+)</(?:a|strong)> <span class="count">(\d+)</span>',
                       block.group(1))
    return {label: int(n) for label, n in items}


def test_search_facets_by_actor_sector_and_victim_country(data: DashboardNode) -> None:
    admin = _signed_in(data, data.admin_key)
    page = admin.get("/ui/search", params={"q": "Operation"}).text
    # Winter Ward (DE, ministry), Glass Harbour (US), Crimson Ward (RED, DE) by Granite Heron; Amber Pier
    # (PL, ministry) by Paper Lantern; the ministry is government and healthcare.
    assert _facet(page, "actor") == {"Granite Heron": 3, "Paper Lantern": 1}
    assert _facet(page, "sector") == {"government": 2, "healthcare": 2}
    assert _facet(page, "country") == {"Germany (DE)": 2, "Poland (PL)": 1, "United States (US)": 1}
    narrowed = admin.get("/ui/search", params={"q": "Operation", "country": "DE"}).text
    assert RED_INCIDENT_NAME in narrowed and "Operation Winter Ward" in narrowed
    assert CLEAR_INCIDENT_NAME not in narrowed and "2 results" in narrowed
    # Facets combine: the other facets count what the chosen one leaves.
    assert _facet(narrowed, "actor") == {"Granite Heron": 2}
    assert _facet(narrowed, "country")["Germany (DE)"] == 2  # a facet's own counts ignore its choice
    both = admin.get("/ui/search", params={"q": "Operation", "country": "DE", "sector": "government"}).text
    assert "1 result" in both and "Operation Winter Ward" in both


def test_search_facets_count_only_what_the_account_may_see(data: DashboardNode) -> None:
    reader = _signed_in(data, data.reader_key)
    page = reader.get("/ui/search", params={"q": "Operation"}).text
    assert _facet(page, "actor") == {"Granite Heron": 2, "Paper Lantern": 1}
    assert _facet(page, "country") == {"Germany (DE)": 1, "Poland (PL)": 1, "United States (US)": 1}
    filtered = reader.get("/ui/search", params={"q": "Operation", "actor": "Granite Heron"}).text
    assert RED_INCIDENT_NAME not in filtered and CLEAR_INCIDENT_NAME in filtered
