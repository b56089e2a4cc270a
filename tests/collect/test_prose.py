"""Reports in prose -> a STIX report with its indicators, linked to the actors it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from threatmesh.ingest.formats import ReadOptions, reader_for
from threatmesh.ingest.prose import NameIndex, html_text, pdf_text, report_objects
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.errors import InputError
from tests.conftest import corpus_path


def _objects(items: Any) -> list[dict[str, Any]]:
    return [item.data for item in items if isinstance(item, RawObject)]


def test_eset_asciidoc_report_becomes_a_valid_stix_report() -> None:
    import stix2

    path = corpus_path("reports", "eset", "dazzlespy", "README.adoc")
    reader = reader_for(str(path))
    assert reader.name == "prose"
    objects = _objects(reader.read(str(path), ReadOptions()))
    report = objects[0]
    assert report["type"] == "report" and report["description"] == path.read_text("utf-8")
    ids = {o["id"] for o in objects}
    assert set(report["object_refs"]) <= ids and len(report["object_refs"]) == len(objects) - 1
    assert any(o["type"] == "indicator" and o["pattern"] == "[ipv4-addr:value = '88.218.192.128']" for o in objects)
    for obj in objects:
        stix2.parse(obj, allow_custom=False)
    again = _objects(reader.read(str(path), ReadOptions()))
    assert [o["id"] for o in again] == [o["id"] for o in objects]


def test_names_resolve_to_known_actors_and_the_subject_gets_indicates() -> None:
    names = NameIndex()
    apt28 = {"type": "intrusion-set", "id": "intrusion-set--bef4c620-0787-42a8-a96d-b7eb6e85917c", "name": "APT28",
             "aliases": ["Sednit", "Sofacy", "Fancy Bear"]}
    turla = {"type": "intrusion-set", "id": "intrusion-set--c5574ca0-d5a4-490a-b207-e4658e5fd1d7", "name": "Turla"}
    zebrocy = {"type": "malware", "id": "malware--a4f57468-fbd5-49e4-8476-52088220b92d", "name": "Zebrocy"}
    technique = {"type": "attack-pattern", "id": "attack-pattern--7385dfaf-6886-4229-9ecd-6fd678040830",
                 "name": "Command and Scripting Interpreter",
                 "external_references": [{"source_name": "mitre-attack", "external_id": "T1059"}]}
    for obj in (apt28, turla, zebrocy, technique):
        names.add(obj)
    text = "Sednit deployed Zebrocy (Sofacy again) via T1059 from hxxp://c2[.]example-bad.com/a; unlike Turla."
    objects = _objects(report_objects("r.txt", text, timestamp="2024-01-01T00:00:00.000Z", names=names))
    report = objects[0]
    for obj in (apt28, turla, zebrocy, technique):
        assert obj["id"] in report["object_refs"]
    assert not any(o["type"] == "attack-pattern" for o in objects)  # the stored one is referenced, not duplicated
    relationships = [o for o in objects if o["type"] == "relationship"]
    assert {r["target_ref"] for r in relationships} == {apt28["id"], zebrocy["id"]}  # Turla is named once, in passing


def test_a_text_without_anything_is_reported() -> None:
    items = list(report_objects("empty.md", "Nothing to see here.", timestamp="2024-01-01T00:00:00.000Z"))
    assert len(items) == 1 and not isinstance(items[0], RawObject) and "no indicator" in items[0].reason


def test_html_text_skips_scripts_and_keeps_defanged_values() -> None:
    text = html_text("<html><script>var a='1.1.1.1';</script><p>C2: evil[.]com</p><td>8.8.4.4</td></html>")
    assert "1.1.1.1" not in text and "evil[.]com" in text and "8.8.4.4" in text


def _minimal_pdf(line: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_reports_are_read_with_pypdf(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(_minimal_pdf("C2 server evil[.]com and CVE-2023-3519"))
    assert "evil[.]com" in pdf_text(str(path))
    objects = _objects(reader_for(str(path)).read(str(path), ReadOptions()))
    assert {o.get("name") for o in objects} >= {"domain evil.com", "CVE-2023-3519"}


def test_a_broken_pdf_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(_minimal_pdf("x")[:60])
    with pytest.raises(InputError) as info:
        pdf_text(str(path))
    assert str(path) in info.value.describe()
