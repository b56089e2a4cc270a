from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from threatmesh.errors import InvalidObject
from threatmesh.stix.parse import parse_object
from threatmesh.stix.scoid import deterministic_sco_id

UUID = "6b616fc1-1505-48e3-8b2c-0d19337bff38"
RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"


def _malware(**extra: Any) -> dict[str, Any]:
    return {
        "type": "malware", "spec_version": "2.1", "id": f"malware--{UUID}",
        "created": "2017-01-01T00:00:00.000Z", "modified": "2018-01-01T00:00:00.100Z",
        "name": "X", "is_family": True, **extra,
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([1, 2], "must be a JSON object"),
        ({"id": f"malware--{UUID}"}, "missing or non-string `type`"),
        ({"type": "Malware", "id": f"Malware--{UUID}"}, "invalid type name"),
        ({k: v for k, v in _malware().items() if k != "id"}, "missing or non-string `id`"),
        (_malware(id=f"tool--{UUID}"), "does not start with its type"),
        (_malware(id="malware--1234"), "does not end in a UUID"),
        ({k: v for k, v in _malware().items() if k != "modified"}, "missing `modified`"),
        ({k: v for k, v in _malware().items() if k != "created"}, "missing `created`"),
        (_malware(modified="yesterday"), "`modified` is not a STIX timestamp"),
        (_malware(spec_version="2.2"), "unknown spec_version"),
        (_malware(confidence=float("nan")), "NaN"),
        ({"type": "marking-definition", "spec_version": "2.1", "id": f"marking-definition--{UUID}"}, "missing `created`"),
    ],
)
def test_rejections_carry_reason_and_id(raw: Any, reason: str) -> None:
    with pytest.raises(InvalidObject) as info:
        parse_object(raw)
    assert reason in info.value.reason
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        assert info.value.object_id == raw["id"]


def test_accepted_object_fields() -> None:
    obj = _malware(created_by_ref=f"identity--{UUID}", revoked=True, object_marking_refs=[RED], x_custom={"a": 1})
    parsed = parse_object(obj)
    assert parsed.id == obj["id"] and parsed.type == "malware" and parsed.spec_version == "2.1"
    assert parsed.version == "2018-01-01T00:00:00.100000Z"
    assert parsed.tlp == "red" and parsed.revoked is True
    assert parsed.created_by_ref == f"identity--{UUID}"
    assert parsed.upgraded_from is None and parsed.warnings == ()
    assert orjson.loads(parsed.json) == obj
    assert list(orjson.loads(parsed.json)) == list(obj)  # key order kept
    assert RED in parsed.index.markings and ("object_marking_refs", RED) not in parsed.index.refs


def test_stix20_detection_and_upgrade() -> None:
    old = {k: v for k, v in _malware(labels=["malware"]).items() if k not in ("spec_version", "is_family")}
    parsed = parse_object(old)
    assert parsed.upgraded_from == "2.0"
    assert parsed.data["spec_version"] == "2.1" and parsed.data["is_family"] is True
    assert "labels" not in parsed.data
    assert any("upgraded from STIX 2.0" in w for w in parsed.warnings)
    custom = {"type": "x-mitre-tactic", "id": f"x-mitre-tactic--{UUID}", "created": "2017-01-01T00:00:00Z", "modified": "2017-01-01T00:00:00Z"}
    assert parse_object(custom, bundle_spec_version="2.0").upgraded_from == "2.0"
    assert parse_object(_malware(), bundle_spec_version="2.0").upgraded_from is None  # object says 2.1


def test_version_keys() -> None:
    md = {"type": "marking-definition", "spec_version": "2.1", "id": f"marking-definition--{UUID}",
          "created": "2017-01-20T00:00:00Z", "definition_type": "statement", "definition": {"statement": "x"}}
    assert parse_object(md).version == "2017-01-20T00:00:00.000000Z"
    sco = {"type": "ipv4-addr", "id": "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4", "value": "198.51.100.3"}
    parsed = parse_object(sco)
    assert parsed.version == "" and parsed.warnings == ()
    assert parsed.index.observables == (("ipv4-addr", "198.51.100.3"),)


def test_sco_with_non_deterministic_id_is_kept_with_warning() -> None:
    sco = {"type": "domain-name", "spec_version": "2.1", "id": f"domain-name--{UUID}", "value": "example.com"}
    parsed = parse_object(sco)
    assert parsed.id == sco["id"]
    expected = deterministic_sco_id(sco)
    assert any(expected is not None and expected in w for w in parsed.warnings)


def test_big_integers_fall_back_to_json_and_round_trip() -> None:
    obj = _malware(x_big=2**70)
    parsed = parse_object(obj)
    assert json.loads(parsed.json) == obj
    assert any("54-bit" in w for w in parsed.warnings)
    with pytest.raises(InvalidObject, match="54-bit"):
        parse_object(obj, strict=True)


def test_list_identity_class_lenient_vs_strict() -> None:
    identity = {"type": "identity", "id": f"identity--{UUID}", "created": "2020-01-01T00:00:00Z",
                "modified": "2020-01-01T00:00:00Z", "name": "n", "identity_class": ["unknown"]}
    lenient = parse_object(identity, bundle_spec_version="2.0")
    assert any("identity_class" in w for w in lenient.warnings)
    with pytest.raises(InvalidObject) as info:
        parse_object(identity, strict=True, bundle_spec_version="2.0")
    assert "identity_class" in info.value.reason and "not valid STIX 2.1" in info.value.reason


def test_strict_accepts_valid_and_custom() -> None:
    parsed = parse_object(_malware(x_custom_prop="kept"), strict=True)
    assert parsed.data["x_custom_prop"] == "kept"
    with pytest.raises(InvalidObject, match="is_family"):
        parse_object({k: v for k, v in _malware().items() if k != "is_family"}, strict=True)


# --- corpus ---------------------------------------------------------------


def _corpus_objects(root: Path) -> Iterator[tuple[Path, str | None, Any]]:
    """(file, bundle spec_version, raw object) for every STIX object under corpora/stix."""
    for path in sorted(root.rglob("*.json")):
        if {"schemas", "interop"} & set(path.relative_to(root).parts):
            continue  # JSON Schemas, not STIX content
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, list):
            if not all(isinstance(o, dict) and "type" in o for o in loaded):
                continue  # unit42's playbooks.json is an index of the bundles, not STIX
            yield from ((path, None, o) for o in loaded)
        elif isinstance(loaded, dict) and loaded.get("type") == "bundle":
            yield from ((path, loaded.get("spec_version"), o) for o in loaded.get("objects", []))
        elif isinstance(loaded, dict) and "type" in loaded:
            yield path, None, loaded


def test_every_corpus_object_parses_leniently_and_round_trips(corpora_dir: Path) -> None:
    accepted = rejected = upgraded = 0
    for path, bundle_sv, raw in _corpus_objects(corpora_dir / "stix"):
        try:
            parsed = parse_object(raw, bundle_spec_version=bundle_sv)
        except InvalidObject as e:
            rejected += 1
            assert e.reason, path
            continue
        accepted += 1
        upgraded += parsed.upgraded_from == "2.0"
        assert orjson.loads(parsed.json) == parsed.data, (path, parsed.id)
        if parsed.upgraded_from is None:
            assert parsed.data == raw
    assert accepted > 50_000 and upgraded > 50_000
    assert rejected == 0


def test_strict_rejects_unit42_list_identity_class(corpora_dir: Path) -> None:
    path = corpora_dir / "stix" / "unit42-playbooks" / "playbook_json" / "moneylibra.json"
    bundle = json.loads(path.read_text())
    rejected: dict[str, str] = {}
    for raw in bundle["objects"]:
        try:
            parse_object(raw, strict=True, bundle_spec_version=bundle["spec_version"])
        except InvalidObject as e:
            rejected[raw["id"]] = e.reason
    assert set(rejected) == {
        "identity--3624ad40-fd78-4997-a2a4-f1cd5a6e16d2",
        "identity--984b9321-5427-4b2c-a3bc-ca7d75e14bb8",
    }
    assert all("identity_class" in reason for reason in rejected.values())


def test_strict_accepts_oasis_examples(corpora_dir: Path) -> None:
    root = corpora_dir / "stix" / "oasis-cti-documentation"
    count = 0
    for path, bundle_sv, raw in _corpus_objects(root):
        parse_object(raw, strict=True, bundle_spec_version=bundle_sv)
        count += 1
    assert count > 50


def test_every_attack_object_parses_as_21(corpora_dir: Path) -> None:
    """The whole enterprise bundle parses leniently (its speed is measured in bench/ingest.py)."""
    path = corpora_dir / "attack" / "enterprise-attack-18.1-stix21-converted.json"
    objects = orjson.loads(path.read_bytes())["objects"]
    assert len(objects) == 24_771
    parsed = [parse_object(o) for o in objects]
    assert all(p.spec_version == "2.1" for p in parsed)
    assert len({(p.id, p.version) for p in parsed}) == 24_771
