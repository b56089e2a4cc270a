"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real node on 127.0.0.1.

Every request the pages make is recorded; none may leave the node. Screenshots
go to test-artifacts/dashboard/ (gitignored) for people to look at.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from tests.web.dashboard_data import (
    ACTOR_ALIAS,
    ACTOR_NAME,
    CLEAR_INCIDENT_NAME,
    RED_INCIDENT_NAME,
    DashboardNode,
    build_node,
)

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent (Debian package 'chromium'; `make system-deps` installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
uvicorn = pytest.importorskip("uvicorn")

from threatmesh.web.app import create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, DashboardNode]]:
    data = build_node(tmp_path_factory.mktemp("dashboard") / "node")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(data.node.settings, data.node.store), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the node did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", data
    finally:
        server.should_exit = True
        thread.join(10)
        data.node.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Recorder:
    """Every request a browser context makes, and every console error or CSP complaint of its pages."""

    def __init__(self, context: Any) -> None:
        self.urls: list[str] = []
        self.problems: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("page", self.watch)

    def watch(self, page: Any) -> None:
        page.on("console", lambda msg: self.problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.problems.append(str(exc)))

    def outside(self, base: str) -> list[str]:
        node = urlsplit(base).netloc
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != node]


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page: Any, base: str, key: str, target: str = "/ui/") -> None:
    page.goto(base + target)
    assert "/ui/login" in page.url, "an unauthenticated page must send the browser to the login form"
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_label("API key").press("Enter")  # the form works from the keyboard


def test_admin_walks_through_the_dashboard(served: tuple[str, DashboardNode], browser: Any) -> None:
    base, data = served
    context = browser.new_context(viewport=LAPTOP)
    recorder = Recorder(context)
    page = context.new_page()
    _shot_login(page, base)
    _login(page, base, data.admin_key)
    assert page.url == base + "/ui/"

    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["tm_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert data.admin_key not in session["value"]
    assert page.evaluate("document.cookie") == "", "scripts must not read the session cookie"

    # Overview: counts, trend chart, top actors, sectors, countries, sightings, peers.
    assert page.get_by_role("heading", name="Overview", level=1).is_visible()
    assert page.locator("svg.chart").first.is_visible()
    actors = page.locator("section[aria-labelledby='h-actors']")
    assert ACTOR_NAME in actors.inner_text()
    assert "Russia" in actors.inner_text()
    assert "government" in page.locator("section[aria-labelledby='h-sectors']").inner_text()
    assert "Germany" in page.locator("section[aria-labelledby='h-countries']").text_content()
    assert "No peers" in page.locator("section[aria-labelledby='h-peers']").inner_text()
    assert page.locator("section[aria-labelledby='h-sightings'] li").count() == 1
    _shot(page, "overview-laptop")

    # Keyboard: the first Tab lands on the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # Search for an actor's alias with the header's search box, then narrow by a facet.
    page.get_by_label("Search intelligence").fill(ACTOR_ALIAS)
    page.get_by_label("Search intelligence").press("Enter")
    page.wait_for_url("**/ui/search?*")
    results = page.locator("ol.results-list li")
    assert results.count() >= 1
    assert ACTOR_NAME in results.first.inner_text()
    page.goto(base + "/ui/search?q=infrastructure")
    page.locator("aside.facets").get_by_role("link", name="TLP:RED").click()
    page.wait_for_url("**tlp=red**")
    assert page.locator("ol.results-list li").count() >= 1
    assert page.locator("ol.results-list .tlp").all_inner_texts() == ["TLP:RED"] * page.locator(
        "ol.results-list li").count()
    _shot(page, "search-laptop")
    # The actor facet (from the analytics facts) narrows a search to what one actor did.
    page.goto(base + "/ui/search?q=Operation")
    page.locator("aside.facets ul.facet-actor").get_by_role("link", name=ACTOR_NAME).click()
    page.wait_for_url("**actor=**")
    listed = page.locator("ol.results-list").inner_text()
    assert CLEAR_INCIDENT_NAME in listed and "Operation Amber Pier" not in listed  # Paper Lantern's

    # The actor page: aliases, sponsor, techniques, indicators, incidents over time.
    page.goto(base + "/ui/search?q=" + ACTOR_ALIAS)
    page.locator("ol.results-list li a").first.click()
    page.wait_for_url("**/ui/actor/**")
    assert page.get_by_role("heading", name=ACTOR_NAME, level=1).is_visible()
    who = page.locator("section[aria-labelledby='h-who']").inner_text()
    assert ACTOR_ALIAS in who and "Russia" in who
    assert page.locator("section[aria-labelledby='h-tech'] li a").count() >= 1
    assert page.locator("section[aria-labelledby='h-ind'] li a").count() >= 1
    incidents = page.locator("section[aria-labelledby='h-incidents']").inner_text()
    assert CLEAR_INCIDENT_NAME in incidents and RED_INCIDENT_NAME in incidents  # the admin sees RED
    _shot(page, "actor-laptop")

    # An object page, reached by following a link: properties, markings, versions, relationships, graph.
    page.locator("section[aria-labelledby='h-incidents'] li a", has_text=CLEAR_INCIDENT_NAME).click()
    page.wait_for_url("**/ui/object/**")
    assert page.get_by_role("heading", name=CLEAR_INCIDENT_NAME).is_visible()
    assert page.locator("h1 .tlp").inner_text() == "TLP:CLEAR"
    assert "x_threatmesh_date" in page.locator("dl.props").inner_text()
    assert page.locator("ol.versions li").count() == 1
    assert page.locator("svg.graph a").count() >= 2
    out = page.locator("section[aria-labelledby='h-rel']").inner_text()
    assert "attributed-to" in out and ACTOR_NAME in out
    _shot(page, "object-laptop")
    # The graph's nodes are links a keyboard reaches.
    page.locator("svg.graph a").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/**")

    # Phone width: nothing wider than the screen.
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    phone_recorder = Recorder(phone)
    phone.add_cookies([{**session, "sameSite": "Strict"}])
    phone_page = phone.new_page()
    for path, name in (("/ui/", "overview-phone"), (f"/ui/actor/{data.actor_id}", "actor-phone"),
                       (f"/ui/object/{data.clear_incident_id}", "object-phone"),
                       ("/ui/search?q=" + ACTOR_ALIAS, "search-phone")):
        phone_page.goto(base + path)
        assert phone_page.url == base + path
        overflow = phone_page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than a phone screen"
        _shot(phone_page, name)

    # Sign out ends the session: the old cookie no longer opens a page.
    page.goto(base + "/ui/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login**")
    phone_page.goto(base + "/ui/")
    assert "/ui/login" in phone_page.url

    for rec in (recorder, phone_recorder):
        assert rec.urls, "the recorder saw no request"
        assert rec.outside(base) == [], f"requests left the node: {rec.outside(base)}"
        assert rec.problems == [], f"console errors (CSP violations included): {rec.problems}"
    context.close()
    phone.close()


def _shot_login(page: Any, base: str) -> None:
    page.goto(base + "/ui/login")
    _shot(page, "login-laptop")


def test_non_admin_never_sees_tlp_red(served: tuple[str, DashboardNode], browser: Any) -> None:
    base, data = served
    context = browser.new_context(viewport=LAPTOP)
    recorder = Recorder(context)
    page = context.new_page()
    _login(page, base, data.reader_key)
    assert page.url == base + "/ui/"
    body = page.locator("main").inner_text()
    assert "TLP:RED" not in body and RED_INCIDENT_NAME not in body
    assert "shown to administrators" in body  # peers are the operator's business
    _shot(page, "overview-reader")

    page.goto(base + "/ui/search?q=" + RED_INCIDENT_NAME.replace(" ", "+"))
    assert page.locator("ol.results-list li").count() == 0
    page.goto(base + "/ui/search?q=Operation")
    listed = page.locator("ol.results-list").inner_text()
    assert CLEAR_INCIDENT_NAME in listed and RED_INCIDENT_NAME not in listed

    response = page.goto(base + f"/ui/object/{data.red_incident_id}")
    assert response is not None and response.status == 404
    assert RED_INCIDENT_NAME not in page.content()
    # That refusal is the one console error expected (Chromium reports the 404 of the document).
    assert len(recorder.problems) == 1 and "404" in recorder.problems[0], recorder.problems
    recorder.problems.clear()

    page.goto(base + f"/ui/actor/{data.actor_id}")
    actor_text = page.locator("main").inner_text()
    assert CLEAR_INCIDENT_NAME in actor_text and RED_INCIDENT_NAME not in actor_text
    assert "TLP:RED" not in actor_text
    _shot(page, "actor-reader")
    assert recorder.outside(base) == []
    assert recorder.problems == []
    context.close()


def test_artifacts_folder_is_ignored_by_git() -> None:
    gitignore = Path(__file__).resolve().parents[2] / ".gitignore"
    assert "test-artifacts/" in gitignore.read_text().splitlines()
    assert shutil.which("git") is None or ARTIFACTS.is_relative_to(gitignore.parent / "test-artifacts")
