"""threatmesh: a federated cyber-threat-intelligence exchange (STIX 2.1, TAXII 2.1, TLP 2.0)."""

__version__ = "0.1.0"
