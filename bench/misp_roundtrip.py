"""MISP -> threatmesh -> MISP round trip over every corpus event: what survives, what is lost.

For each event, every attribute (top-level and inside objects, not deleted) is
compared by uuid on value, type, category, to_ids and tags after ingesting the
event into a fresh node and exporting it with `--format misp`, and every object
by uuid on its name and template (uuid, version); the export is also loaded by
PyMISP. Run: .venv/bin/python bench/misp_roundtrip.py
"""

from __future__ import annotations

import copy
import io
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


def _attributes(event: dict[str, Any]) -> dict[str, tuple[str, str, str, bool, tuple[str, ...]]]:
    out = {}
    for attribute in list(event.get("Attribute") or []) + [a for o in event.get("Object") or []
                                                          if not o.get("deleted") for a in o.get("Attribute") or []]:
        if attribute.get("deleted") in (True, "1"):
            continue
        tags = tuple(sorted(t["name"] for t in attribute.get("Tag") or []))
        out[attribute["uuid"]] = (str(attribute["value"]), attribute["type"], attribute.get("category", ""),
                                  attribute.get("to_ids") in (True, "1", 1), tags)
    return out


def _objects(event: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {o["uuid"]: (o.get("name", ""), o.get("template_uuid", ""), str(o.get("template_version", "")))
            for o in event.get("Object") or [] if o.get("deleted") not in (True, "1")}


def _events(document: Any) -> list[dict[str, Any]]:
    if "response" in document:
        return [r["Event"] for r in document["response"]]
    return [document["Event"]] if "Event" in document else [document]


def roundtrip(path: Path, home: Path) -> tuple[Counter[str], list[str]]:
    """Counts ('attributes', 'kept', 'lost:<field>') and notes for one event file."""
    from pymisp import MISPEvent

    from threatmesh.export.misp import export_misp
    from threatmesh.export.select import ExportOptions
    from threatmesh.ingest.pipeline import ingest_paths
    from threatmesh.node import init_node
    from threatmesh.share.policy import Recipient

    counts: Counter[str] = Counter()
    notes: list[str] = []
    node = init_node(home).node
    try:
        report = ingest_paths([str(path)], node.store, collection_id=node.default_collection.id, fmt="misp")
        for r in report.sources[0].rejected:
            notes.append(f"rejected on ingest: {r.location}: {r.reason}")
        out = io.BytesIO()
        export_misp(node.store, out, recipient=Recipient.operator(), default_tlp="amber",
                    options=ExportOptions(extra={"include_warninglisted": "1"}))
    finally:
        node.close()
    exported = json.loads(out.getvalue())
    after: dict[str, Any] = {}
    objects_after: dict[str, tuple[str, str, str]] = {}
    for item in exported["response"]:
        MISPEvent().load(copy.deepcopy(item))  # PyMISP must accept every event (it consumes the dict)
        after.update(_attributes(item["Event"]))
        objects_after.update(_objects(item["Event"]))
    for event in _events(json.loads(path.read_bytes().decode("utf-8-sig"))):
        for obj_uuid, before_obj in _objects(event).items():
            counts["objects"] += 1
            counts["objects kept"] += objects_after.get(obj_uuid) == before_obj
        for attr_uuid, before in _attributes(event).items():
            counts["attributes"] += 1
            now = after.get(attr_uuid)
            if now is None:
                counts["lost:attribute"] += 1
                continue
            lost = [name for name, a, b in zip(("value", "type", "category", "to_ids", "tags"), before, now) if a != b]
            for name in lost:
                counts[f"lost:{name}"] += 1
            if not lost:
                counts["kept"] += 1
    return counts, notes


def corpus_files() -> list[Path]:
    files = []
    for root in (CORPORA / "misp" / "events", CORPORA / "reports" / "eset"):
        for path in sorted(root.rglob("*.json")):
            try:
                doc = json.loads(path.read_bytes().decode("utf-8-sig"))
            except ValueError:
                continue
            if isinstance(doc, dict) and ({"response", "Event", "Attribute"} & set(doc)):
                files.append(path)
    return files


def main() -> int:
    total: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(corpus_files()):
            counts, notes = roundtrip(path, Path(tmp) / str(n))
            total.update(counts)
            for note in notes:
                print(f"  {note}", file=sys.stderr)
    print(f"attributes {total['attributes']}, kept intact {total['kept']} "
          f"({100 * total['kept'] / max(total['attributes'], 1):.2f}%); objects {total['objects']}, "
          f"name and template (uuid, version) kept {total['objects kept']}")
    for key, value in sorted(total.items()):
        if key.startswith("lost:"):
            print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
