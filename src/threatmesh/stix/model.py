"""Core value types of the STIX layer.

A `StixObject` is one version of one object, validated, ready for a store. Its
`json` is the object exactly as it will be kept and served again: the received
object (upgraded to 2.1 where it was 2.0), serialised without reordering keys,
so that custom `x-` objects and `x_` properties survive unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

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


# Parsing builds one StixObject and one ObjectIndex for every object a node
# receives. A frozen dataclass's __init__ writes each field through
# object.__setattr__ (an attribute lookup and a generic call per field): that
# was a fifth of the cost of parsing a typical indicator. The builders below
# write the slots through their descriptors instead, at about a third of the
# cost. The classes are unchanged: still frozen, compared and copied as before,
# and their own __init__ serves every other caller.
_new = object.__new__


def _slot_setters(cls: type, names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot writers of a slotted dataclass for `names`, which must be its fields in order.

    A field added to (or moved in) the class without the same change to its
    builder fails here, at import, rather than building wrong objects.
    """
    declared = tuple(f.name for f in fields(cls))
    if tuple(names.split()) != declared:
        raise TypeError(f"the {cls.__name__} builder writes {names.split()}, the class has {list(declared)}")
    if hasattr(cls, "__post_init__"):  # the builders would skip it
        raise TypeError(f"{cls.__name__} has a __post_init__, which its builder does not run")
    return tuple(cls.__dict__[name].__set__ for name in declared)


_SET_REFS, _SET_MARKINGS, _SET_TEXT, _SET_OBSERVABLES = _slot_setters(
    ObjectIndex, "refs markings text observables"
)
(
    _SET_ID, _SET_TYPE, _SET_SPEC_VERSION, _SET_VERSION, _SET_DATA, _SET_JSON, _SET_TLP,
    _SET_REVOKED, _SET_CREATED_BY_REF, _SET_UPGRADED_FROM, _SET_WARNINGS, _SET_INDEX,
) = _slot_setters(
    StixObject,
    "id type spec_version version data json tlp revoked created_by_ref upgraded_from warnings index",
)


def build_object_index(
    refs: tuple[tuple[str, str], ...],
    markings: tuple[str, ...],
    text: tuple[tuple[str, str], ...],
    observables: tuple[tuple[str, str], ...],
) -> ObjectIndex:
    """`ObjectIndex(refs, markings, text, observables)`, built without the frozen __init__ (see above)."""
    index: ObjectIndex = _new(ObjectIndex)
    _SET_REFS(index, refs)
    _SET_MARKINGS(index, markings)
    _SET_TEXT(index, text)
    _SET_OBSERVABLES(index, observables)
    return index


def build_stix_object(
    id: str,
    type: str,
    spec_version: str,
    version: str,
    data: Mapping[str, Any],
    json: bytes,
    tlp: str | None,
    revoked: bool,
    created_by_ref: str | None,
    upgraded_from: str | None,
    warnings: tuple[str, ...],
    index: ObjectIndex,
) -> StixObject:
    """`StixObject(...)` with every field given, built without the frozen __init__ (see above)."""
    obj: StixObject = _new(StixObject)
    _SET_ID(obj, id)
    _SET_TYPE(obj, type)
    _SET_SPEC_VERSION(obj, spec_version)
    _SET_VERSION(obj, version)
    _SET_DATA(obj, data)
    _SET_JSON(obj, json)
    _SET_TLP(obj, tlp)
    _SET_REVOKED(obj, revoked)
    _SET_CREATED_BY_REF(obj, created_by_ref)
    _SET_UPGRADED_FROM(obj, upgraded_from)
    _SET_WARNINGS(obj, warnings)
    _SET_INDEX(obj, index)
    return obj
