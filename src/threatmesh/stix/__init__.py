"""The pure STIX 2.1 core: parsing, validation, upgrade from 2.0, SCO ids, markings, indexing.

No sockets, no SQL: everything that crosses into the store is validated here once.
"""
