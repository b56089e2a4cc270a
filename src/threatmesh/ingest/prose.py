"""Reports in prose (text, Markdown, AsciiDoc, HTML, PDF) -> one STIX report with its indicators.

The report keeps the source text as its `description`; its `object_refs` list
every indicator and observable extracted (`threatmesh.extract`), the
vulnerabilities (CVE ids) and attack patterns (ATT&CK technique ids) it names,
and the intrusion sets and malware whose names or aliases occur in the text.

Names are resolved through a `NameIndex` (name or alias -> STIX id). The
knowledge-pack alias resolution of `threatmesh.kb` is not available yet, so
`name_index_from_store` builds the index from the intrusion sets, malware and
attack patterns already in the store (names, aliases, ATT&CK external ids).
The intrusion set named most often is taken as the report's subject, and each
indicator gets an `indicates` relationship to it (and to the malware named most
often); the other names are only referenced by the report.

Ids are deterministic: the report's is UUIDv5 over the text's SHA-256, the
indicators' over (type, value, source file name).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threatmesh.errors import InputError
from threatmesh.extract.stix import derived_id, objects_for
from threatmesh.extract.text import ExtractOptions, extract, unique_values
from threatmesh.extract.values import Detected, IocType
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.ingest.textfile import decode_head, read_text, stable_timestamp

if TYPE_CHECKING:
    from threatmesh.ingest.formats import ReadOptions, Rejected


def _rejected(location: str, reason: str, object_id: str | None = None) -> Rejected:
    # Imported here: formats.py imports this module to register its reader.
    from threatmesh.ingest.formats import Rejected

    return Rejected(location, reason, object_id)


PROSE_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".adoc", ".asciidoc", ".html", ".htm", ".pdf")
MAX_PDF_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NamedObject:
    id: str
    type: str  # intrusion-set, malware, attack-pattern
    name: str


@dataclass(slots=True)
class NameIndex:
    """Names and aliases (folded to lower case) -> the objects they name."""

    names: dict[str, list[NamedObject]] = field(default_factory=dict)
    techniques: dict[str, NamedObject] = field(default_factory=dict)  # 'T1059.001' -> attack-pattern

    def add(self, obj: Mapping[str, Any]) -> None:
        kind, obj_id, name = obj.get("type"), obj.get("id"), obj.get("name")
        if kind not in ("intrusion-set", "malware", "attack-pattern", "threat-actor", "tool") or not (
                isinstance(obj_id, str) and isinstance(name, str)):
            return
        named = NamedObject(obj_id, kind, name)
        if kind == "attack-pattern":
            for ref in obj.get("external_references") or []:
                if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack":
                    self.techniques[str(ref.get("external_id"))] = named
            return
        for alias in {name, *[a for a in (obj.get("aliases") or obj.get("x_mitre_aliases") or [])
                              if isinstance(a, str)]}:
            if len(alias.strip()) >= 3:
                self.names.setdefault(alias.strip().lower(), []).append(named)

    def find(self, text: str) -> Counter[NamedObject]:
        """How many times each named object occurs in the text (whole words)."""
        counts: Counter[NamedObject] = Counter()
        if not self.names:
            return counts
        lowered = text.lower()
        for alias, objects in self.names.items():
            hits = len(re.findall(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", lowered))
            if hits:
                for named in objects:
                    counts[named] += hits
        return counts


def name_index_from_store(store: Any) -> NameIndex:
    """A NameIndex over the intrusion sets, malware, tools and attack patterns in a Store."""
    import orjson

    wanted = {"intrusion-set", "malware", "attack-pattern", "threat-actor", "tool"}
    index = NameIndex()
    for stored in store.iter_objects():
        if stored.type in wanted and not stored.revoked:
            index.add(orjson.loads(stored.json))
    return index


class ProseFormat:
    name = "prose"
    # Taken from directories: not .txt, which folders of feeds hold as notes and
    # licences; a .txt named on the command line is still read.
    suffixes = tuple(s for s in PROSE_SUFFIXES if s not in (".txt", ".text"))

    def detect(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        if lower.endswith(".pdf") or head.startswith(b"%PDF-"):
            return True
        text = decode_head(head).lstrip()
        if text[:1] == "{" or text.startswith("[{"):
            return False
        return lower.endswith(PROSE_SUFFIXES) or text[:15].lower().startswith(("<!doctype html", "<html"))

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]:
        text = document_text(name)
        names = options.known_names() if options.known_names else None
        yield from report_objects(name, text, timestamp=stable_timestamp(name), names=names)


def document_text(name: str) -> str:
    """The readable text of a document, by its kind."""
    lower = name.lower()
    if lower.endswith(".pdf") or _starts_with(name, b"%PDF-"):
        return pdf_text(name)
    text = read_text(name)
    if lower.endswith((".html", ".htm")) or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        return html_text(text)
    return text


def _starts_with(name: str, magic: bytes) -> bool:
    try:
        with open(name, "rb") as stream:
            return stream.read(len(magic)) == magic
    except OSError:
        return False


def pdf_text(name: str) -> str:
    """Text of every page (pypdf); a broken PDF is an InputError naming the file."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=name) from exc
    if len(data) > MAX_PDF_BYTES:
        raise InputError("PDF larger than 128 MiB", source=name)
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            ZeroDivisionError, OSError, AssertionError, UnicodeError) as exc:
        # pypdf raises many kinds on damaged files; each is a damaged input, not a bug here.
        raise InputError(f"unreadable PDF: {type(exc).__name__}: {exc}", source=name) from exc
    return "\n\f\n".join(pages)


class _TextOfHtml(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table",
              "section", "article", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts))


def report_objects(name: str, text: str, *, timestamp: str, names: NameIndex | None = None,
                   options: ExtractOptions | None = None) -> Iterator[RawObject | Rejected]:
    """The report, its indicators, observables, vulnerabilities, attack patterns and relationships."""
    hits = extract(text, options)
    grouped = unique_values(hits)
    source = f"file:{Path(name).name}"
    objects: list[dict[str, Any]] = []
    seen: set[str] = set()
    names = names or NameIndex()
    indicator_ids: list[str] = []
    for (kind, value), occurrences in grouped.items():
        if kind is IocType.ATTACK_TECHNIQUE and value in names.techniques:
            continue  # referenced below as the attack pattern already stored
        first = occurrences[0]
        extra = {"description": f"found at line {first.line}, column {first.column} as {first.found!r}"}
        for obj in objects_for(Detected(kind, value, first.defanged), source=source, timestamp=timestamp,
                               extra=extra if kind not in (IocType.CVE, IocType.ATTACK_TECHNIQUE) else None):
            if obj["id"] not in seen:
                seen.add(obj["id"])
                objects.append(obj)
                if obj["type"] == "indicator":
                    indicator_ids.append(obj["id"])
    named = names.find(text)
    refs = [obj["id"] for obj in objects]
    refs += [n.id for n in named if n.id not in seen]
    refs += [names.techniques[v].id for (k, v) in grouped if k is IocType.ATTACK_TECHNIQUE and v in names.techniques]
    if not refs:
        yield _rejected(name, "no indicator, CVE, technique or known actor found in the text")
        return
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    title = _title(text) or Path(name).name
    report = {
        "type": "report", "spec_version": "2.1", "id": derived_id("report", digest),
        "created": timestamp, "modified": timestamp, "name": title, "published": timestamp,
        "report_types": ["threat-report"], "description": text, "object_refs": list(dict.fromkeys(refs)),
        "external_references": [{"source_name": "file", "description": Path(name).name,
                                 "hashes": {"SHA-256": digest}}],
    }
    index = 0
    for obj in [report, *objects, *_subject_links(indicator_ids, named, timestamp)]:
        yield RawObject(name, index, obj)
        index += 1


def _subject_links(indicator_ids: Iterable[str], named: Counter[NamedObject], timestamp: str
                   ) -> Iterator[dict[str, Any]]:
    """`indicates` from each indicator to the intrusion set and the malware the text names most."""
    subjects = []
    for kind in ("intrusion-set", "malware"):
        ranked = [(count, n) for n, count in named.items() if n.type == kind]
        if ranked:
            subjects.append(max(ranked, key=lambda pair: (pair[0], pair[1].name))[1])
    for indicator_id in indicator_ids:
        for subject in subjects:
            yield {"type": "relationship", "spec_version": "2.1",
                   "id": derived_id("relationship", indicator_id, "indicates", subject.id),
                   "created": timestamp, "modified": timestamp, "relationship_type": "indicates",
                   "source_ref": indicator_id, "target_ref": subject.id}


def _title(text: str) -> str | None:
    for line in text.splitlines()[:20]:
        stripped = line.strip().lstrip("=#").strip()
        if stripped:
            return stripped[:200]
    return None

