"""Indicator lists and tables: CSV/TSV with a header, plain lists, maltrail trails, Sophos typed CSVs.

- Tables: the value column and the optional type column are found by name
  (`value`, `indicator`, `ioc`, `data`, ...; `type`, `indicator_type`, ...) or
  given with `--map value=Data,type=Indicator`. A type column is a hint that is
  checked against the value: 'MD5' on a 40-digit value is reported, not stored.
- Plain lists: one value a line, `#` comments.
- maltrail trails: the `# Aliases:` line names an intrusion set (called after
  the file, `apt_sofacy.txt` -> 'sofacy', aliases from the line) that every
  indicator `indicates`; `# Reference:` URLs become its external references.

Every value that is not an indicator (a description row, a file name, a bare
word) is a `Rejected` item with its file and line. Encodings: UTF-8, UTF-8 with
BOM, UTF-16 (with or without BOM), legacy code pages via charset-normalizer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threatmesh.extract.stix import derived_id, objects_for
from threatmesh.extract.values import TYPE_ALIASES, IocType, detect_type
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.ingest.textfile import decode_head, read_text, stable_timestamp

if TYPE_CHECKING:
    from threatmesh.ingest.formats import ReadOptions, Rejected


def _rejected(location: str, reason: str, object_id: str | None = None) -> Rejected:
    # Imported here: formats.py imports this module to register its reader.
    from threatmesh.ingest.formats import Rejected

    return Rejected(location, reason, object_id)


VALUE_COLUMNS = ("value", "indicator_value", "ioc_value", "ioc value", "data", "observable", "ioc", "indicator")
# 'Indicator' names the type in Sophos' tables (Indicator,Data,Note): it is taken
# as the type column when another column holds the values.
TYPE_COLUMNS = ("type", "indicator_type", "ioc_type", "ioc type", "indicator type", "kind", "category", "indicator")
_MALTRAIL_RE = re.compile(r"^#\s*(Aliases|Reference)\s*:\s*(.*)$", re.IGNORECASE)


class ListFormat:
    """CSV/TSV tables and plain or maltrail lists."""

    name = "list"
    suffixes = (".csv", ".tsv", ".list")

    def detect(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        text = decode_head(head).lstrip()
        if text[:1] in ("{", "["):
            return False
        if lower.endswith((".csv", ".tsv", ".list")):
            return True
        return lower.endswith((".txt", ".text")) and looks_like_list(text)

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]:
        text = read_text(name)
        timestamp = stable_timestamp(name)
        if name.lower().endswith((".csv", ".tsv")) or options.mapping:
            yield from read_table(name, text, options, timestamp)
        else:
            yield from read_list(name, text, timestamp)


def looks_like_list(text: str) -> bool:
    """Most non-comment lines are a single token: a list, not prose."""
    lines = [line.strip() for line in text.splitlines()[:200] if line.strip() and not line.startswith("#")]
    if not lines:
        return text.lstrip().startswith("#")
    single = sum(1 for line in lines if len(line.split()) == 1)
    return single >= 0.8 * len(lines)


def _dialect(text: str, name: str) -> type[csv.Dialect] | csv.Dialect:
    if name.lower().endswith(".tsv"):
        return csv.excel_tab
    first = text.split("\n", 1)[0]
    return csv.excel_tab if first.count("\t") > first.count(",") else csv.excel


def _column(header: list[str], wanted: str | None, candidates: tuple[str, ...]) -> int | None:
    folded = [h.strip().lower() for h in header]
    if wanted is not None:
        return folded.index(wanted.strip().lower()) if wanted.strip().lower() in folded else -1
    for candidate in candidates:
        if candidate in folded:
            return folded.index(candidate)
    return None


def read_table(name: str, text: str, options: ReadOptions, timestamp: str) -> Iterator[RawObject | Rejected]:
    rows = csv.reader(io.StringIO(text, newline=""), _dialect(text, name))
    try:
        header = next(rows)
    except StopIteration:
        return
    except csv.Error as exc:
        yield _rejected(f"{name}, line 1", f"unreadable header: {exc}")
        return
    value_col = _column(header, options.mapping.get("value"), VALUE_COLUMNS)
    type_col = _column(header, options.mapping.get("type"), TYPE_COLUMNS)
    if type_col is not None and type_col == value_col:
        type_col = None
    if value_col == -1 or type_col == -1:
        missing = options.mapping.get("value") if value_col == -1 else options.mapping.get("type")
        yield _rejected(f"{name}, line 1", f"--map names column {missing!r}, not in the header {header}")
        return
    if value_col is None:
        if len(header) == 1:
            # A one-column file whose first line is a value, not a header.
            rows = csv.reader(io.StringIO(text, newline=""), _dialect(text, name))
            value_col = 0
        else:
            yield _rejected(f"{name}, line 1", f"no value column in the header {header}; "
                                              "name it with --map value=COLUMN")
            return
    index = 0
    try:
        for row in rows:
            line = rows.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if value_col >= len(row):
                yield _rejected(f"{name}, line {line}", f"row has {len(row)} columns, no column {value_col + 1}")
                continue
            hint_text = row[type_col].strip() if type_col is not None and type_col < len(row) else ""
            for item in _one_value(name, line, row[value_col], hint_text, timestamp):
                if isinstance(item, dict):
                    yield RawObject(name, index, item)
                    index += 1
                else:
                    yield item
    except csv.Error as exc:
        yield _rejected(f"{name}, line {rows.line_num}", f"unreadable CSV: {exc}; the rest of the file was skipped")


def _one_value(name: str, line: int, value: str, hint_text: str, timestamp: str,
               extra: dict[str, Any] | None = None) -> Iterator[dict[str, Any] | Rejected]:
    hint: IocType | None = None
    if hint_text:
        hint = TYPE_ALIASES.get(hint_text.lower())
        if hint is None:
            yield _rejected(f"{name}, line {line}", f"type {hint_text!r} is not an indicator type (value {value[:80]!r})")
            return
    detected = detect_type(value, hint, in_list=True)
    if detected is None:
        shown = value.strip()[:120]
        reason = (f"{shown!r} is not a valid {hint.value}" if hint else f"{shown!r} is not an indicator")
        yield _rejected(f"{name}, line {line}", reason)
        return
    yield from objects_for(detected, source=f"file:{Path(name).name}", timestamp=timestamp, extra=extra)


def read_list(name: str, text: str, timestamp: str) -> Iterator[RawObject | Rejected]:
    aliases: list[str] = []
    references: list[str] = []
    index = 0
    intrusion_set: dict[str, Any] | None = None
    for line_no, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#"):
            meta = _MALTRAIL_RE.match(line)
            if meta and meta.group(1).lower() == "aliases":
                aliases.extend(a.strip() for a in meta.group(2).split(",") if a.strip())
            elif meta:
                references.append(meta.group(2).strip())
            continue
        if intrusion_set is None and aliases:
            intrusion_set = _intrusion_set(name, aliases, references, timestamp)
            yield RawObject(name, index, intrusion_set)
            index += 1
        value = line.split()[0]
        for item in _one_value(name, line_no, _maltrail_value(value), "", timestamp):
            if not isinstance(item, dict):
                yield item
                continue
            yield RawObject(name, index, item)
            index += 1
            if intrusion_set is not None and item["type"] == "indicator":
                yield RawObject(name, index, {
                    "type": "relationship", "spec_version": "2.1",
                    "id": derived_id("relationship", item["id"], "indicates", intrusion_set["id"]),
                    "created": timestamp, "modified": timestamp, "relationship_type": "indicates",
                    "source_ref": item["id"], "target_ref": intrusion_set["id"]})
                index += 1


def _maltrail_value(value: str) -> str:
    """maltrail writes URLs without a scheme ('evil.com/x.php'): give them one so they read as URLs."""
    if "/" in value and "://" not in value and not value.startswith("/") and not re.match(r"^[\d.]+/\d{1,2}$", value):
        return "http://" + value
    return value


def _intrusion_set(name: str, aliases: list[str], references: list[str], timestamp: str) -> dict[str, Any]:
    stem = Path(name).stem
    set_name = stem[4:] if stem.lower().startswith("apt_") else stem
    obj: dict[str, Any] = {
        "type": "intrusion-set", "spec_version": "2.1", "id": derived_id("intrusion-set", "maltrail", set_name.lower()),
        "created": timestamp, "modified": timestamp, "name": set_name, "aliases": aliases,
    }
    refs = [{"source_name": "maltrail", "description": f"trail {Path(name).name}"}]
    refs += [{"source_name": "maltrail reference", "url": url} for url in references if url]
    obj["external_references"] = refs
    return obj
