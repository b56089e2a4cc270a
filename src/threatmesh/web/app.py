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

log = logging.getLogger(__name__)

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


def create_app(settings: Settings, store: Store) -> Starlette:
    async def health(request: Request) -> Response:
        problems = store.check_integrity() if request.query_params.get("deep") else []
        body = {"status": "ok" if not problems else "degraded", "version": __version__}
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=200 if not problems else 503)

    async def discovery(request: Request) -> Response:
        # TAXII 2.1 §4.1: the discovery resource. The full TAXII API replaces this
        # route; until then the node names itself and its default API root.
        base = str(request.base_url).rstrip("/")
        body = {
            "title": settings.node_name,
            "description": "threatmesh node",
            "default": f"{base}/api/",
            "api_roots": [f"{base}/api/"],
        }
        return JSONResponse(body, media_type=TAXII_MEDIA_TYPE)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/taxii2/", discovery, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.store = store
    return app
