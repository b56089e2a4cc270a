"""Indicator extraction: value types, refanging and IoCs in prose (pure: no I/O).

`detect_type` classifies one value; `extract` finds every indicator in a text
with its position; `threatmesh.extract.stix` turns values into STIX objects.
"""

from threatmesh.extract.text import DEFAULT_IGNORED_DOMAINS, ExtractOptions, Extracted, extract, unique_values
from threatmesh.extract.values import Detected, IocType, detect_type, refang

__all__ = [
    "DEFAULT_IGNORED_DOMAINS", "Detected", "ExtractOptions", "Extracted", "IocType", "detect_type", "extract",
    "refang", "unique_values",
]
