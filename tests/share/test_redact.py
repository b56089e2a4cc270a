"""Redaction of personal and health data: measured on a labelled sample, and per object."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from threatmesh.share.redact import (
    RedactionSettings,
    _detect,
    anonymise_sighting,
    find_spans,
    pattern_literals,
    redact_object,
)

SAMPLE = Path(__file__).with_name("redaction_sample.jsonl")
HELD_OUT = Path(__file__).with_name("redaction_heldout.jsonl")
# Written after the rules for international phones, surname-first names and more DOB
# formats were designed, before they were run on it: not tuned against, but its author
# knew what the rules aim at (the old rules scored precision 0.933, recall 0.545 on it).
HELD_OUT_2 = Path(__file__).with_name("redaction_heldout2.jsonl")
SETTINGS = RedactionSettings(
    internal_domains=("stexample.local", "corp.st-example-health.org"),
    internal_networks=("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd12:3456:789a::/48"),
    anonymise_sightings=True,
    sector="healthcare",
    country="us",
)


def _gold(record: dict) -> list[tuple[int, int, str]]:
    spans = []
    for span in record["spans"]:
        start = record["text"].index(span["text"])
        spans.append((start, start + len(span["text"]), span["kind"]))
    return spans


def _measure(sample: Path) -> tuple[float, float, list[str]]:
    records = [json.loads(line) for line in sample.read_text("utf-8").splitlines() if line.strip()]
    predicted_total = predicted_right = gold_total = gold_found = 0
    misses: list[str] = []
    for record in records:
        gold = _gold(record)
        found = find_spans(record["text"], SETTINGS, pattern_literals(record.get("pattern", "")))
        predicted_total += len(found)
        gold_total += len(gold)
        for span in found:  # right: overlaps a labelled span of the same kind
            if any(span.kind == k and span.start < e and s < span.end for s, e, k in gold):
                predicted_right += 1
            else:
                misses.append(f"false positive {span.kind}: {record['text'][span.start:span.end]!r}")
        for s, e, k in gold:  # found: wholly covered by a prediction of the same kind
            if any(span.kind == k and span.start <= s and e <= span.end for span in found):
                gold_found += 1
            else:
                misses.append(f"missed {k}: {record['text'][s:e]!r}")
    precision = predicted_right / predicted_total
    recall = gold_found / gold_total
    print(f"\nredaction on {sample.name}: {len(records)} sentences, {gold_total} labelled spans: "
          f"precision {precision:.3f}, recall {recall:.3f}")
    for miss in misses:
        print("  " + miss)
    return precision, recall, misses


def test_precision_and_recall_on_the_labelled_sample() -> None:
    precision, recall, misses = _measure(SAMPLE)
    assert precision >= 0.95, misses
    assert recall >= 0.95, misses


def test_precision_and_recall_on_the_held_out_sample() -> None:
    """Sentences written after the detectors and never tuned against: the honest figure."""
    precision, recall, misses = _measure(HELD_OUT)
    assert precision >= 0.85, misses
    assert recall >= 0.75, misses


def test_precision_and_recall_on_the_second_held_out_sample() -> None:
    precision, recall, misses = _measure(HELD_OUT_2)
    assert precision >= 0.85, misses
    assert recall >= 0.75, misses


_TOKENS = st.sampled_from([
    "Patient", "patient", "pt", "Pt.", "DOB", "born", "MRN", "SSN", "social", "resident", "name", ":", ",", " ",
    "  ", ".", "-", "(", ")", "+", "/", "@", "0", "1", "7", "12", "044", "555", "2024", "1990", "Smith", "DOE",
    "de", "la", "Cruz", "john", "Maria", "x@y.org", "10.4", "fd12:3456", ":25", "stexample.local", "host",
    "Mar", "3rd", "é", "\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=14).map("".join))
def test_the_prescreen_never_changes_what_is_found(text: str) -> None:
    """find_spans skips the detectors when its trigger regex finds nothing: that must
    never lose a finding (the triggers are necessary conditions, not guesses)."""
    assert find_spans(text, SETTINGS) == _detect(text, SETTINGS, frozenset())


def test_the_prescreen_on_every_labelled_sentence() -> None:
    for sample in (SAMPLE, HELD_OUT, HELD_OUT_2):
        for line in sample.read_text("utf-8").splitlines():
            text = json.loads(line)["text"]
            assert find_spans(text, SETTINGS) == _detect(text, SETTINGS, frozenset()), text


def test_placeholders_are_typed_and_the_label_stays() -> None:
    report = {"type": "report", "id": "report--1", "name": "Intrusion at the clinic",
              "description": "Patient: Maria Gonzalez, DOB: 04/12/1961, host pacs01.stexample.local"}
    result = redact_object(report, SETTINGS)
    assert result.data["description"] == (
        "Patient: [REDACTED:patient-name], DOB: [REDACTED:dob], host [REDACTED:internal-host]")
    assert {(f.path, f.kind) for f in result.findings} == {
        ("description", "patient-name"), ("description", "dob"), ("description", "internal-host")}
    assert report["description"].startswith("Patient: Maria")  # the input is not modified
    assert all("Maria" not in repr(f) for f in result.findings)  # findings never hold the text


def test_the_threat_itself_is_not_redacted() -> None:
    indicator = {"type": "indicator", "id": "indicator--1", "name": "sender ops@darkmail-relay.net",
                 "description": "Phishing from ops@darkmail-relay.net; reported by jane.doe@stexample.local",
                 "pattern": "[email-addr:value = 'ops@darkmail-relay.net']", "pattern_type": "stix"}
    result = redact_object(indicator, SETTINGS)
    assert result.data["name"] == "sender ops@darkmail-relay.net"
    assert result.data["description"] == "Phishing from ops@darkmail-relay.net; reported by [REDACTED:email]"
    assert result.data["pattern"] == indicator["pattern"]
    observable = {"type": "email-addr", "id": "email-addr--1", "value": "victim@stexample.local",
                  "display_name": "Patient: John Smith"}
    assert redact_object(observable, SETTINGS).data == observable


def test_custom_properties_notes_opinions_and_reference_descriptions() -> None:
    note = {"type": "note", "id": "note--1", "content": "call (617) 555-0142", "abstract": "SSN 078-05-1120",
            "x_case": {"contacts": ["a.b@stexample-health.org"], "count": 3},
            "external_references": [{"source_name": "ticket", "description": "from 10.20.4.17"}]}
    result = redact_object(note, SETTINGS)
    assert result.data["content"] == "call [REDACTED:phone]"
    assert result.data["abstract"] == "SSN [REDACTED:ssn]"
    assert result.data["x_case"] == {"contacts": ["[REDACTED:email]"], "count": 3}
    assert result.data["external_references"][0]["description"] == "from [REDACTED:internal-ip]"
    opinion = {"type": "opinion", "id": "opinion--1", "explanation": "MRN: 00482913 is ours", "opinion": "agree"}
    assert redact_object(opinion, SETTINGS).data["explanation"] == "MRN: [REDACTED:mrn] is ours"
    assert not redact_object(opinion, RedactionSettings(enabled=False)).changed


def test_sightings_are_anonymised_to_sector_and_country() -> None:
    sighting = {"type": "sighting", "id": "sighting--1", "sighting_of_ref": "indicator--1",
                "where_sighted_refs": ["identity--0b0c1c5e-0000-4000-8000-000000000001"]}
    out, identity = anonymise_sighting(sighting, SETTINGS)
    assert identity is not None and out["where_sighted_refs"] == [identity["id"]]
    assert identity["sectors"] == ["healthcare"] and identity["x_threatmesh_country"] == "US"
    # Every node of the same sector and country stands behind the same identity.
    again, same = anonymise_sighting(sighting, RedactionSettings(sector="healthcare", country="US"))
    assert same is not None and same["id"] == identity["id"]
