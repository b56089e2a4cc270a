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
import functools
import ipaddress
import re
import uuid
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
#
# Each detector also names a trigger: a cheap regular expression that every text it
# can match must contain (a necessary condition, never a heuristic). `find_spans`
# first runs all triggers as one compiled alternation and skips the detectors
# when none fires, so that the bulk of outgoing text (no '@', no run of eight
# digits, no label word) costs one regex search. `tests/share/test_redact.py`
# checks on generated text that the pre-screen never changes a result.

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = (
    r"(?:\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"  # 1990-04-12, 1990.04.12, 1990/04/12
    r"|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"  # 04/12/1990, 12.04.90
    rf"|{_MONTHS}\s+{_DAY},?\s+\d{{4}}"  # April 12, 1990; March 3rd, 1982
    rf"|{_DAY}(?:\s+of)?\s+{_MONTHS},?\s+\d{{4}}"  # 12 April 1990; 12th of April 1990
    rf"|\d{{1,2}}[\s/.-]{_MONTHS}[\s/.-]?(?:\d{{4}}|\d{{2}})"  # 12-Apr-1990, 5/Mar/68
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))"  # 19900412 (only ever after a label)
)

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# US SSN: area 000, 666 and 9xx, group 00 and serial 0000 are never issued, which
# keeps most look-alike numbers out.
_SSN_BODY = r"(?!000|666|9\d\d)\d{3}-?(?!00)\d{2}-?(?!0000)\d{4}"
_SSN = re.compile(rf"(?<![\w-])(?!000|666|9\d\d)\d{{3}}-(?!00)\d{{2}}-(?!0000)\d{{4}}(?![\w-])")
_SSN_LABELLED = re.compile(
    rf"(?i)\b(?:SSN|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*({_SSN_BODY})(?![\w-])")
_DOB_LABELLED = re.compile(
    rf"(?i)(?:\bDOB\b|\bD\.O\.B\.?|\bD/O/B\b|\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bbirthday\b|\bborn(?:\s+on)?\b)"
    rf"\s*(?:[:=\-]|\bis\b|\bwas\b)?\s*({_DATE})(?![\w/-]*\d)"
)
_MRN_LABELLED = re.compile(
    r"(?i)(?:\bMRN\b|\bMR\s*#|\bMR\s+no\.?|\bmedical\s+record(?:\s+(?:number|no\.?|#))?|\bpatient\s+(?:id|number|no\.?))"
    r"\s*[:#]?\s*(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{3,}[A-Z0-9])(?![\w-])"
)
_NAME_WORD = r"[^\W\d_][\w'’-]*"
_CAP_WORD = r"[^\W\d_a-z][\w'’-]*"  # starts with an upper-case letter (any script)
# Labels that a person's name follows: a patient's, or someone's in a health record.
_NAME_LABEL = (
    r"patient(?:'s)?(?:\s+name)?|name\s+of\s+(?:the\s+)?patient|pt\.?(?:\s+name)?|resident|client\s+name"
    r"|member\s+name|subscriber(?:\s+name)?|insured(?:\s+name)?|beneficiary|guarantor|next\s+of\s+kin"
)
_TITLE = r"(?:(?i:mr|mrs|ms|miss|mx|dr)\.?\s+)?"
_PATIENT_COLON = re.compile(
    rf"(?:\b(?i:{_NAME_LABEL}))\s*:\s*{_TITLE}({_NAME_WORD}(?:,?\s+{_NAME_WORD}){{0,4}})"
)
_PATIENT_BARE = re.compile(rf"\b(?i:patient)\s+{_TITLE}({_CAP_WORD}(?:,?\s+{_CAP_WORD}){{1,3}})")
# Words that end a name found after a label.
_NOT_NAME = frozenset({
    "was", "is", "has", "had", "were", "and", "or", "the", "a", "an", "of", "in", "at", "on", "to", "for", "with",
    "mrn", "dob", "id", "room", "called", "who", "which", "did", "data", "record", "records", "bed", "ward",
    "admitted", "age", "aged", "sex", "as", "from", "by", "via", "ssn", "phone", "tel", "born",
})
# Lower-case particles of surnames ("de la Cruz", "van der Berg"), which may open a name.
_PARTICLES = frozenset({"de", "del", "della", "der", "den", "di", "da", "dos", "du", "la", "le", "van", "von", "bin",
                        "binti", "al", "el", "ten", "ter", "st", "y"})

# International: + and a country code, then groups (German and Italian numbers end in
# long groups), optionally the national trunk prefix in parentheses: +44 (0)20 ...
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(\d{1,4}\)[\s.-]?\d{1,4})?(?:[\s.-]\d{1,4}){0,4}[\s.-]\d{2,8}(?![\w.]*\d)"
)
_PHONE_INTL_COMPACT = re.compile(r"(?<![\w+])\+\d{8,15}(?![\w.]*\d)")
_PHONE_NANP = re.compile(
    r"(?<![\w.+-])(?:1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[.\s-])\d{3}[.-]\d{4}(?![\w-]|\.\d)"
)
# National numbers with a trunk 0 (UK, France, Germany...): 020 7946 0958, 07700 900123,
# 01 42 68 53 00, 030 12345678.
_PHONE_NATIONAL = re.compile(r"(?<![\w.+-])0\d{1,4}(?:[\s-]\d{2,8}){1,4}(?![\w-]|\.\d)")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d|/\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{1,4}){0,6}(?![\w:]|/\d)")

_VERSION_BEFORE = re.compile(r"(?i)\b(?:version|ver\.?|v|release|build)\s*$")

# Literals of an indicator pattern: the threat itself, never redacted.
_PATTERN_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")

Detector = Callable[[str, RedactionSettings], Iterator[Span]]

# Triggers (see above). Eight digits separated only by phone punctuation: every phone
# (8 to 15 digits, checked below), every SSN (9 digits). Every date of the DOB rule
# holds two digits in a row. IPv4 needs 'digit.digit', IPv6 'hex:hex'.
# Triggers hold alternatives ('|') at their top level only: the pre-screen splits them there.
_DIGIT_RUN = r"\d(?:[\s.()+-]*\d){7}"
_TRIGGER_SSN_LABEL = r"ssn|social"
_TRIGGER_DOB = r"dob|d\.o\.b|d/o/b|birth|born"
_TRIGGER_MRN = r"mr|medical|patient"
_TRIGGER_NAME = (r"patient|\bpt\b|resident|client|member|subscriber|insured|beneficiary|guarantor"
                 r"|next\s+of\s+kin")


def _by_regex(pattern: re.Pattern[str], kind: str, rule: str, group: int = 0) -> Detector:
    def detect(text: str, settings: RedactionSettings) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield Span(match.start(group), match.end(group), kind, rule)

    return detect


def _phones(text: str, settings: RedactionSettings) -> Iterator[Span]:
    for pattern, rule in ((_PHONE_INTL, "phone-international"), (_PHONE_INTL_COMPACT, "phone-international"),
                          (_PHONE_NANP, "phone-nanp"), (_PHONE_NATIONAL, "phone-national")):
        for match in pattern.finditer(text):
            digits = sum(c.isdigit() for c in match.group())
            if rule == "phone-national":
                ok = 10 <= digits <= 12 or (digits == 9 and " " in match.group())
            elif rule == "phone-nanp":
                ok = digits in (10, 11)
            else:
                ok = 8 <= digits <= 15
            if ok:
                yield Span(match.start(), match.end(), "phone", rule)


def _name_end(value: str, start: int) -> int:
    """Where a name found after a label ends (an offset into the text; `start` when there is none).

    A name that opens capitalised stops at the first word that is neither capitalised nor a
    surname particle; any name stops at a stop word or at punctuation. A comma after a lone
    surname ('DOE,', 'de la Cruz,', "O'Brien,") reads as 'SURNAME, Given names' and takes
    the capitalised given names that follow."""
    capitalised = value[:1].isupper()
    end = start
    taken = 0  # words that are not particles
    surname_first = False
    for word in re.finditer(r"\S+", value):
        raw = word.group()
        bare = raw.rstrip(",;.()-–")
        lower = bare.lower()
        if not bare or lower in _NOT_NAME:
            break
        if capitalised and not bare[:1].isupper() and lower not in _PARTICLES:
            break
        if lower not in _PARTICLES or bare[:1].isupper():
            taken += 1
        end = start + word.start() + len(bare)
        if bare == raw:
            continue
        if raw[len(bare):].startswith(",") and not surname_first and taken == 1:
            surname_first, capitalised = True, True
            continue
        break  # other punctuation ends the name
    return end


def _patient_names(text: str, settings: RedactionSettings) -> Iterator[Span]:
    for pattern, rule in ((_PATIENT_COLON, "patient-name-labelled"), (_PATIENT_BARE, "patient-name-after-word")):
        for match in pattern.finditer(text):
            start = match.start(1)
            end = _name_end(match.group(1), start)
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
# Each with its trigger (see the detectors' comment); None: built from the settings.
DETECTORS: tuple[tuple[Detector, str | None], ...] = (
    (_by_regex(_SSN_LABELLED, "ssn", "ssn-labelled", 1), _TRIGGER_SSN_LABEL),
    (_by_regex(_DOB_LABELLED, "dob", "dob-labelled", 1), _TRIGGER_DOB),
    (_by_regex(_MRN_LABELLED, "mrn", "mrn-labelled", 1), _TRIGGER_MRN),
    (_patient_names, _TRIGGER_NAME),
    (_by_regex(_EMAIL, "email", "email-address"), "@"),
    (_internal_hosts, None),
    (_internal_ips, None),
    (_by_regex(_SSN, "ssn", "ssn-format"), _DIGIT_RUN),
    (_phones, _DIGIT_RUN),
)


# A trigger that is a plain string: no regex syntax but escaped punctuation ('d\.o\.b', a domain).
_LITERAL = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])+")
_ESCAPE = re.compile(r"\\(.)")
# `_DIGIT_RUN` on ASCII text without a regex, which would try it from every digit: with
# the punctuation it allows deleted and every digit turned into '0', eight '0' in a row.
# Both byte sets are taken from the regex classes themselves.
_RUN_PUNCTUATION = bytes(c for c in range(128) if re.fullmatch(r"[\s.()+-]", chr(c)))
_RUN_DIGITS = bytes(ord("0") if c < 128 and re.fullmatch(r"\d", chr(c)) else ord("x") for c in range(256))


def _ascii_digit_run(lowered: str) -> bool:
    """Whether `_DIGIT_RUN` matches `lowered` (ASCII only)."""
    return b"00000000" in lowered.encode("ascii").translate(_RUN_DIGITS, _RUN_PUNCTUATION)


def _literal(trigger: str) -> str | None:
    """The string a trigger stands for when it is a plain one, else None."""
    return _ESCAPE.sub(r"\1", trigger) if _LITERAL.fullmatch(trigger) else None


def _needed(trigger: str) -> str:
    """A string that every match of a trigger contains: its plain start, after a word
    boundary (which matches no character); '' when it has none, or when a quantifier
    applies to the start's last character."""
    body = trigger.removeprefix(r"\b")
    start = _LITERAL.match(body)
    if start is None or body[start.end():start.end() + 1] in ("*", "+", "?", "{"):
        return ""
    return _ESCAPE.sub(r"\1", start.group())


@dataclass(frozen=True, slots=True)
class _Prescreen:
    """What every text some detector could match contains (settings add the internal
    domains and, when internal networks are set, address shapes).

    For ASCII text, lower-cased beforehand (several times faster than matching
    ignoring case): the triggers that are plain strings are looked for with `in`; the
    others with one regex each, tried only when the plain string that all their
    matches contain, if any, is there ('pt' of '\\bpt\\b', 'next' of
    'next\\s+of\\s+kin'), and the run of digits by translating bytes
    (`_ascii_digit_run`). A regex of all of them together tries every alternative at
    every position, about three times slower on the short texts of indicators. Any
    other text is searched ignoring case, where Unicode case folding has more
    equivalences."""

    words: tuple[str, ...]
    shapes: tuple[tuple[str, re.Pattern[str]], ...]  # (a string the shape's matches contain, or '', the shape)
    digit_run: bool
    any_case: re.Pattern[str]

    def may_match(self, text: str) -> bool:
        if not text.isascii():
            return self.any_case.search(text) is not None
        lowered = text.lower()
        for word in self.words:
            if word in lowered:
                return True
        for needed, shape in self.shapes:
            if needed in lowered and shape.search(lowered) is not None:
                return True
        return self.digit_run and _ascii_digit_run(lowered)


@functools.lru_cache(maxsize=64)
def _prescreen(settings: RedactionSettings) -> _Prescreen:
    triggers = [part for _, t in DETECTORS if t is not None for part in t.split("|")]
    triggers += [re.escape(d.strip(".").lower()) for d in settings.internal_domains if d.strip(".")]
    if settings.internal_networks:
        triggers += [r"\d\.\d", r"[0-9a-f]:[0-9a-f]"]
    unique = list(dict.fromkeys(triggers))
    words: list[str] = []
    shapes: list[tuple[str, re.Pattern[str]]] = []
    for trigger in unique:
        if trigger == _DIGIT_RUN:
            continue
        plain = _literal(trigger)
        if plain is not None:
            words.append(plain)
            continue
        shapes.append((_needed(trigger), re.compile(trigger)))
    return _Prescreen(tuple(words), tuple(shapes), _DIGIT_RUN in unique, re.compile("(?i)" + "|".join(unique)))


def pattern_literals(pattern: str) -> frozenset[str]:
    """The quoted values of a STIX pattern, lower-cased (they are the threat itself)."""
    return frozenset(m.group(1).replace("\\'", "'").lower() for m in _PATTERN_LITERAL.finditer(pattern))


def find_spans(text: str, settings: RedactionSettings, exempt: frozenset[str] = frozenset()) -> list[Span]:
    """Personal and health data in `text`, as non-overlapping spans in order."""
    if not _prescreen(settings).may_match(text):
        return []
    return _detect(text, settings, exempt)


def _detect(text: str, settings: RedactionSettings, exempt: frozenset[str]) -> list[Span]:
    candidates = [span for detect, _ in DETECTORS for span in detect(text, settings)]
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
# Properties that STIX 2.1 defines for its SDOs, SROs and meta objects (§3-5, §7): none is a
# custom property, so an object with no other key holds no free text under an `x_` key.
STIX_PROPERTIES = frozenset({
    "type", "spec_version", "id", "created_by_ref", "created", "modified", "revoked", "labels", "confidence",
    "lang", "external_references", "object_marking_refs", "granular_markings", "extensions",
    "name", "description", "aliases", "kill_chain_phases", "first_seen", "last_seen", "objective", "action",
    "context", "object_refs", "roles", "identity_class", "sectors", "contact_information", "indicator_types",
    "pattern", "pattern_type", "pattern_version", "valid_from", "valid_until", "infrastructure_types", "goals",
    "resource_level", "primary_motivation", "secondary_motivations", "personal_motivations", "latitude",
    "longitude", "precision", "region", "country", "administrative_area", "city", "street_address",
    "postal_code", "malware_types", "is_family", "operating_system_refs", "architecture_execution_envs",
    "implementation_languages", "capabilities", "sample_refs", "product", "version", "host_vm_ref",
    "operating_system_ref", "installed_software_refs", "configuration_version", "modules",
    "analysis_engine_version", "analysis_definition_version", "submitted", "analysis_started", "analysis_ended",
    "result_name", "result", "analysis_sco_refs", "sample_ref", "abstract", "content", "authors",
    "first_observed", "last_observed", "number_observed", "objects", "explanation", "opinion", "report_types",
    "published", "threat_actor_types", "sophistication", "tool_types", "tool_version", "relationship_type",
    "source_ref", "target_ref", "start_time", "stop_time", "count", "sighting_of_ref", "observed_data_refs",
    "where_sighted_refs", "summary", "definition_type", "definition", "object_ref", "object_modified",
    "contents", "schema", "extension_types", "extension_properties",
})
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
    if not settings.enabled or data.get("type") in SCO_TYPES:
        return RedactedObject(dict(data))
    if not _object_may_match(data, _prescreen(settings)):
        return RedactedObject(data if isinstance(data, dict) else dict(data))
    object_id = str(data.get("id", ""))
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


def _free_text(data: Mapping[str, Any]) -> list[str]:
    """Every string `redact_object` scans (built without a generator: the pre-screen runs
    on every object that leaves, and most hold two or three short strings). Custom
    properties are looked for only in an object with a key that STIX does not define:
    one set comparison, where testing every key's prefix costs several times more."""
    found = []
    for prop in TEXT_PROPERTIES:
        value = data.get(prop)
        if isinstance(value, str):
            found.append(value)
    references = data.get("external_references")
    if isinstance(references, list):
        found.extend(reference["description"] for reference in references
                     if isinstance(reference, Mapping) and isinstance(reference.get("description"), str))
    if not data.keys() <= STIX_PROPERTIES:
        for key, value in data.items():
            if key.startswith("x_"):
                found.extend(_nested_strings(value))
    return found


def _nested_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _nested_strings(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _nested_strings(item)


def findings_prescreen(settings: RedactionSettings) -> Callable[[Mapping[str, Any]], bool]:
    """A test, with `settings` bound, that is False for an object in which `redact_object`
    surely finds nothing (it would give the object back unchanged): lets the egress path,
    which sends most objects as they are, skip building a result for them. True says only
    that it may find something. Bound once per path: looking the pre-screen up by the
    settings (hashing them) added about a tenth to the test of a typical indicator."""
    if not settings.enabled:
        return _finds_nothing
    screen = _prescreen(settings)
    return lambda data: data.get("type") not in SCO_TYPES and _object_may_match(data, screen)


def _finds_nothing(data: Mapping[str, Any]) -> bool:
    return False


def _object_may_match(data: Mapping[str, Any], screen: _Prescreen) -> bool:
    """False when no detector can fire anywhere in the object's free text: one pre-screen
    search over all of it (joined by newlines; a trigger that spans two strings only
    costs a full scan, it never hides one)."""
    text = "\n".join(_free_text(data))
    return bool(text) and screen.may_match(text)


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
