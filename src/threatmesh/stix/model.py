"""Core value types of the STIX layer.

A `StixObject` is one version of one object, validated, ready for a store. Its
`json` is the object exactly as it will be kept and served again: the received
object (upgraded to 2.1 where it was 2.0), serialised without reordering keys,
so that custom `x-` objects and `x_` properties survive unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# TLP 2.0 levels, least to most restrictive; the order is used to take the strictest.
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")


def stricter_tlp(a: str | None, b: str | None) -> str | None:
    """The more restrictive of two TLP levels (None means unmarked)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if TLP_LEVELS.index(a) >= TLP_LEVELS.index(b) else b


@dataclass(frozen=True, slots=True)
class ObjectIndex:
    """What a store indexes about one object version, computed by the pure core.

    - refs: (property path, target id) for every `*_ref` / `*_refs` value,
      including `created_by_ref`, relationship `source_ref`/`target_ref`,
      sighting refs, report `object_refs` and granular-marking refs.
    - markings: marking-definition ids from `object_marking_refs` and `granular_markings`.
    - text: (field, text) pairs for full-text search: name, description, aliases,
      observable values, external ids.
    - observables: (kind, normalised value) pairs, e.g. ("domain-name", "evil.com"),
      ("ipv4-addr", "10.0.0.1"), ("file:hashes.SHA-256", "ab12..."), taken from
      SCOs and from the equality comparisons of indicator patterns.
    """

    refs: tuple[tuple[str, str], ...] = ()
    markings: tuple[str, ...] = ()
    text: tuple[tuple[str, str], ...] = ()
    observables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StixObject:
    """One validated version of one STIX object."""

    id: str
    type: str
    spec_version: str
    # Normalised version key: `modified` (or `created` for objects without it) as
    # 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; '' for objects that have no version (SCOs).
    version: str
    data: Mapping[str, Any]
    json: bytes
    tlp: str | None = None  # strictest TLP among the object's own markings
    revoked: bool = False
    created_by_ref: str | None = None
    upgraded_from: str | None = None  # '2.0' when the object arrived as STIX 2.0
    warnings: tuple[str, ...] = ()
    index: ObjectIndex = field(default_factory=ObjectIndex)
