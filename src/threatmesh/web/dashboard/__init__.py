"""The web dashboard: overview and trends, search, object and actor pages, served at /ui.

Same accounts as the TAXII API; what a non-admin account sees is what the
egress policy lets go to it. Everything a page needs is served by the node.
"""

from threatmesh.web.dashboard.pages import dashboard_routes

__all__ = ["dashboard_routes"]
