"""Fuzzing the list, table, incident, HTML and PDF readers: only threatmesh errors, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from threatmesh.errors import ThreatmeshError
from threatmesh.ingest.formats import ReadOptions
from threatmesh.ingest.incidents import CFR_MAPPING, read_incidents
from threatmesh.ingest.lists import ListFormat, read_list, read_table
from threatmesh.ingest.prose import ProseFormat, html_text, pdf_text

_CELLS = st.sampled_from(["Title", "Date", "Sponsor", "Victims", "Affiliations", "Category", "Type", "value", "type",
                          ",", "\t", "\n", '"', "evil[.]com", "1.2.3.4", "md5", "China", "1/2/2020", "# Aliases: a, b",
                          "x" * 40, "\r\n", "\x00", "é", "hxxp://x[.]y/z"])
_TEXT = st.one_of(st.text(max_size=400), st.lists(_CELLS, max_size=80).map("".join))
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_TEXT, st.dictionaries(st.sampled_from(["value", "type"]), st.sampled_from(["value", "type", "Data", "x"])))
def test_tables_and_lists(text: str, mapping: dict[str, str]) -> None:
    try:
        list(read_table("f.csv", text, ReadOptions(mapping=mapping), "2024-01-01T00:00:00.000Z"))
        list(read_list("f.txt", text, "2024-01-01T00:00:00.000Z"))
    except ThreatmeshError:
        pass


@_SETTINGS
@given(_TEXT)
def test_incidents(text: str) -> None:
    header = ",".join(["Title", "Date", "Affiliations", "Description", "Response", "Victims", "Sponsor", "Type",
                       "Category", "Sources_1", "Sources_2", "Sources_3"])
    try:
        list(read_incidents("f.csv", header + "\n" + text, CFR_MAPPING, "2024-01-01T00:00:00.000Z"))
        list(read_incidents("f.csv", text, CFR_MAPPING, "2024-01-01T00:00:00.000Z"))
    except ThreatmeshError:
        pass


@_SETTINGS
@given(st.binary(max_size=600))
def test_raw_bytes_through_detection_and_reading(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name in ("f.csv", "f.txt", "f.html"):
            path = Path(folder) / name
            path.write_bytes(data)
            for reader in (ListFormat(), ProseFormat()):
                try:
                    reader.detect(str(path), data)
                    list(reader.read(str(path), ReadOptions()))
                except ThreatmeshError:
                    pass


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=300))
def test_pdf_bytes(data: bytes, cut: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.pdf"
        path.write_bytes(b"%PDF-1.4\n" + data[:cut] + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF")
        try:
            pdf_text(str(path))
        except ThreatmeshError:
            pass


@_SETTINGS
@given(_TEXT)
def test_html(text: str) -> None:
    html_text("<html><p>" + text)
