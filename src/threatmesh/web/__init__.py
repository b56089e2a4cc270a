"""The HTTP face of a node: TAXII API, health, and (later) the dashboard."""
