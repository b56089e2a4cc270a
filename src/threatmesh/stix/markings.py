"""TLP marking definitions: the fixed ids of TLP 1.0 (STIX 2.1 §7.2.1.4) and of
TLP 2.0 (the OASIS `tlp-2.0` extension, extension-definition--60a3c5c5-...).

The level of an object is the strictest TLP among its own `object_marking_refs`.
Granular markings are deliberately ignored here: they mark parts of an object,
and the sharing policy treats the object as a whole.
"""

from __future__ import annotations

from typing import Any, Mapping

from threatmesh.stix.model import stricter_tlp

# TLP 1.0 ids from the STIX 2.1 specification; WHITE is read as TLP 2.0 CLEAR,
# the level that FIRST renamed it to.
TLP1_MARKING_IDS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}

# TLP 2.0 ids fixed by the OASIS extension (cti-stix-common-objects,
# extension-definition-specifications/tlp-2.0).
TLP2_MARKING_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

_LEVEL_OF_MARKING: dict[str, str] = {
    **TLP1_MARKING_IDS,
    **{ref: level for level, ref in TLP2_MARKING_IDS.items()},
}


def tlp_marking_definition(level: str) -> dict[str, Any]:
    """The canonical TLP 2.0 marking-definition object for `level`, as OASIS publishes it.

    A fresh dict each call, so a caller cannot alter the canonical form by accident.
    """
    ref = TLP2_MARKING_IDS[level]  # KeyError for an unknown level is the caller's bug
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": ref,
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {
            TLP2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        },
    }


def tlp2_marking_definitions() -> list[dict[str, Any]]:
    """All five TLP 2.0 marking definitions, least to most restrictive."""
    return [tlp_marking_definition(level) for level in TLP2_MARKING_IDS]


def tlp_of_marking(ref: str) -> str | None:
    """The TLP 2.0 level a marking-definition id stands for, or None if it is not TLP."""
    return _LEVEL_OF_MARKING.get(ref)


def tlp_of_marking_definition(obj: Mapping[str, Any]) -> str | None:
    """The TLP level a marking-definition object declares, by id or by content.

    Lets a node recognise a TLP marking whose id is not one of the well-known
    ones (a producer minted its own), read from the TLP 2.0 extension or from
    the TLP 1.0 `definition`.
    """
    level = tlp_of_marking(str(obj.get("id", "")))
    if level is not None:
        return level
    ext = (obj.get("extensions") or {}).get(TLP2_EXTENSION_ID)
    if isinstance(ext, Mapping):
        value = str(ext.get("tlp_2_0", "")).lower()
        if value in TLP2_MARKING_IDS:
            return value
    definition = obj.get("definition")
    if obj.get("definition_type") == "tlp" and isinstance(definition, Mapping):
        value = str(definition.get("tlp", "")).lower()
        if value == "white":
            return "clear"
        if value in TLP2_MARKING_IDS:
            return value
    return None


def tlp_of(obj: Mapping[str, Any]) -> str | None:
    """The strictest TLP among the object's `object_marking_refs`; None when unmarked."""
    refs = obj.get("object_marking_refs")
    if not refs or not isinstance(refs, list):
        return None
    level: str | None = None
    for ref in refs:
        if isinstance(ref, str):
            level = stricter_tlp(level, _LEVEL_OF_MARKING.get(ref))
    return level
