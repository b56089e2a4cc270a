"""TAXII 2.1 (OASIS Standard, 10 June 2021): the protocol layer of the node.

The pure parts (media-type negotiation, query parsing, pagination tokens and
resource builders) import no web framework and no database driver; only
`server.py` speaks HTTP.
"""
