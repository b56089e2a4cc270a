"""STIX 2.0 to 2.1, object by object, the way MITRE converts ATT&CK.

The rules were read off MITRE's own output: the ICS ATT&CK 2.0 objects
(mitre/cti) against the 2.1 bundle MITRE publishes (attack-stix-data) differ
only in these ways, and the test suite checks object-for-object equality,
key order included:

- every object gains `"spec_version": "2.1"` directly after `type`;
- malware gains `"is_family": true` directly after `description` (2.1 makes it
  required; ATT&CK malware entries are families);
- the 2.0 placeholder labels `["malware"]` / `["tool"]`, which only repeated
  the type, are dropped.

Beyond ATT&CK, 2.0 objects from other producers need two more changes so
that the result is valid 2.1:

- `labels` of indicator, malware, tool, threat-actor and report held the
  required 2.0 type vocabulary; 2.1 moved it to `<type>_types`, so the value
  moves there (in place of `labels`), as the OASIS stix2-elevator does;
- indicators gain `"pattern_type": "stix"` after `pattern` (2.0 had only STIX
  patterns; 2.1 requires the property).
"""

from __future__ import annotations

from typing import Any

# 2.0 types whose `labels` was the required type vocabulary, and where it went in 2.1.
_LABELS_BECAME: dict[str, str] = {
    "indicator": "indicator_types",
    "malware": "malware_types",
    "tool": "tool_types",
    "threat-actor": "threat_actor_types",
    "report": "report_types",
}


def _insert_after(obj: dict[str, Any], anchors: tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with key inserted after the first anchor present (or at the end)."""
    anchor = next((a for a in anchors if a in obj), None)
    if anchor is None:
        return {**obj, key: value}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out[k] = v
        if k == anchor:
            out[key] = value
    return out


def upgrade_20_to_21(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A new STIX 2.1 dict for a STIX 2.0 object, and notes on what changed.

    The input is not modified. Properties already in 2.1 form (some 2.0
    producers send `is_family` or `pattern_type`) are kept as they are.
    """
    notes: list[str] = []
    obj_type = obj.get("type")

    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k == "spec_version":
            continue  # re-placed right after `type` below
        out[k] = v
        if k == "type":
            out["spec_version"] = "2.1"
    if "spec_version" not in out:
        out = {"spec_version": "2.1", **out}

    if obj_type == "malware" and "is_family" not in out:
        out = _insert_after(out, ("description", "name"), "is_family", True)
        notes.append("malware: added is_family=true (required in 2.1)")

    labels = out.get("labels")
    if isinstance(obj_type, str) and obj_type in _LABELS_BECAME and isinstance(labels, list):
        target = _LABELS_BECAME[obj_type]
        if labels == [obj_type] and obj_type in ("malware", "tool"):
            del out["labels"]
            notes.append(f"{obj_type}: dropped placeholder labels {labels!r}")
        elif target not in out:
            out = {(target if k == "labels" else k): v for k, v in out.items()}
            notes.append(f"{obj_type}: moved labels to {target}")

    if obj_type == "indicator" and "pattern_type" not in out and "pattern" in out:
        out = _insert_after(out, ("pattern",), "pattern_type", "stix")
        notes.append("indicator: added pattern_type='stix' (required in 2.1)")

    return out, notes
