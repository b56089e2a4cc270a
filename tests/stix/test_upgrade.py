"""STIX 2.0 -> 2.1 upgrade, judged by MITRE's own conversion of ICS ATT&CK."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from threatmesh.stix.upgrade import upgrade_20_to_21


def test_ics_attack_upgrade_equals_mitre_21(corpora_dir: Path) -> None:
    attack = corpora_dir / "attack"
    old = json.loads((attack / "ics-attack-18.1-stix20-assembled-from-mitre-cti.json").read_text())
    new = json.loads((attack / "ics-attack-18.1.json").read_text())
    published = {o["id"]: o for o in new["objects"]}
    assert len(old["objects"]) > 1800
    for obj in old["objects"]:
        before = copy.deepcopy(obj)
        upgraded, _notes = upgrade_20_to_21(obj)
        assert obj == before  # input untouched
        expected = published.pop(obj["id"])
        assert upgraded == expected, obj["id"]
        assert list(upgraded) == list(expected), f"key order differs for {obj['id']}"
    # Only MITRE's collection object, which has no 2.0 counterpart, is left.
    assert [o["type"] for o in published.values()] == ["x-mitre-collection"]


def test_malware_rules() -> None:
    upgraded, notes = upgrade_20_to_21(
        {"type": "malware", "id": "malware--1", "name": "X", "description": "d", "x_mitre_version": "1", "labels": ["malware"]}
    )
    assert list(upgraded) == ["type", "spec_version", "id", "name", "description", "is_family", "x_mitre_version"]
    assert upgraded["is_family"] is True
    assert any("is_family" in n for n in notes)


def test_tool_placeholder_label_dropped_other_labels_moved() -> None:
    tool, _ = upgrade_20_to_21({"type": "tool", "id": "tool--1", "name": "T", "labels": ["tool"]})
    assert "labels" not in tool and "tool_types" not in tool
    malware, _ = upgrade_20_to_21({"type": "malware", "id": "malware--1", "name": "M", "labels": ["ransomware"]})
    assert malware["malware_types"] == ["ransomware"] and "labels" not in malware
    assert list(malware) == ["type", "spec_version", "id", "name", "is_family", "malware_types"]


def test_indicator_gets_pattern_type_and_types() -> None:
    ind, _ = upgrade_20_to_21(
        {"type": "indicator", "id": "indicator--1", "labels": ["malicious-activity"], "pattern": "[a:b = 'c']", "valid_from": "2020-01-01T00:00:00Z"}
    )
    assert list(ind) == ["type", "spec_version", "id", "indicator_types", "pattern", "pattern_type", "valid_from"]
    kept, _ = upgrade_20_to_21({"type": "indicator", "id": "indicator--1", "pattern": "x", "pattern_type": "sigma"})
    assert kept["pattern_type"] == "sigma"


def test_existing_is_family_and_spec_version_kept_in_place() -> None:
    obj, _ = upgrade_20_to_21({"type": "malware", "id": "malware--1", "spec_version": "2.0", "is_family": False, "name": "m"})
    assert obj == {"type": "malware", "spec_version": "2.1", "id": "malware--1", "is_family": False, "name": "m"}
    assert list(obj)[:2] == ["type", "spec_version"]
