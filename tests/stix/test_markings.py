from __future__ import annotations

import pytest
import stix2

from threatmesh.stix.markings import (
    TLP1_MARKING_IDS,
    TLP2_MARKING_IDS,
    tlp2_marking_definitions,
    tlp_marking_definition,
    tlp_of,
    tlp_of_marking,
    tlp_of_marking_definition,
)
from threatmesh.stix.model import TLP_LEVELS


def test_tlp1_ids_match_stix2_library() -> None:
    assert tlp_of_marking(stix2.v21.TLP_WHITE.id) == "clear"
    assert tlp_of_marking(stix2.v21.TLP_GREEN.id) == "green"
    assert tlp_of_marking(stix2.v21.TLP_AMBER.id) == "amber"
    assert tlp_of_marking(stix2.v21.TLP_RED.id) == "red"
    assert len(TLP1_MARKING_IDS) == 4


def test_tlp2_ids() -> None:
    assert tuple(TLP2_MARKING_IDS) == TLP_LEVELS
    assert TLP2_MARKING_IDS["amber+strict"] == "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    assert TLP2_MARKING_IDS["red"] == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
    for level, ref in TLP2_MARKING_IDS.items():
        assert tlp_of_marking(ref) == level
    assert tlp_of_marking("marking-definition--00000000-0000-4000-8000-000000000000") is None


def test_tlp_of_takes_strictest_object_marking_only() -> None:
    obj = {
        "object_marking_refs": [TLP2_MARKING_IDS["green"], "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"],
        "granular_markings": [{"marking_ref": TLP2_MARKING_IDS["red"], "selectors": ["description"]}],
    }
    assert tlp_of(obj) == "amber"
    assert tlp_of({"granular_markings": obj["granular_markings"]}) is None
    assert tlp_of({}) is None
    assert tlp_of({"object_marking_refs": ["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]}) == "clear"
    assert tlp_of({"object_marking_refs": [TLP2_MARKING_IDS["amber"], TLP2_MARKING_IDS["amber+strict"]]}) == "amber+strict"


@pytest.mark.parametrize("level", TLP_LEVELS)
def test_canonical_definitions_are_valid_stix(level: str) -> None:
    from stix2validator import ValidationOptions, validate_instance

    md = tlp_marking_definition(level)
    assert md["id"] == TLP2_MARKING_IDS[level]
    assert md["name"] == f"TLP:{level.upper()}"
    assert tlp_of_marking_definition(md) == level
    assert tlp_of_marking_definition({**md, "id": "marking-definition--11111111-1111-4111-8111-111111111111"}) == level
    result = validate_instance(md, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]


def test_definitions_are_fresh_copies() -> None:
    first = tlp2_marking_definitions()
    first[0]["name"] = "changed"
    assert tlp2_marking_definitions()[0]["name"] == "TLP:CLEAR"
    assert [tlp_of_marking_definition(d) for d in tlp2_marking_definitions()] == list(TLP_LEVELS)


def test_tlp1_definition_by_content() -> None:
    md = {"type": "marking-definition", "id": "marking-definition--11111111-1111-4111-8111-111111111111",
          "definition_type": "tlp", "definition": {"tlp": "white"}}
    assert tlp_of_marking_definition(md) == "clear"
