"""Indicators of compromise in prose, with their positions, defang-aware.

`extract(text)` finds URLs, e-mail addresses, IPv4/IPv6 addresses and CIDR
ranges, domains, MD5/SHA-1/SHA-256/SHA-512 hashes, CVE ids and ATT&CK technique
ids, whether written plainly or defanged (`hxxp`, `hXXps:/`, `[.]`, `(.)`,
`[dot]`, `[:]`, `[at]`, `[@]`, and ESET's AsciiDoc `` `+...+` `` wrappers).
Each hit keeps the text as found, the refanged canonical value and its
position (offset, line, column) in the original text.

How the classic false positives are kept out:

- file names that look like domains (`invoice.pdf`, `svchost.exe`): a domain
  must end in a top-level domain of the Public Suffix List; names whose TLD is
  also a common file extension (`setup.zip`, `ssl.py`) need a defang mark; a
  name right after `\\`, `/` or `%` is a path or a detection name
  (`Win32/Sednit.BG`), and a plain name with an upper-case TLD (`ASP.NET`) is
  code or a product, not a host;
- version numbers that look like IPs: octets above 255, leading zeros, a fifth
  dotted part, or a word like `version`/`build` just before are rejected;
- hashes inside longer hex strings: a digest must stand alone, bounded by
  non-alphanumerics, and have exactly 32, 40, 64 or 128 digits;
- the report's own publisher links: hosts under `ExtractOptions.ignore_domains`
  are skipped unless the author defanged them (defanging is a statement that
  the value is malicious).

Overlaps are resolved by masking: once a URL or an e-mail address is taken,
the domain or IP inside it is not reported again (unless `hosts_of_urls`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from threatmesh.extract.values import Detected, IocType, canonical_cve, detect_type

# Vendor blogs and reference sites that reports link to as sources, not as
# indicators. Callers extend or replace it (`threatmesh extract --ignore-domain`).
DEFAULT_IGNORED_DOMAINS = frozenset({
    "welivesecurity.com", "eset.com", "unit42.paloaltonetworks.com", "paloaltonetworks.com",
    "sophos.com", "securelist.com", "kaspersky.com", "fireeye.com", "mandiant.com",
    "attack.mitre.org", "cve.mitre.org", "nvd.nist.gov", "cwe.mitre.org",
})

_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\})"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:{_DOT}{_LABEL})+"
_AT = r"(?:@|\s?\[at\]\s?|\s?\(at\)\s?|\{at\}|\[@\])"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:{_DOT}{_OCTET}){{3}}"

_URL_RE = re.compile(
    r"(?<![\w])(?:h[tx]{2}ps?|fxp|ftp|hxxxp|hxps)(?:(?::|\[:\])//?|\[://\])"
    r"[^\s<>\"'`|\\^{}]+",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(rf"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*{_AT}{_DOMAIN}(?![\w-])", re.IGNORECASE)
_IPV4_RE = re.compile(rf"(?<![\w.\]])({_IPV4})(/\d{{1,2}})?(?![\w-]|{_DOT}\d)", re.IGNORECASE)
_IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:/\d{1,3})?(?![\w:.])")
_DOMAIN_RE = re.compile(rf"(?<![\w@.-])(?<!\[\.\])({_DOMAIN})(?![\w-]|{_DOT}[A-Za-z0-9])", re.IGNORECASE)
_HASH_RE = re.compile(r"(?<![0-9A-Za-z_])[0-9A-Fa-f]{32,128}(?![0-9A-Za-z_])")
# CVE ids as prose writes them: any case, hyphens or dashes (U+2010-2015, minus), underscores
# (file names) or spaces, and no separator after `CVE` ('CVE2012-0507'); canonical_cve mends them.
_CVE_SEP = "[-\u2010-\u2015\u2212_ \u00a0]"
_CVE_RE = re.compile(rf"(?<![\w-])CVE{_CVE_SEP}?(?:19|20)\d\d{_CVE_SEP}\d{{4,7}}(?!\d)", re.IGNORECASE)
_TECHNIQUE_RE = re.compile(r"(?<![\w.])T\d{4}(?:\.\d{3})?(?![\w]|\.\d)")
# `+value+` and `++value++` (AsciiDoc passthroughs) around a value in backticks.
_WRAPPER_RE = re.compile(r"`\+{1,2}|\+{1,2}`|(?<![\w+])\+\+(?=\S)|(?<=\S)\+\+(?![\w+])")
_VERSION_BEFORE_RE = re.compile(r"(?:\bv|\bver\.?|version|build|release|firmware|\bos)\s*$", re.IGNORECASE)
_DEFANG_MARK_RE = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}|\[at\]|\(at\)|\{at\}|\[@\]|\[:\]|"
                             r"^h[xX]{2}|^fxp", re.IGNORECASE)
# Headings (AsciiDoc '=== ' and '.Title', Markdown '#') and labels that put a hex
# string in a section about keys or certificates rather than about files.
_HEADING_RE = re.compile(r"^(?:=+ |#+ |\.[A-Z])[^\n]*$", re.MULTILINE)
# ('Key logger' and 'Key/clipboard logger' name a malware component, not a key.)
_NOT_FILE_HASH_RE = re.compile(r"\bkeys?\b(?!\s*(?:/\s*\w+\s*)?logg)|cipher|certificate|thumbprint|fingerprint|serial",
                               re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\"+*"


@dataclass(frozen=True, slots=True)
class Extracted:
    """One indicator found in a text."""

    type: IocType
    found: str  # exactly as it stands in the text
    value: str  # refanged and canonical
    start: int  # character offsets in the text, end exclusive
    end: int
    line: int  # 1-based
    column: int  # 1-based
    defanged: bool

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type.value, "found": self.found, "value": self.value, "start": self.start,
                "end": self.end, "line": self.line, "column": self.column, "defanged": self.defanged}


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    ignore_domains: frozenset[str] = field(default=DEFAULT_IGNORED_DOMAINS)
    hosts_of_urls: bool = False  # also report the host of each URL as a domain or IP
    types: frozenset[IocType] | None = None  # None: every type


class _Scan:
    """The working copy of a text: spans taken so far are blanked, so nothing is found twice."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.chars = list(_WRAPPER_RE.sub(lambda m: " " * len(m.group(0)), text))
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def mask(self, start: int, end: int) -> None:
        self.chars[start:end] = " " * (end - start)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1


def extract(text: str, options: ExtractOptions | None = None) -> list[Extracted]:
    """Every indicator in `text`, in order of position; one entry per occurrence."""
    options = options or ExtractOptions()
    scan = _Scan(text)
    hits: list[Extracted] = []
    hosts: list[tuple[int, int]] = []  # spans of URL hosts, rescanned when hosts_of_urls

    def keep(found: str, start: int, end: int, detected: Detected | None, *, mask: bool = True) -> bool:
        if detected is None:
            return False
        defanged = detected.defanged or bool(_DEFANG_MARK_RE.search(found))
        if not defanged and _is_ignored(detected, options.ignore_domains):
            return False
        line, column = scan.position(start)
        hits.append(Extracted(detected.type, found, detected.value, start, end, line, column, defanged))
        if mask:
            scan.mask(start, end)
        return True

    current = scan.text
    for match in _URL_RE.finditer(current):
        start, found = match.start(), _trim_url(match.group(0))
        end = start + len(found)
        detected = detect_type(found)
        if detected is not None and detected.type is IocType.URL and keep(found, start, end, detected):
            host_start = start + found.find("/", found.find(":") + 1)
            hosts.append((host_start, end))
    current = scan.text
    for match in _EMAIL_RE.finditer(current):
        found = match.group(0)
        keep(found.strip(), match.start() + (len(found) - len(found.lstrip())),
             match.end() - (len(found) - len(found.rstrip())), _as_type(detect_type(found), IocType.EMAIL))
    if options.hosts_of_urls:
        _rescan_hosts(scan, hosts, keep)
    current = scan.text
    for match in _IPV4_RE.finditer(current):
        if _VERSION_BEFORE_RE.search(current[max(0, match.start() - 12):match.start()]):
            continue
        keep(match.group(0), match.start(), match.end(), detect_type(match.group(0)))
    current = scan.text
    for match in _IPV6_RE.finditer(current):
        found = match.group(0)
        if found.count(":") >= 2 and any(c.isalnum() for c in found):
            keep(found, match.start(), match.end(), _as_type(detect_type(found), IocType.IPV6, IocType.CIDR))
    current = scan.text
    for match in _DOMAIN_RE.finditer(current):
        found, start = match.group(1), match.start(1)
        if _plain_name_is_not_a_host(current, found, start):
            continue
        keep(found, start, match.end(1), _as_type(detect_type(found), IocType.DOMAIN))
    # Hashes are sought in the text before masking, so a digest in a URL path
    # (a sample's download name, a sandbox link) is reported as well.
    unmasked = _WRAPPER_RE.sub(lambda m: " " * len(m.group(0)), text)
    for match in _HASH_RE.finditer(unmasked):
        if _is_key_or_certificate(unmasked, match.start()):
            continue
        keep(match.group(0), match.start(), match.end(),
             _as_type(detect_type(match.group(0)), IocType.MD5, IocType.SHA1, IocType.SHA256, IocType.SHA512),
             mask=False)
    current = scan.text
    for match in _CVE_RE.finditer(current):
        cve = canonical_cve(match.group(0))
        if cve:
            keep(match.group(0), match.start(), match.end(), Detected(IocType.CVE, cve, False))
    for match in _TECHNIQUE_RE.finditer(current):
        keep(match.group(0), match.start(), match.end(), Detected(IocType.ATTACK_TECHNIQUE, match.group(0), False))
    hits.sort(key=lambda hit: hit.start)
    if options.types is not None:
        hits = [hit for hit in hits if hit.type in options.types]
    return hits


def unique_values(hits: Iterable[Extracted]) -> dict[tuple[IocType, str], list[Extracted]]:
    """Hits grouped by (type, canonical value), in order of first appearance."""
    grouped: dict[tuple[IocType, str], list[Extracted]] = {}
    for hit in hits:
        grouped.setdefault((hit.type, hit.value), []).append(hit)
    return grouped


def _as_type(detected: Detected | None, *types: IocType) -> Detected | None:
    return detected if detected is not None and detected.type in types else None


def _trim_url(found: str) -> str:
    """A URL without the sentence punctuation or closing bracket that follows it in prose."""
    while found:
        last = found[-1]
        if last in _URL_TRAILING:
            found = found[:-1]
        elif last in ")]" and found.count("(" if last == ")" else "[") < found.count(last):
            found = found[:-1]
        else:
            break
    return found


def _is_key_or_certificate(text: str, start: int) -> bool:
    """Hex under a heading or label about keys or certificates is not a file's hash."""
    line_start = text.rfind("\n", 0, start) + 1
    if _NOT_FILE_HASH_RE.search(text[line_start:start]):
        return True
    heading = None
    for heading in _HEADING_RE.finditer(text, max(0, start - 4000), line_start):
        pass
    return heading is not None and bool(_NOT_FILE_HASH_RE.search(heading.group(0)))


def _plain_name_is_not_a_host(text: str, found: str, start: int) -> bool:
    """Context that makes an undefanged dotted name a path, a detection name or code."""
    if _DEFANG_MARK_RE.search(found):
        return False
    before = text[start - 1] if start else ""
    if before in "\\/%$" and text[max(0, start - 3):start] != "://":
        return True
    tld = re.split(r"\.", found)[-1]
    if not tld.islower():
        return True
    after = text[start + len(found):start + len(found) + 1]
    return after == "("  # obj.method( in quoted code


def _is_ignored(detected: Detected, ignored: frozenset[str]) -> bool:
    if not ignored:
        return False
    if detected.type is IocType.DOMAIN:
        host = detected.value
    elif detected.type is IocType.URL:
        host = detected.value.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    elif detected.type is IocType.EMAIL:
        host = detected.value.rsplit("@", 1)[1]
    else:
        return False
    parts = host.lower().split(".")
    return any(".".join(parts[i:]) in ignored for i in range(len(parts)))


def _rescan_hosts(scan: _Scan, hosts: list[tuple[int, int]], keep: Callable[..., bool]) -> None:
    """Report the host of each URL taken as a domain or IP of its own."""
    original = _WRAPPER_RE.sub(lambda m: " " * len(m.group(0)), scan.original)
    for start, end in hosts:
        segment = original[start:end]
        authority_start = start + len(segment) - len(segment.lstrip("/"))
        authority = re.split(r"[/?#]", original[authority_start:end], maxsplit=1)[0]
        user, at, host = authority.rpartition("@")
        host_start = authority_start + (len(user) + 1 if at else 0)
        host = re.sub(r"(?::|\[:\])\d+$", "", host)
        detected = detect_type(host)
        if detected is not None and detected.type in (IocType.DOMAIN, IocType.IPV4, IocType.IPV6):
            keep(host, host_start, host_start + len(host), detected, mask=False)
