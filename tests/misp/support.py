"""Helpers of the MISP tests: corpus event files, and small events built in the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import corpus_path


def corpus_event_files() -> list[Path]:
    """Every MISP event document in the corpora (not the schemas, feed lists or other JSON)."""
    found: list[Path] = []
    for root in (corpus_path("misp", "events"), corpus_path("reports", "eset")):
        for path in sorted(root.rglob("*.json")):
            try:
                document = json.loads(path.read_bytes())
            except ValueError:
                if path.name == "malicious_pypi_packages.misp-event.json":  # truncated upstream
                    found.append(path)
                continue
            if isinstance(document, dict) and ("response" in document or "Event" in document
                                               or "Attribute" in document):
                found.append(path)
    return found


def event(**extra: Any) -> dict[str, Any]:
    """A small MISP event: one to_ids domain, one plain IP, one comment, one file object."""
    return {
        "uuid": "11111111-2222-4333-8444-555555555555",
        "info": "test event",
        "date": "2024-03-01",
        "timestamp": "1709290000",
        "published": True,
        "threat_level_id": "2",
        "analysis": "2",
        "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "Tag": [{"name": "tlp:green"}, {"name": "osint:certainty=\"75\""}],
        "Attribute": [
            {"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "type": "domain", "category": "Network activity",
             "value": "evil.example", "to_ids": True, "timestamp": "1709290000",
             "Tag": [{"name": "tlp:amber"}]},
            {"uuid": "aaaaaaaa-0000-4000-8000-000000000002", "type": "ip-dst", "category": "Network activity",
             "value": "203.0.113.7", "to_ids": False, "timestamp": "1709290000"},
            {"uuid": "aaaaaaaa-0000-4000-8000-000000000003", "type": "comment", "category": "Other",
             "value": "seen in phishing", "to_ids": False, "timestamp": "1709290000"},
        ],
        "Object": [
            {"uuid": "bbbbbbbb-0000-4000-8000-000000000001", "name": "file", "meta-category": "file",
             "timestamp": "1709290000",
             "Attribute": [
                 {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "type": "filename", "object_relation": "filename",
                  "category": "Payload delivery", "value": "it's.exe", "to_ids": True},
                 {"uuid": "bbbbbbbb-0000-4000-8000-000000000003", "type": "sha256", "object_relation": "sha256",
                  "category": "Payload delivery", "value": "a" * 64, "to_ids": True},
             ]},
        ],
        **extra,
    }
