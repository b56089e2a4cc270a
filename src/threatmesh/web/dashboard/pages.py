"""The dashboard's routes: login and logout, overview, search, object and actor pages.

Mounted by `web.app.create_app` at /ui. Every page but the login form needs a
session (see session.py); without one, a GET is redirected to the login form
and remembers where it was going. Handlers are plain functions, which
Starlette runs in its thread pool, since every store call blocks.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threatmesh.auth import hash_key
from threatmesh.settings import Settings
from threatmesh.store.protocol import Store
from threatmesh.web.dashboard import content
from threatmesh.web.dashboard.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    end_sessions,
    issue_token,
    node_secret,
    session_epoch,
    verify_token,
)
from threatmesh.web.dashboard.view import SnapshotCache, Viewer, parse

HERE = Path(__file__).parent
UI = content.UI
_OBJECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,250}--[0-9a-fA-F-]{36}$")
_MAX_FORM = 8192
_STIX_TYPE = re.compile(r"^[a-z0-9-]{1,250}$")
_TLP_VALUES = frozenset(content.TLP_ORDER)

# Everything a page uses comes from this node: scripts, styles and images; no frames, no plugins.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    # Nothing to other sites; 'no-referrer' would also make browsers send `Origin: null` on
    # the node's own form posts, which the same-origin check below must then refuse.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every response under /ui (pages and static files alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _safe_next(target: str | None) -> str:
    """Only a path on this node's dashboard: never another site (open redirect)."""
    if not target:
        return UI + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(UI) or target.startswith("//") or "\\" in target:
        return UI + "/"
    return target


class Dashboard:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.secret = node_secret(store)
        self.cache = SnapshotCache()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=jinja2.select_autoescape(("html",), default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(ui=UI, node_name=settings.node_name, object_href=content.object_href,
                                      actor_href=content.actor_href)
        self.templates.tests["link"] = lambda value: isinstance(value, content.Link)
        self.templates.filters["pretty"] = lambda value: orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()

    # -- helpers ------------------------------------------------------------------------

    def viewer(self, request: Request) -> Viewer | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        account = verify_token(self.secret, token, self.store)
        return Viewer.for_account(account, self.store, self.settings, self.cache) if account else None

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.templates.get_template(template).render(request_path=request.url.path, **context)
        return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{UI}/login?{urlencode({'next': target})}", status_code=303)

    def not_found(self, request: Request, viewer: Viewer, what: str) -> HTMLResponse:
        # The same answer whether the object does not exist or may not be shown: no oracle.
        return self.render(request, "error.html", 404, viewer=viewer, title="Not found",
                           message=f"No {what} here that you may see.")

    def same_origin(self, request: Request) -> bool:
        """A POST from a page of this node (the SameSite cookie already stops most forgeries)."""
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        parts = urlsplit(origin)
        return parts.netloc == request.headers.get("host", "")

    # -- login / logout ------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        if self.viewer(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        return self.render(request, "login.html", viewer=None, title="Sign in", error="",
                           next=_safe_next(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_FORM or not self.same_origin(request):
            return self.render(request, "login.html", 400, viewer=None, title="Sign in",
                               error="That sign-in request was not accepted.", next=UI + "/")
        form = parse_qs(body.decode("utf-8", "replace"))
        key = (form.get("api_key") or [""])[0].strip()
        target = _safe_next((form.get("next") or [""])[0])
        account = await run_in_threadpool(self.store.account_by_key_hash, hash_key(key)) if key else None
        if account is None or account.revoked:
            await run_in_threadpool(self.store.audit, None, "POST", "/ui/login", 401, 0)
            return self.render(request, "login.html", 401, viewer=None, title="Sign in", next=target,
                               error="That API key is not valid for this node.")
        epoch = await run_in_threadpool(session_epoch, self.store, account.name)
        await run_in_threadpool(self.store.audit, account.name, "POST", "/ui/login", 303, 0)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, issue_token(self.secret, account, epoch), max_age=SESSION_SECONDS,
                            path=UI, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    def logout(self, request: Request) -> Response:
        viewer = self.viewer(request)
        if viewer is not None and self.same_origin(request):
            end_sessions(self.store, viewer.account.name)
            self.store.audit(viewer.account.name, "POST", "/ui/logout", 303, 0)
        response = RedirectResponse(f"{UI}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=UI, httponly=True, samesite="strict")
        return response

    # -- pages ---------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        viewer = self.viewer(request)
        if viewer is None:
            return self.to_login(request)
        started = time.perf_counter()
        data = content.overview(viewer)
        return self.render(request, "overview.html", viewer=viewer, title="Overview", o=data,
                           elapsed=time.perf_counter() - started)

    def search(self, request: Request) -> Response:
        viewer = self.viewer(request)
        if viewer is None:
            return self.to_login(request)
        params = request.query_params
        text = params.get("q", "")[:200]
        stix_type = params.get("type", "")
        tlp = params.get("tlp", "")
        stix_type = stix_type if _STIX_TYPE.match(stix_type) else ""
        tlp = tlp if tlp in _TLP_VALUES else ""
        # Facet values are compared for equality with what the facts hold: any text, bounded in length.
        chosen = {name: params.get(name, "")[:200] for name in content.FACET_FIELDS}
        result = content.search(viewer, text, stix_type, tlp, **chosen)

        def facet_href(**change: str) -> str:
            query = {"q": text, "type": stix_type, "tlp": tlp, **chosen, **change}
            return f"{UI}/search?" + urlencode({k: v for k, v in query.items() if v})

        return self.render(request, "search.html", viewer=viewer, title=f"Search: {text}" if text else "Search",
                           r=result, facet_href=facet_href)

    def _object(self, request: Request) -> tuple[Viewer | None, Any, Response | None]:
        viewer = self.viewer(request)
        if viewer is None:
            return None, None, self.to_login(request)
        object_id = request.path_params["object_id"]
        if not _OBJECT_ID.match(object_id):
            return viewer, None, self.not_found(request, viewer, "object")
        wanted = request.query_params.get("version")
        versions = viewer.versions(object_id)
        if wanted:
            version = next((v for v in versions if v.version == wanted), None)
        else:
            latest = viewer.latest(object_id)
            version = latest
        if version is None:
            return viewer, None, self.not_found(request, viewer, "object")
        return viewer, (version, versions), None

    def object_page(self, request: Request) -> Response:
        viewer, found, failed = self._object(request)
        if failed is not None or viewer is None:
            return failed or self.to_login(request)
        version, versions = found
        data = parse(version)
        links = content.neighbours(viewer, version, data) if version.is_latest else []
        names = content.marking_names(viewer, data)
        return self.render(
            request, "object.html", viewer=viewer, title=content.display_name(data), v=version, data=data,
            name=content.display_name(data), props=content.properties(data, names), versions=versions,
            links=links, graph=content.graph_of(version, data, links) if links else None,
            provenance=content.provenance(viewer, version), is_actor=version.type in content.ACTOR_TYPES,
            raw=_pretty(data),
        )

    def actor_page(self, request: Request) -> Response:
        viewer, found, failed = self._object(request)
        if failed is not None or viewer is None:
            return failed or self.to_login(request)
        version, _ = found
        if version.type not in content.ACTOR_TYPES:
            return RedirectResponse(content.object_href(version.id), status_code=303)
        data = parse(version)
        links = content.neighbours(viewer, version, data)
        actor = content.actor(viewer, version, data, links)
        return self.render(request, "actor.html", viewer=viewer, title=content.display_name(data), v=version,
                           data=data, name=content.display_name(data), a=actor)


def _pretty(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode("utf-8")


def dashboard_routes(settings: Settings, store: Store) -> list[BaseRoute]:
    """The dashboard under /ui, and / sending browsers there."""
    board = Dashboard(settings, store)
    router = Router(routes=[
        Route("/", board.overview, methods=["GET"]),
        Route("/login", board.login_form, methods=["GET"]),
        Route("/login", board.login, methods=["POST"]),
        Route("/logout", board.logout, methods=["POST"]),
        Route("/search", board.search, methods=["GET"]),
        Route("/object/{object_id}", board.object_page, methods=["GET"]),
        Route("/actor/{object_id}", board.actor_page, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ])

    def home(request: Request) -> Response:
        return RedirectResponse(f"{UI}/", status_code=307)

    return [Route("/", home, methods=["GET"]), Mount(UI, app=_SecurityHeaders(router))]
