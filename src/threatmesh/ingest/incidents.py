"""Incident datasets (CSV) -> STIX incidents with attribution, victims and sectors.

A mapping (built in for the CFR Cyber Operations Tracker; any other dataset
via a YAML or JSON file, `--format incidents --map incidents=FILE`) names the
columns. Each row gives, with deterministic ids (UUIDv5 of mapping name, title,
date and description for the incident; of the folded name for actors; of the ISO code for
countries), exactly this representation, which analytics rely on:

    incident                 name (title), description,
                             x_threatmesh_date          'YYYY-MM-DD' (absent when unknown)
                             x_threatmesh_operation_type lower-case, e.g. 'espionage' (absent when unknown)
                             x_threatmesh_sponsor       the sponsor text as given (absent when empty)
                             x_threatmesh_response      the response text as given (absent when empty)
                             external_references        the dataset row + each source URL
    incident --attributed-to--> intrusion-set   the actor of `Affiliations` (one per named group)
    incident --attributed-to--> location        the sponsoring state: location with `country` (ISO 3166-1 alpha-2)
    intrusion-set --attributed-to--> location   the same sponsor, when an actor is named
    incident --targets--> identity              the victims: name = the `Victims` text,
                                                `sectors` = the `Category` values (lower-case, dashed)
    incident --targets--> location              each country the victims text or the title names
    identity --located-at--> location           the same countries

So: sponsor per year = incident.x_threatmesh_date[:4] x the incident's
`attributed-to` location; victim country = the incident's `targets` locations;
sector = the `sectors` of the incident's `targets` identity; type =
x_threatmesh_operation_type. Unknown or empty stays absent: no sponsor that is
not a recognisable country (a shifted cell such as 'Espionage' is reported as a
Rejected item and left unknown), no victim country the text does not name.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threatmesh.errors import InputError
from threatmesh.extract.stix import derived_id
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.ingest.textfile import decode_head, read_text, stable_timestamp

if TYPE_CHECKING:
    from threatmesh.ingest.formats import ReadOptions, Rejected


def _rejected(location: str, reason: str, object_id: str | None = None) -> Rejected:
    # Imported here: formats.py imports this module to register its reader.
    from threatmesh.ingest.formats import Rejected

    return Rejected(location, reason, object_id)


CFR_MAPPING: dict[str, Any] = {
    "name": "cfr-cyber-operations-tracker",
    "detect": ["Title", "Date", "Affiliations", "Sponsor", "Victims"],
    "columns": {
        "title": "Title", "date": "Date", "description": "Description", "actor": "Affiliations",
        "sponsor": "Sponsor", "victims": "Victims", "sector": "Category", "type": "Type",
        "response": "Response", "sources": ["Sources_1", "Sources_2", "Sources_3"],
    },
    "date_formats": ["%m/%d/%Y", "%Y-%m-%d"],
    # The tracker names states by their ISO 3166 names; its CSV export cuts
    # "Korea, Democratic People's Republic of" at the comma, leaving "Korea" on
    # the 79 rows of North Korean operations (Lazarus Group, APT 37, Kimsuky...).
    "sponsor_aliases": {"Korea": "KP"},
}
_KNOWN_FIELDS = {"title", "date", "description", "actor", "sponsor", "victims", "sector", "type", "response",
                 "sources"}
_ACTOR_PREFIX_RE = re.compile(r"^\W*(?:believed to be the work of|associated with|attributed to|"
                              r"possibly|likely|suspected)\W*", re.IGNORECASE)
# Demonyms and short forms that CFR texts use; pycountry knows names, not adjectives.
_COUNTRY_WORDS: dict[str, str] = {
    "american": "US", "u.s.": "US", "us": "US", "usa": "US", "united states": "US", "ukrainian": "UA",
    "russian": "RU", "russia": "RU", "chinese": "CN", "iranian": "IR", "iran": "IR", "israeli": "IL",
    "south korean": "KR", "south korea": "KR", "north korean": "KP", "north korea": "KP", "german": "DE",
    "french": "FR", "british": "GB", "uk": "GB", "united kingdom": "GB", "indian": "IN", "japanese": "JP",
    "saudi": "SA", "taiwanese": "TW", "taiwan": "TW", "vietnamese": "VN", "vietnam": "VN", "pakistani": "PK",
    "belarusian": "BY", "georgian": "GE", "turkish": "TR", "turkey": "TR", "australian": "AU",
    "canadian": "CA", "polish": "PL", "italian": "IT", "spanish": "ES", "dutch": "NL", "belgian": "BE",
    "swiss": "CH", "swedish": "SE", "norwegian": "NO", "finnish": "FI", "danish": "DK", "estonian": "EE",
    "latvian": "LV", "lithuanian": "LT", "czech": "CZ", "hungarian": "HU", "austrian": "AT", "greek": "GR",
    "egyptian": "EG", "syrian": "SY", "lebanese": "LB", "palestinian": "PS", "palestine": "PS",
    "emirati": "AE", "qatari": "QA", "kuwaiti": "KW", "jordanian": "JO", "afghan": "AF", "kazakh": "KZ",
    "mexican": "MX", "brazilian": "BR", "philippine": "PH", "filipino": "PH", "the philippines": "PH",
    "thai": "TH", "indonesian": "ID", "malaysian": "MY", "singaporean": "SG", "mongolian": "MN",
    "tibetan": "CN", "uyghur": "CN", "hong kong": "HK", "bahraini": "BH", "moldovan": "MD",
    "armenian": "AM", "azerbaijani": "AZ", "ethiopian": "ET", "nigerian": "NG", "kenyan": "KE",
}


class IncidentFormat:
    name = "incidents"
    suffixes = (".csv",)

    def detect(self, name: str, head: bytes) -> bool:
        if not name.lower().endswith(".csv"):
            return False
        first = decode_head(head).split("\n", 1)[0]
        header = {cell.strip() for cell in next(csv.reader([first]), [])}
        return set(CFR_MAPPING["detect"]) <= header

    def read(self, name: str, options: ReadOptions) -> Iterator[RawObject | Rejected]:
        mapping = load_mapping(options.mapping["incidents"]) if "incidents" in options.mapping else CFR_MAPPING
        yield from read_incidents(name, read_text(name), mapping, stable_timestamp(name))


def load_mapping(path: str) -> dict[str, Any]:
    """A mapping file (YAML or JSON): name, columns (field -> column), optional date_formats."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read mapping: {exc.strerror or exc}", source=path) from exc
    try:
        if path.lower().endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError or json.JSONDecodeError, both malformed input
        raise InputError(f"malformed mapping: {exc}", source=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict) or not data.get("name"):
        raise InputError("a mapping needs 'name' and 'columns' (field: column)", source=path)
    unknown = set(data["columns"]) - _KNOWN_FIELDS
    if unknown:
        raise InputError(f"unknown fields {sorted(unknown)}; known: {sorted(_KNOWN_FIELDS)}", source=path)
    if "title" not in data["columns"]:
        raise InputError("the mapping must name the 'title' column", source=path)
    return data


def read_incidents(name: str, text: str, mapping: Mapping[str, Any], timestamp: str
                   ) -> Iterator[RawObject | Rejected]:
    columns: Mapping[str, Any] = mapping["columns"]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for field in columns.values() for c in ([field] if isinstance(field, str) else field)
               if c not in header]
    if missing:
        yield _rejected(f"{name}, line 1", f"columns {missing} of mapping {mapping['name']!r} are not in the header")
        return
    emitted: set[str] = set()
    index = 0
    try:
        for row in reader:
            line = reader.line_num
            for item in _row_objects(name, line, row, mapping, timestamp):
                if not isinstance(item, dict):
                    yield item
                elif item["id"] not in emitted:  # actors and countries recur on many rows
                    emitted.add(item["id"])
                    yield RawObject(name, index, item)
                    index += 1
    except csv.Error as exc:
        yield _rejected(f"{name}, line {reader.line_num}", f"unreadable CSV: {exc}; the rest was skipped")


def _cell(row: Mapping[str, Any], columns: Mapping[str, Any], field: str) -> str:
    column = columns.get(field)
    value = row.get(column) if isinstance(column, str) else None
    return " ".join(value.split()) if isinstance(value, str) else ""


def _row_objects(name: str, line: int, row: Mapping[str, Any], mapping: Mapping[str, Any], timestamp: str
                 ) -> Iterator[dict[str, Any] | Rejected]:
    columns = mapping["columns"]
    where = f"{name}, line {line}"
    title = _cell(row, columns, "title")
    if not title:
        yield _rejected(where, "row without a title; not imported")
        return
    raw_date = _cell(row, columns, "date")
    date = _parse_date(raw_date, mapping.get("date_formats") or ["%Y-%m-%d"])
    if raw_date and date is None:
        yield _rejected(where, f"date {raw_date!r} not understood; the incident is kept without a date")
    common = {"spec_version": "2.1", "created": timestamp, "modified": timestamp}
    # The description is part of the key: the tracker has distinct operations under one title and date.
    incident_id = derived_id("incident", mapping["name"], title, date or raw_date, _cell(row, columns, "description"))
    incident: dict[str, Any] = {"type": "incident", "id": incident_id, **common, "name": title}
    description = _cell(row, columns, "description")
    if description:
        incident["description"] = description
    if date:
        incident["x_threatmesh_date"] = date
    op_type = _cell(row, columns, "type")
    if op_type and not _looks_like_url(op_type):
        incident["x_threatmesh_operation_type"] = op_type.lower()
    elif op_type:
        yield _rejected(where, f"type {op_type[:80]!r} is a URL (shifted columns?); left unknown", incident_id)
    sponsor_text = _cell(row, columns, "sponsor")
    if sponsor_text:
        incident["x_threatmesh_sponsor"] = sponsor_text
    response = _cell(row, columns, "response")
    if response:
        incident["x_threatmesh_response"] = response
    refs = [{"source_name": mapping["name"], "description": f"{Path(name).name} line {line}"}]
    source_columns = columns.get("sources") or []
    for column in [source_columns] if isinstance(source_columns, str) else source_columns:
        url = " ".join(str(row.get(column) or "").split())
        if url:
            refs.append({"source_name": "source", "url": url} if _looks_like_url(url)
                        else {"source_name": "source", "description": url})
    incident["external_references"] = refs
    yield incident

    sponsors = []
    aliases = mapping.get("sponsor_aliases") or {}
    for part in (p.strip().strip('"') for p in sponsor_text.split(",")) if sponsor_text else []:
        code = aliases.get(part) or country_code(part)
        if code:
            sponsors.append(_country(code, common))
        elif part:
            yield _rejected(where, f"sponsor {part!r} is not a recognisable country; left unknown", incident_id)
    for sponsor in sponsors:
        yield sponsor
        yield _relationship(incident_id, "attributed-to", sponsor["id"], common)
    for actor in _actors(_cell(row, columns, "actor")):
        actor_obj = {"type": "intrusion-set", "id": derived_id("intrusion-set", actor.lower()), **common,
                     "name": actor}
        yield actor_obj
        yield _relationship(incident_id, "attributed-to", actor_obj["id"], common)
        for sponsor in sponsors:
            yield _relationship(actor_obj["id"], "attributed-to", sponsor["id"], common)
    victims = _cell(row, columns, "victims")
    sectors = [s for s in (_slug(p) for p in _cell(row, columns, "sector").split(",")) if s and "http" not in s]
    countries = sorted(countries_named(f"{victims} {title}"))
    if victims or sectors:
        victim: dict[str, Any] = {"type": "identity", "id": derived_id("identity", "victim", incident_id), **common,
                                  "name": victims or f"victims of {title}"}
        if sectors:
            victim["sectors"] = sectors
        yield victim
        yield _relationship(incident_id, "targets", victim["id"], common)
    for code in countries:
        location = _country(code, common)
        yield location
        yield _relationship(incident_id, "targets", location["id"], common)
        if victims or sectors:
            yield _relationship(derived_id("identity", "victim", incident_id), "located-at", location["id"], common)


def _relationship(source: str, kind: str, target: str, common: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "relationship", "id": derived_id("relationship", source, kind, target), **common,
            "relationship_type": kind, "source_ref": source, "target_ref": target}


def _country(code: str, common: Mapping[str, Any]) -> dict[str, Any]:
    import pycountry

    country = pycountry.countries.get(alpha_2=code)
    label = getattr(country, "common_name", None) or getattr(country, "name", code)
    return {"type": "location", "id": derived_id("location", "country", code), **common, "name": label,
            "country": code}


def _actors(text: str) -> list[str]:
    """Group names of an affiliation cell; a state ('Russia's government') is not a group."""
    text = _ACTOR_PREFIX_RE.sub("", text.replace("?", " ")).strip(" .")
    if not text or re.search(r"\bgovernment\b|\bunknown\b", text, re.IGNORECASE):
        return []
    return [p.strip(" .") for p in re.split(r",|;| and ", text) if len(p.strip(" .")) >= 2]


def _parse_date(text: str, formats: list[str]) -> str | None:
    for fmt in formats:
        try:
            return datetime.strptime(text.strip(), fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def _looks_like_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def country_code(text: str) -> str | None:
    """ISO 3166-1 alpha-2 of a country name as datasets spell it ('Russian Federation', 'Iran'), or None."""
    import pycountry

    key = text.strip().strip('"').strip()
    if not key:
        return None
    if key.lower() in _COUNTRY_WORDS:
        return _COUNTRY_WORDS[key.lower()]
    try:
        return str(pycountry.countries.lookup(key).alpha_2)
    except LookupError:
        return None


def countries_named(text: str) -> set[str]:
    """ISO codes of the countries a text names, by name or demonym, whole words only."""
    import pycountry

    found: set[str] = set()
    lowered = f" {text.lower()} "
    for word, code in _COUNTRY_WORDS.items():
        if len(word) > 3 and re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", lowered):
            found.add(code)
    if re.search(r"(?<!\w)u\.s\.", lowered):
        found.add("US")
    for country in pycountry.countries:
        for label in {country.name, getattr(country, "common_name", country.name)}:
            if "," not in label and re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", lowered):
                found.add(country.alpha_2)
    return found
