"""CISA Known Exploited Vulnerabilities (KEV) catalog (JSON) -> STIX vulnerabilities.

One entry gives one `vulnerability` whose id is the one every threatmesh source
derives for a CVE (`derived_id('vulnerability', CVE)`, as the report extractor
does), so KEV enriches the vulnerability a report names instead of doubling it:

    name                               the CVE id
    description                        shortDescription
    external_references                cve (external_id, NVD url), cwe ids, the KEV catalog
    created                            dateAdded (the day CISA added it)
    modified                           the catalog's dateReleased: a new release gives new versions,
                                       the same file read twice gives the same ones
    x_threatmesh_known_ransomware_use  True for 'Known', False for 'Unknown'
    x_threatmesh_vendor / _product     vendorProject / product
    x_threatmesh_kev                   {title, date_added, due_date, required_action, notes}
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from threatmesh.errors import InputError
from threatmesh.extract.stix import derived_id
from threatmesh.ingest.formats import Rejected
from threatmesh.ingest.stix_reader import RawObject

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _timestamp(text: str) -> str | None:
    """'2025-08-25' or '2025-08-25T17:04:19.9796Z' -> STIX timestamp (milliseconds)."""
    text = text.strip()
    try:
        if _DATE.match(text):
            moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def kev_vulnerability(entry: Mapping[str, Any], released: str) -> dict[str, Any]:
    """One catalog entry as a vulnerability; ValueError naming the field that is wrong."""
    cve = str(entry.get("cveID", "")).strip().upper()
    if not _CVE.match(cve):
        raise ValueError(f"cveID {entry.get('cveID')!r} is not a CVE id")
    added = _timestamp(str(entry.get("dateAdded", "")))
    if added is None:
        raise ValueError(f"dateAdded {entry.get('dateAdded')!r} is not a date")
    ransomware = str(entry.get("knownRansomwareCampaignUse", "")).strip().lower()
    if ransomware not in ("known", "unknown"):
        raise ValueError(f"knownRansomwareCampaignUse {entry.get('knownRansomwareCampaignUse')!r} is neither "
                         "'Known' nor 'Unknown'")
    refs: list[dict[str, str]] = [{"source_name": "cve", "external_id": cve,
                                   "url": f"https://nvd.nist.gov/vuln/detail/{cve}"},
                                  {"source_name": "cisa-kev", "external_id": cve,
                                   "url": "https://www.cisa.gov/known-exploited-vulnerabilities-catalog"}]
    refs += [{"source_name": "cwe", "external_id": c} for c in entry.get("cwes") or []
             if isinstance(c, str) and c.startswith("CWE-")]
    obj: dict[str, Any] = {
        "type": "vulnerability", "spec_version": "2.1", "id": derived_id("vulnerability", cve),
        "created": added, "modified": max(added, released), "name": cve, "external_references": refs,
        "x_threatmesh_known_ransomware_use": ransomware == "known",
    }
    if isinstance(entry.get("shortDescription"), str) and entry["shortDescription"].strip():
        obj["description"] = entry["shortDescription"].strip()
    for field, key in (("vendorProject", "x_threatmesh_vendor"), ("product", "x_threatmesh_product")):
        if isinstance(entry.get(field), str) and entry[field].strip():
            obj[key] = entry[field].strip()
    kev = {"title": entry.get("vulnerabilityName"), "date_added": entry.get("dateAdded"),
           "due_date": entry.get("dueDate"), "required_action": entry.get("requiredAction"),
           "notes": entry.get("notes")}
    obj["x_threatmesh_kev"] = {k: v.strip() for k, v in kev.items() if isinstance(v, str) and v.strip()}
    return obj


def read_kev(path: Path) -> Iterator[RawObject | Rejected]:
    """Vulnerabilities of a KEV JSON file; a bad entry is a Rejected with its index, the rest go on."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", source=str(path)) from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("vulnerabilities"), list):
        raise InputError("not a KEV catalog: no `vulnerabilities` list", source=str(path))
    released = _timestamp(str(data.get("dateReleased", ""))) or "1970-01-01T00:00:00.000Z"
    index = 0
    for n, entry in enumerate(data["vulnerabilities"]):
        where = f"{path}, vulnerabilities[{n}]"
        if not isinstance(entry, Mapping):
            yield Rejected(where, "an entry must be a JSON object")
            continue
        try:
            obj = kev_vulnerability(entry, released)
        except ValueError as exc:
            yield Rejected(where, str(exc))
            continue
        yield RawObject(str(path), index, obj)
        index += 1
