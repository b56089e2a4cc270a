"""`create_app(settings, store)` builds the node's ASGI application.

HTTP status codes for threatmesh errors are chosen here and nowhere else.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from threatmesh import __version__
from threatmesh.settings import Settings
from threatmesh.store.protocol import Store
from threatmesh.taxii.server import taxii_routes
from threatmesh.web.dashboard import dashboard_routes

log = logging.getLogger(__name__)

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


def create_app(settings: Settings, store: Store) -> Starlette:
    async def health(request: Request) -> Response:
        problems = store.check_integrity() if request.query_params.get("deep") else []
        body: dict[str, object] = {"status": "ok" if not problems else "degraded", "version": __version__}
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=200 if not problems else 503)

    routes = [
        Route("/health", health, methods=["GET"]),
        # TAXII 2.1: discovery, API roots and every collection endpoint.
        *taxii_routes(settings, store),
        # The web dashboard under /ui (and / sending browsers there).
        *dashboard_routes(settings, store),
    ]
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.store = store
    return app
