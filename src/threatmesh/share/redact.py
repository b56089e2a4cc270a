"""Redaction of personal and health data from outgoing objects (pure).

What is scanned: the free text of an object, that is `name`, `description`,
`abstract` and `content` (notes), `explanation` (opinions), the
`description` of each external reference, and every string under a custom
`x_` property. What is never touched: indicator patterns, observable objects
(SCOs: their values are the observation itself), ids, timestamps,
vocabularies and refs. A value that is itself the threat, one that appears
as a literal in the object's own indicator pattern or is passed in
`exempt`, is left in the text even where it looks like personal data (an
attacker's e-mail address described in its indicator).

Each finding is replaced by a typed placeholder, `[REDACTED:email]`, and
reported as a `Finding` naming the property path, the kind and the rule
that fired; the redacted text itself is never kept in a finding, so logging
findings leaks nothing.
"""

from __future__ import annotations

import copy
import uuid
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

KINDS = ("email", "phone", "ssn", "mrn", "dob", "patient-name", "internal-host", "internal-ip")


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    """What to redact: built once from the node's Settings (`from_settings`)."""

    enabled: bool = True
    internal_domains: tuple[str, ...] = ()  # 'corp.example.org': it and every name under it
    internal_networks: tuple[str, ...] = ()  # CIDR ranges: '10.0.0.0/8', 'fd00::/8'
    anonymise_sightings: bool = False  # replace where_sighted_refs by a sector-and-country identity
    sector: str = ""  # the node's sector (STIX industry-sector-ov), for anonymised sightings
    country: str = ""  # ISO 3166-1 alpha-2, for anonymised sightings

    @classmethod
    def from_settings(cls, settings: Any) -> "RedactionSettings":
        """From a `threatmesh.settings.Settings` (duck-typed: the core imports no settings loader)."""
        return cls(
            enabled=bool(getattr(settings, "redact", True)),
            internal_domains=tuple(getattr(settings, "internal_domains", ()) or ()),
            internal_networks=tuple(getattr(settings, "internal_networks", ()) or ()),
            anonymise_sightings=bool(getattr(settings, "anonymise_sightings", False)),
            sector=str(getattr(settings, "node_sector", "") or ""),
            country=str(getattr(settings, "node_country", "") or ""),
        )


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str  # one of KINDS
    rule: str  # the rule that fired, e.g. 'email-address', 'ssn-labelled'


@dataclass(frozen=True, slots=True)
class Finding:
    """One redaction in one object: where, what kind, which rule (never the text itself)."""

    object_id: str
    path: str  # 'description', 'external_references[2].description', 'x_notes.summary'
    kind: str
    rule: str


@dataclass(frozen=True, slots=True)
class RedactedObject:
    data: dict[str, Any]  # the object to send (the input itself when nothing was found)
    findings: tuple[Finding, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.findings)


# -- detectors -----------------------------------------------------------------------
#
# Each detector yields candidate spans; `find_spans` keeps the earliest, longest
# ones that do not overlap. Labelled rules ("DOB: ...") redact only the value,
# never the label, so the reader still knows what was there.

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (
    r"(?:\d{4}-\d{2}-\d{2}"
    r"|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\s+\d{{4}})"
)

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# US SSN: area 000, 666 and 9xx, group 00 and serial 0000 are never issued, which
# keeps most look-alike numbers out.
_SSN_BODY = r"(?!000|666|9\d\d)\d{3}-?(?!00)\d{2}-?(?!0000)\d{4}"
_SSN = re.compile(rf"(?<![\w-])(?!000|666|9\d\d)\d{{3}}-(?!00)\d{{2}}-(?!0000)\d{{4}}(?![\w-])")
_SSN_LABELLED = re.compile(rf"(?i)\b(?:SSN|social\s+security\s+(?:number|no\.?|#))\s*[:#]?\s*({_SSN_BODY})(?![\w-])")
_DOB_LABELLED = re.compile(
    rf"(?i)(?:\bDOB\b|\bD\.O\.B\.|\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bborn(?:\s+on)?\b)\s*[:\-]?\s*({_DATE})(?![\w/-]*\d)"
)
_MRN_LABELLED = re.compile(
    r"(?i)(?:\bMRN\b|\bMR\s*#|\bMR\s+no\.?|\bmedical\s+record(?:\s+(?:number|no\.?|#))?|\bpatient\s+(?:id|number|no\.?))"
    r"\s*[:#]?\s*(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{3,}[A-Z0-9])(?![\w-])"
)
_NAME_WORD = r"[^\W\d_][\w'’-]*"
_CAP_WORD = r"[^\W\d_a-z][\w'’-]*"  # starts with an upper-case letter (any script)
_PATIENT_COLON = re.compile(
    rf"(?:\b(?i:patient(?:'s)?(?:\s+name)?|pt\.?))\s*:\s*({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}})"
)
_PATIENT_BARE = re.compile(rf"\b(?i:patient)\s+({_CAP_WORD}(?:\s+{_CAP_WORD}){{1,3}})")
# Words that end a name found after a label.
_NOT_NAME = frozenset({
    "was", "is", "has", "had", "were", "and", "or", "the", "a", "an", "of", "in", "at", "on", "to", "for", "with",
    "mrn", "dob", "id", "room", "called", "who", "which", "had", "did", "data", "record", "records",
})

# Groups of up to 4 digits, the last up to 8 (German and Italian numbers end in long groups).
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(\d{1,4}\))?(?:[\s.-]\d{1,4}){1,4}[\s.-]\d{2,8}(?![\w.]*\d)"
)
_PHONE_NANP = re.compile(r"(?<![\w.+-])(?:\(\d{3}\)\s?|\d{3}[.\s-])\d{3}[.-]\d{4}(?![\w-]|\.\d)")
_PHONE_NATIONAL = re.compile(r"(?<![\w.+-])0\d{2,4}[\s-]\d{3,4}[\s-]\d{3,4}(?![\w-]|\.\d)")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d|/\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{1,4}){0,6}(?![\w:]|/\d)")

_VERSION_BEFORE = re.compile(r"(?i)\b(?:version|ver\.?|v|release|build)\s*$")

# Literals of an indicator pattern: the threat itself, never redacted.
_PATTERN_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")

Detector = Callable[[str, RedactionSettings], Iterator[Span]]


def _by_regex(pattern: re.Pattern[str], kind: str, rule: str, group: int = 0) -> Detector:
    def detect(text: str, settings: RedactionSettings) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield Span(match.start(group), match.end(group), kind, rule)

    return detect


def _phones(text: str, settings: RedactionSettings) -> Iterator[Span]:
    for pattern, rule in ((_PHONE_INTL, "phone-international"), (_PHONE_NANP, "phone-nanp"),
                          (_PHONE_NATIONAL, "phone-national")):
        for match in pattern.finditer(text):
            digits = sum(c.isdigit() for c in match.group())
            if 8 <= digits <= 15 or (rule == "phone-nanp" and digits == 10):
                yield Span(match.start(), match.end(), "phone", rule)


def _patient_names(text: str, settings: RedactionSettings) -> Iterator[Span]:
    for pattern, rule in ((_PATIENT_COLON, "patient-name-labelled"), (_PATIENT_BARE, "patient-name-after-word")):
        for match in pattern.finditer(text):
            start = match.start(1)
            words = re.finditer(r"\S+", match.group(1))
            end = start
            capitalised = match.group(1)[:1].isupper()
            for word in words:
                bare = word.group().rstrip(",;.()")
                if not bare or bare.lower() in _NOT_NAME or (capitalised and not bare[:1].isupper()):
                    break
                end = start + word.start() + len(bare)
                if bare != word.group():
                    break  # punctuation ends the name
            if end > start:
                yield Span(start, end, "patient-name", rule)


def _internal_ips(text: str, settings: RedactionSettings) -> Iterator[Span]:
    networks = _networks(settings.internal_networks)
    if not networks:
        return
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            if _VERSION_BEFORE.search(text, max(0, match.start() - 12), match.start()):
                continue  # "version 10.4.2.1" is a software version, not an address
            try:
                address = ipaddress.ip_address(match.group())
            except ValueError:
                continue
            if any(address.version == net.version and address in net for net in networks):
                yield Span(match.start(), match.end(), "internal-ip", f"internal-network:{_network_of(address, networks)}")


def _internal_hosts(text: str, settings: RedactionSettings) -> Iterator[Span]:
    for domain in settings.internal_domains:
        domain = domain.strip(".").lower()
        if not domain:
            continue
        pattern = re.compile(rf"(?i)(?<![\w.@-])(?:[a-z0-9-]+\.)*{re.escape(domain)}(?![\w-]|\.[a-z0-9])")
        for match in pattern.finditer(text):
            yield Span(match.start(), match.end(), "internal-host", f"internal-domain:{domain}")


def _networks(ranges: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(r, strict=False) for r in ranges]


def _network_of(address: Any, networks: list[Any]) -> str:
    return next(str(n) for n in networks if address.version == n.version and address in n)


# Earlier entries win ties of equal start and length: labelled rules are surer.
DETECTORS: tuple[Detector, ...] = (
    _by_regex(_SSN_LABELLED, "ssn", "ssn-labelled", 1),
    _by_regex(_DOB_LABELLED, "dob", "dob-labelled", 1),
    _by_regex(_MRN_LABELLED, "mrn", "mrn-labelled", 1),
    _patient_names,
    _by_regex(_EMAIL, "email", "email-address"),
    _internal_hosts,
    _internal_ips,
    _by_regex(_SSN, "ssn", "ssn-format"),
    _phones,
)


def pattern_literals(pattern: str) -> frozenset[str]:
    """The quoted values of a STIX pattern, lower-cased (they are the threat itself)."""
    return frozenset(m.group(1).replace("\\'", "'").lower() for m in _PATTERN_LITERAL.finditer(pattern))


def find_spans(text: str, settings: RedactionSettings, exempt: frozenset[str] = frozenset()) -> list[Span]:
    """Personal and health data in `text`, as non-overlapping spans in order."""
    candidates = [span for detect in DETECTORS for span in detect(text, settings)]
    candidates.sort(key=lambda s: (s.start, -(s.end - s.start)))
    kept: list[Span] = []
    for span in candidates:
        if kept and span.start < kept[-1].end:
            continue
        if text[span.start:span.end].lower() in exempt:
            continue
        kept.append(span)
    return kept


def redact_text(text: str, settings: RedactionSettings, exempt: frozenset[str] = frozenset()) -> tuple[str, list[Span]]:
    """`text` with each finding replaced by `[REDACTED:kind]`, and the findings."""
    spans = find_spans(text, settings, exempt)
    if not spans:
        return text, []
    parts: list[str] = []
    position = 0
    for span in spans:
        parts.append(text[position:span.start])
        parts.append(f"[REDACTED:{span.kind}]")
        position = span.end
    parts.append(text[position:])
    return "".join(parts), spans


# -- objects -----------------------------------------------------------------------------

TEXT_PROPERTIES = ("name", "description", "abstract", "content", "explanation")
# STIX 2.1 cyber-observable types (§6): observations, never rewritten.
SCO_TYPES = frozenset({
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message", "file",
    "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
    "user-account", "windows-registry-key", "x509-certificate",
})


def redact_object(
    data: Mapping[str, Any], settings: RedactionSettings, exempt: frozenset[str] = frozenset()
) -> RedactedObject:
    """Redact the free text of one object; the input is not modified (a copy is made when needed)."""
    object_id = str(data.get("id", ""))
    if not settings.enabled or data.get("type") in SCO_TYPES:
        return RedactedObject(dict(data))
    threat = exempt | pattern_literals(str(data.get("pattern", ""))) if data.get("type") == "indicator" else exempt
    findings: list[Finding] = []
    out: dict[str, Any] | None = None

    def scrub(value: str, path: str) -> str:
        cleaned, spans = redact_text(value, settings, threat)
        findings.extend(Finding(object_id, path, s.kind, s.rule) for s in spans)
        return cleaned

    for prop in TEXT_PROPERTIES:
        value = data.get(prop)
        if isinstance(value, str):
            cleaned = scrub(value, prop)
            if cleaned != value:
                out = out if out is not None else copy.deepcopy(dict(data))
                out[prop] = cleaned
    references = data.get("external_references")
    if isinstance(references, list):
        for index, reference in enumerate(references):
            if isinstance(reference, Mapping) and isinstance(reference.get("description"), str):
                cleaned = scrub(reference["description"], f"external_references[{index}].description")
                if cleaned != reference["description"]:
                    out = out if out is not None else copy.deepcopy(dict(data))
                    out["external_references"][index]["description"] = cleaned
    for key, value in data.items():
        if key.startswith("x_"):
            cleaned_value = _scrub_nested(value, key, scrub)
            if cleaned_value != value:
                out = out if out is not None else copy.deepcopy(dict(data))
                out[key] = cleaned_value
    return RedactedObject(out if out is not None else dict(data), tuple(findings))


def _scrub_nested(value: Any, path: str, scrub: Callable[[str, str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value, path)
    if isinstance(value, list):
        return [_scrub_nested(v, f"{path}[{i}]", scrub) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _scrub_nested(v, f"{path}.{k}", scrub) for k, v in value.items()}
    return value


# -- anonymised sightings -------------------------------------------------------------------

_ANONYMOUS_CREATED = "2024-01-01T00:00:00.000Z"
_TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"


def anonymous_identity(settings: RedactionSettings) -> dict[str, Any]:
    """The identity that stands for this node in anonymised sightings: sector and country only.

    Its id derives from sector and country alone, so every node of the same
    sector and country shares it, and a recipient cannot tell them apart.
    """
    from threatmesh.share.policy import THREATMESH_NAMESPACE  # policy imports nothing from here

    sector = settings.sector or "unknown-sector"
    country = (settings.country or "unknown").upper()
    identity: dict[str, Any] = {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid5(THREATMESH_NAMESPACE, f'anonymous-sighter|{sector}|{country}')}",
        "created": _ANONYMOUS_CREATED,
        "modified": _ANONYMOUS_CREATED,
        "name": f"An organisation in the {sector} sector, {country}",
        "identity_class": "organization",
        "x_threatmesh_country": country,
        "object_marking_refs": [_TLP_CLEAR],
    }
    if settings.sector:
        identity["sectors"] = [settings.sector]
    return identity


def anonymise_sighting(
    data: Mapping[str, Any], settings: RedactionSettings
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the sighting with `where_sighted_refs` replaced, the identity it now points to).

    A sighting that names no sighter is returned unchanged, with None.
    """
    if data.get("type") != "sighting" or not data.get("where_sighted_refs"):
        return dict(data), None
    identity = anonymous_identity(settings)
    out = dict(data)
    out["where_sighted_refs"] = [identity["id"]]
    return out, identity
