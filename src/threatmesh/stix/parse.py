"""Turn one raw object of a bundle or TAXII envelope into a `StixObject`.

This is the one place where received STIX is checked (DESIGN: "everything
that crosses the boundary is validated there once"). Two modes:

- lenient (default): reject only what cannot be stored or versioned (no type,
  a broken id, an SDO without its timestamps, an unknown spec_version) and
  keep real-world deviations with a warning, because intelligence that a
  partner sent slightly wrong is still intelligence;
- strict: additionally reject whatever the OASIS validator finds against a
  MUST of STIX 2.1, with the validator's messages as the reason.

STIX 2.0 objects are upgraded to 2.1 on the way in (see upgrade.py).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Mapping

import orjson

from threatmesh.errors import InvalidObject
from threatmesh.stix.index import index_object
from threatmesh.stix.markings import tlp_of
from threatmesh.stix.model import StixObject, build_stix_object
from threatmesh.stix.scoid import deterministic_sco_id
from threatmesh.stix.timestamps import normalize_timestamp
from threatmesh.stix.upgrade import upgrade_20_to_21
from threatmesh.stix.vocab import SCO_TYPES, STIX21_TYPES, VERSIONED_TYPES

# §2.4 / §3.1: type names are 3-250 chars of a-z, 0-9 and '-'.
_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]\Z")
# RFC 4122 layout; case and version are checked separately so that lenient
# mode can accept (with a warning) ids that only break the stricter rules.
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_RFC4122_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
_SPEC_VERSIONS = ("2.0", "2.1")
# STIX 2.1 §2.16: integers must fit in 54 signed bits (what JSON numbers hold exactly).
_MAX_STIX_INT = 2**53 - 1



def _fail(reason: str, raw: Mapping[str, Any] | None = None) -> InvalidObject:
    object_id = raw.get("id") if raw is not None else None
    return InvalidObject(reason, object_id=object_id if isinstance(object_id, str) else None)


def _check_id(obj: Mapping[str, Any], obj_type: str, warnings: list[str]) -> str:
    object_id = obj.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise _fail("missing or non-string `id`", obj)
    prefix, sep, uuid_part = object_id.partition("--")
    if not sep or prefix != obj_type:
        raise _fail(f"`id` {object_id!r} does not start with its type {obj_type!r} and '--'", obj)
    # The strict form first: nearly every id has it, and it implies the loose one.
    if not _RFC4122_RE.match(uuid_part):
        if not _UUID_RE.match(uuid_part):
            raise _fail(f"`id` {object_id!r} does not end in a UUID", obj)
        warnings.append(f"id {object_id!r} is not a lower-case RFC 4122 UUID")
    return object_id


def _timestamp(obj: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise _fail(f"missing `{name}` (required for {obj.get('type')} objects)", obj)
        return None
    try:
        return normalize_timestamp(value)
    except ValueError:
        raise _fail(f"`{name}` is not a STIX timestamp: {value!r}", obj) from None


def _spec_version(raw: Mapping[str, Any], obj_type: str, bundle_spec_version: str | None) -> str:
    declared = raw.get("spec_version")
    if declared is not None:
        if declared not in _SPEC_VERSIONS:
            raise _fail(f"unknown spec_version {declared!r}", raw)
        return str(declared)
    if bundle_spec_version is not None and bundle_spec_version not in _SPEC_VERSIONS:
        raise _fail(f"unknown bundle spec_version {bundle_spec_version!r}", raw)
    # 2.1 requires spec_version on every object but SCOs, so its absence on a
    # non-SCO means the producer wrote 2.0 (where objects had none).
    if bundle_spec_version == "2.0" or obj_type not in SCO_TYPES:
        return "2.0"
    return "2.1"


def _unusual_values(value: Any, path: str, found: list[str]) -> None:
    """Collect paths of NaN/Infinity, null and out-of-range integers (slow path only)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _unusual_values(item, f"{path}.{key}" if path else str(key), found)
    elif isinstance(value, list):
        for item in value:
            _unusual_values(item, path, found)
    elif value is None:
        found.append(f"null:{path}")
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(f"nan:{path}")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_STIX_INT:
        found.append(f"bigint:{path}")


def _serialise(obj: Mapping[str, Any], warnings: list[str], strict: bool) -> bytes:
    try:
        data = orjson.dumps(obj)
    except TypeError:
        # orjson refuses integers beyond 64 bits; Python's json writes them
        # exactly (readers must then use json.loads, which keeps them exact).
        data = b""
    # Fast path: `null` appears neither as a value nor (in practice) in text,
    # so the walk below runs only for the rare objects that need it.
    if data and b"null" not in data:
        return data
    found: list[str] = []
    _unusual_values(obj, "", found)
    if any(f.startswith("nan:") for f in found):
        # orjson would write null, json would write NaN (not JSON): neither round-trips.
        raise _fail("NaN or Infinity is not a JSON number: " + ", ".join(found), obj)
    for f in found:
        kind, _, path = f.partition(":")
        message = (
            f"property {path!r} is null (STIX forbids null values)" if kind == "null"
            else f"integer at {path!r} is outside STIX's 54-bit range"
        )
        if strict:
            raise _fail(message, obj)
        warnings.append(message)
    if data:
        return data
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise _fail(f"cannot be serialised as JSON: {e}", obj) from None


@lru_cache(maxsize=1)
def _validator_options() -> Any:
    # Imported on first strict use only: the validator takes ~0.5 s to import
    # and lenient ingest never needs it.
    from stix2validator import ValidationOptions

    # Not `strict=True`: that turns best-practice SHOULDs into errors.
    # Not strict_types/strict_properties: custom `x-` objects and `x_`
    # properties are legitimate STIX and always kept.
    return ValidationOptions(version="2.1")


def _validate_strictly(obj: Mapping[str, Any]) -> list[str]:
    """Reject on the OASIS validator's errors (MUSTs); return its warnings (SHOULDs)."""
    from stix2validator import validate_instance

    try:
        result = validate_instance(dict(obj), _validator_options())
    except Exception as e:  # the validator raises its own types on odd input
        raise _fail(f"STIX 2.1 validation failed: {e}", obj) from None
    if not result.is_valid:
        raise _fail("not valid STIX 2.1: " + "; ".join(str(e) for e in result.errors), obj)
    return [str(w) for w in result.warnings]


def _lenient_notes(obj: Mapping[str, Any], obj_type: str, warnings: list[str]) -> None:
    """Warnings for deviations seen in real feeds that lenient mode accepts."""
    if obj_type == "identity" and isinstance(obj.get("identity_class"), list):
        warnings.append("identity_class is a list; STIX 2.1 requires one string")
    revoked = obj.get("revoked")
    if revoked is not None and not isinstance(revoked, bool):
        warnings.append(f"revoked is not a boolean: {revoked!r}")
    if obj_type not in STIX21_TYPES and not obj_type.startswith("x-"):
        warnings.append(f"unknown object type {obj_type!r} without the x- prefix")


def parse_object(
    raw: object, *, strict: bool = False, bundle_spec_version: str | None = None
) -> StixObject:
    """Check, upgrade (2.0 -> 2.1) and describe one raw STIX object.

    Raises InvalidObject (with the object id where there is one) when the
    object must be rejected; everything accepted with a deviation carries it
    in `warnings`.
    """
    if not isinstance(raw, dict):
        raise InvalidObject(f"a STIX object must be a JSON object, not {type(raw).__name__}")
    obj_type = raw.get("type")
    if not isinstance(obj_type, str) or not obj_type:
        raise _fail("missing or non-string `type`", raw)
    # The names of STIX 2.1 are valid (a test checks): the expression runs for custom types only.
    if obj_type not in STIX21_TYPES and (not _TYPE_RE.match(obj_type) or "--" in obj_type):
        raise _fail(f"invalid type name {obj_type!r}", raw)
    warnings: list[str] = []
    object_id = _check_id(raw, obj_type, warnings)

    obj: dict[str, Any] = raw
    upgraded_from: str | None = None
    declared = raw.get("spec_version")
    # A declared '2.1' (nearly every object received) needs none of _spec_version's cases.
    if not (type(declared) is str and declared == "2.1") and (
        _spec_version(raw, obj_type, bundle_spec_version) == "2.0"
    ):
        obj, notes = upgrade_20_to_21(raw)
        upgraded_from = "2.0"
        warnings.append("upgraded from STIX 2.0" + (": " + "; ".join(notes) if notes else ""))

    is_sco = obj_type in SCO_TYPES
    versioned = obj_type in VERSIONED_TYPES
    created = _timestamp(obj, "created", required=versioned or obj_type == "marking-definition")
    modified = _timestamp(obj, "modified", required=versioned)
    if created is not None and modified is not None and modified < created:
        warnings.append("modified is earlier than created")
    if is_sco:
        version = ""
        try:
            expected = deterministic_sco_id(obj)
        except ValueError as e:
            expected = None
            warnings.append(str(e))
        if expected is not None and expected != object_id:
            warnings.append(f"SCO id is not its deterministic id {expected}")
    else:
        version = modified or created or ""
        if not version and not obj_type.startswith("x-"):
            warnings.append("object has neither modified nor created: it cannot be versioned")

    if strict:
        warnings.extend(_validate_strictly(obj))
    else:
        _lenient_notes(obj, obj_type, warnings)

    data = _serialise(obj, warnings, strict)
    created_by_ref = obj.get("created_by_ref")
    return build_stix_object(
        object_id,
        obj_type,
        "2.1",
        version,
        obj,
        data,
        tlp_of(obj),
        obj.get("revoked") is True,
        created_by_ref if isinstance(created_by_ref, str) else None,
        upgraded_from,
        tuple(warnings),
        index_object(obj),
    )
