"""MISP objects are read with the MISP object templates (../shared/corpora/misp/objects)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent
from stix2patterns.validator import run_validator

from tests.conftest import corpus_path
from tests.helpers import run_cli
from tests.misp.support import corpus_event_files, event
from threatmesh.errors import InputError
from threatmesh.ingest.misp_convert import convert_event, object_problems
from threatmesh.ingest.misp_read import events_in_file
from threatmesh.ingest.misp_templates import (ObjectTemplate, TemplateRegistry, default_registry, parse_template,
                                              read_template_dir)

# ESET's own `corporate-asset` template (uuid 975f6d0e-...) is not in MISP's public template
# repository, nor in PyMISP: the one object of the corpora that no template describes.
PRIVATE_TEMPLATES = {"corporate-asset"}


@pytest.fixture(scope="module")
def templates() -> TemplateRegistry:
    registry = TemplateRegistry(source="corpus")
    for item in read_template_dir(corpus_path("misp", "objects", "objects")):
        assert isinstance(item, ObjectTemplate), item
        registry.add(item)
    return registry


def _object(name: str, attributes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An event holding one object; attributes are (relation, value[, type, to_ids]) dicts."""
    body = event()
    body["Attribute"] = []
    body["Object"] = [{"uuid": "cccccccc-0000-4000-8000-000000000001", "name": name, "timestamp": "1709290000",
                       "Attribute": [{"uuid": f"cccccccc-0000-4000-8000-{n + 2:012d}", "to_ids": True, **a}
                                     for n, a in enumerate(attributes)], **extra}]
    return body


def _converted(body: dict[str, Any], registry: TemplateRegistry) -> dict[str, Any]:
    objects, rejected = convert_event(body, "test.json", registry)
    assert not rejected, rejected
    found = [o for o in objects if o["id"].endswith("cccccccc-0000-4000-8000-000000000001")]
    assert len(found) == 1
    return found[0]


def test_templates_load_with_their_fields(templates: TemplateRegistry) -> None:
    assert len(templates) >= 400
    domain_ip = templates.by_name["domain-ip"]
    assert domain_ip.uuid == "43b3b146-77eb-4931-b4cc-b66c60f28734" and domain_ip.version >= 11
    assert domain_ip.attributes["ip"].misp_type == "ip-dst" and domain_ip.attributes["ip"].multiple
    assert domain_ip.required_one_of == ("ip", "domain", "hostname")
    assert templates.by_name["ip-port"].attributes["src-port"].misp_type == "port"
    assert any(t.required for t in templates.by_uuid.values())
    assert templates.resolve("43B3B146-77EB-4931-B4CC-B66C60F28734", None) is domain_ip  # uuid, any case
    assert templates.resolve(None, "domain-ip") is domain_ip


def test_pymisp_ships_the_default_templates() -> None:
    registry = default_registry()
    assert len(registry) >= 400 and "file" in registry.by_name


def test_a_broken_template_is_reported_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "definition.json").write_text(json.dumps(
        {"name": "good", "uuid": "0f0f0f0f-0000-4000-8000-000000000001", "version": 1,
         "attributes": {"c2": {"misp-attribute": "domain", "ui-priority": 1}}}))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "definition.json").write_text('{"name": "bad", "uuid": ')
    (tmp_path / "typeless").mkdir()
    (tmp_path / "typeless" / "definition.json").write_text(json.dumps(
        {"name": "typeless", "uuid": "0f0f0f0f-0000-4000-8000-000000000002", "attributes": {"x": {}}}))
    items = list(read_template_dir(tmp_path))
    assert [i.name for i in items if isinstance(i, ObjectTemplate)] == ["good"]
    errors = [i for i in items if isinstance(i, InputError)]
    assert len(errors) == 2
    assert any("bad/definition.json" in e.describe() and "line 1" in e.describe() for e in errors)
    assert any("typeless" in e.describe() and "no misp-attribute type" in e.describe() for e in errors)
    with pytest.raises(InputError):
        parse_template([], "x.json")


def test_every_object_of_the_event_corpus_resolves_to_a_template(templates: TemplateRegistry) -> None:
    objects = unresolved = 0
    names: set[str] = set()
    for path in corpus_event_files():
        try:
            events = list(events_in_file(str(path)))
        except InputError:
            continue  # the truncated ESET event: tested in test_reader
        for _, body in events:
            for obj in body.get("Object") or []:
                objects += 1
                template = templates.resolve(obj.get("template_uuid"), obj.get("name"))
                if template is None:
                    assert obj["name"] in PRIVATE_TEMPLATES, obj["name"]
                    unresolved += 1
                    continue
                names.add(template.name)
                assert template.uuid == obj["template_uuid"]  # by its uuid, not only by name
                for attribute in obj.get("Attribute") or []:
                    assert attribute["object_relation"] in template.attributes, (obj["name"], attribute)
    assert objects > 2000 and unresolved == 1
    assert {"android-app", "file", "domain-ip", "ip-port", "url", "pe", "email"} <= names


def test_converted_corpus_objects_name_their_template(templates: TemplateRegistry) -> None:
    path = corpus_path("reports", "eset", "mozi", "mozi.misp-event.json")
    (location, body), = list(events_in_file(str(path)))
    objects, _ = convert_event(body, location, templates)
    records = [o["x_misp_object"] for o in objects if "x_misp_object" in o]
    assert records
    for record in records:
        if record["name"] in PRIVATE_TEMPLATES:
            assert record["template_problems"] == ["no known template (read by its attribute types alone)"]
            continue
        assert record["template_uuid"] == templates.by_name[record["name"]].uuid
        assert record["template_version"].isdigit() and "template_problems" not in record
    assert [p for _, p in object_problems(body, templates)] == [
        "no known template (uuid 975f6d0e-69de-4e68-b9ad-e0a52c5b5dec)"]


def test_attributes_without_a_type_are_read_as_their_template_says(templates: TemplateRegistry) -> None:
    # A producer that writes only relations and values (no types): the template gives them.
    body = _object("domain-ip", [{"object_relation": "domain", "value": "evil.example"},
                                 {"object_relation": "ip", "value": "203.0.113.9"}])
    indicator = _converted(body, templates)
    assert indicator["type"] == "indicator"
    assert indicator["pattern"] == ("[domain-name:value = 'evil.example' AND "
                                    "domain-name:resolves_to_refs[*].value = '203.0.113.9']")
    records = indicator["x_misp_object"]["attributes"]
    assert [r["type"] for r in records] == ["domain", "ip-dst"]  # kept for the way back to MISP
    # without the template, nothing says what they are
    bare = _converted(body, TemplateRegistry())
    assert bare["type"] == "x-misp-object"
    assert bare["x_misp_object"]["template_problems"] == ["no known template (read by its attribute types alone)"]


def test_the_template_type_wins_over_a_loose_one(templates: TemplateRegistry) -> None:
    body = _object("url", [{"object_relation": "url", "type": "text", "value": "http://evil.example/a"}])
    assert _converted(body, templates)["pattern"] == "[url:value = 'http://evil.example/a']"


def test_connections_take_their_side_from_the_relation(templates: TemplateRegistry) -> None:
    body = _object("ip-port", [{"object_relation": "ip-src", "type": "ip-src", "value": "198.51.100.4"},
                               {"object_relation": "src-port", "type": "port", "value": "4444"},
                               {"object_relation": "dst-port", "type": "port", "value": "443"}])
    pattern = _converted(body, templates)["pattern"]
    assert pattern == ("[network-traffic:src_ref.value = '198.51.100.4' AND network-traffic:src_port = 4444 "
                       "AND network-traffic:dst_port = 443]")
    assert not run_validator(pattern)


def test_a_url_object_holds_its_port_in_the_url(templates: TemplateRegistry) -> None:
    body = _object("url", [{"object_relation": "url", "type": "url", "value": "https://evil.example:8443/x"},
                           {"object_relation": "port", "type": "port", "value": "8443"},
                           {"object_relation": "scheme", "type": "text", "value": "https"}])
    assert _converted(body, templates)["pattern"] == "[url:value = 'https://evil.example:8443/x']"


def test_values_of_a_multiple_relation_are_alternatives(templates: TemplateRegistry) -> None:
    body = _object("android-app", [{"object_relation": "name", "type": "text", "value": "spy"},
                                   {"object_relation": "sha256", "type": "sha256", "value": "a" * 64},
                                   {"object_relation": "sha256", "type": "sha256", "value": "b" * 64},
                                   {"object_relation": "certificate", "type": "sha1", "value": "c" * 40}])
    obj = _converted(body, templates)
    assert obj["pattern"] == (f"[(file:hashes.'SHA-256' = '{'a' * 64}' OR file:hashes.'SHA-256' = '{'b' * 64}')] "
                              f"AND [x509-certificate:hashes.'SHA-1' = '{'c' * 40}']")
    assert not run_validator(obj["pattern"])
    # as observed data (not to_ids) each APK is its own file
    for attribute in body["Object"][0]["Attribute"]:
        attribute["to_ids"] = False
    objects, _ = convert_event(body, "test.json", templates)
    files = [o for o in objects if o["type"] == "file"]
    assert sorted(f["hashes"]["SHA-256"] for f in files) == ["a" * 64, "b" * 64]


def test_an_object_that_misses_what_its_template_requires_is_kept_and_reported(templates: TemplateRegistry) -> None:
    body = _object("file", [{"object_relation": "state", "type": "text", "value": "Malicious"},
                            {"object_relation": "md5", "type": "md5", "value": "d" * 32},
                            {"object_relation": "md5", "type": "md5", "value": "e" * 32},
                            {"object_relation": "colour", "type": "text", "value": "red"}])
    obj = _converted(body, templates)
    problems = obj["x_misp_object"]["template_problems"]
    assert problems == ["relations not in the template: colour", "repeats single-valued md5"]
    body = _object("domain-ip", [{"object_relation": "text", "type": "text", "value": "just a note"}])
    obj = _converted(body, templates)
    assert obj["type"] == "x-misp-object"
    assert obj["x_misp_object"]["template_problems"] == ["holds none of ip, domain, hostname (one is required)"]
    assert object_problems(body, templates) == [("Object cccccccc-0000-4000-8000-000000000001 (domain-ip)",
                                                 "holds none of ip, domain, hostname (one is required)")]
    required = next(t for t in templates.by_uuid.values() if t.required)
    assert required.problems([])[0].startswith("lacks required ")


def test_export_gives_back_the_template_of_each_object(templates: TemplateRegistry) -> None:
    from threatmesh.export.misp import event_for

    body = _object("domain-ip", [{"object_relation": "ip", "value": "203.0.113.9"}],
                   template_uuid="43b3b146-77eb-4931-b4cc-b66c60f28734", template_version="5")
    objects, _ = convert_event(body, "test.json", templates)
    report = next(o for o in objects if o["type"] == "report")
    exported = event_for(report, [o for o in objects if o["type"] != "report"], name="", fallback_uuid="",
                         objects={o["id"]: o for o in objects})
    (obj,) = exported["Object"]
    assert (obj["name"], obj["template_uuid"], obj["template_version"]) == (
        "domain-ip", "43b3b146-77eb-4931-b4cc-b66c60f28734", "5")
    assert obj["Attribute"][0]["type"] == "ip-dst"  # the type the template gave the typeless attribute
    loaded = MISPEvent()
    loaded.load(copy.deepcopy({"Event": exported}))
    assert loaded.objects[0].template_version == "5"
    # an object that named no template gets the one it was read with
    del body["Object"][0]["template_uuid"], body["Object"][0]["template_version"]
    objects, _ = convert_event(body, "test.json", templates)
    record = next(o for o in objects if "x_misp_object" in o)["x_misp_object"]
    assert record["template_uuid"] == templates.by_name["domain-ip"].uuid
    assert record["template_version"] == str(templates.by_name["domain-ip"].version)


def test_a_node_reads_objects_with_the_templates_loaded_into_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "node"
    assert run_cli(capsys, home, "init").code == 0
    folder = tmp_path / "templates" / "beacon"
    folder.mkdir(parents=True)
    (folder / "definition.json").write_text(json.dumps({
        "name": "beacon", "uuid": "0f0f0f0f-0000-4000-8000-0000000000be", "version": 2, "meta-category": "network",
        "description": "a beacon", "requiredOneOf": ["c2"],
        "attributes": {"c2": {"misp-attribute": "domain", "ui-priority": 1, "multiple": True},
                       "interval": {"misp-attribute": "counter", "ui-priority": 0}}}))
    events = tmp_path / "e.json"
    body = _object("beacon", [{"object_relation": "c2", "type": "text", "value": "c2.evil.example"}])
    events.write_text(json.dumps({"Event": body}))
    check = run_cli(capsys, home, "kb", "objects", str(events), "--json")
    assert check.code == 1 and [r["problem"] for r in check.json()] == ["no known template (uuid none)"]
    # corpus templates and the organisation's own folder
    loaded = run_cli(capsys, home, "kb", "load", "misp-objects", str(corpus_path("misp", "objects", "objects")),
                     "--json")
    assert loaded.code == 0 and loaded.json()["loaded"] >= 400
    loaded = run_cli(capsys, home, "kb", "load", "misp-objects", str(tmp_path / "templates"), "--json")
    assert loaded.code == 0 and loaded.json()["loaded"] == 1 and loaded.json()["stored"] >= 401
    check = run_cli(capsys, home, "kb", "objects", str(events), "--json")
    assert check.code == 0 and check.json() == []
    assert run_cli(capsys, home, "ingest", str(events)).code == 0
    shown = run_cli(capsys, home, "show", "indicator--cccccccc-0000-4000-8000-000000000001", "--json")
    assert shown.code == 0
    assert "[domain-name:value = 'c2.evil.example']" in shown.out
    broken = tmp_path / "broken" / "x"
    broken.mkdir(parents=True)
    (broken / "definition.json").write_text("{")
    assert run_cli(capsys, home, "kb", "load", "misp-objects", str(tmp_path / "broken")).code == 3
