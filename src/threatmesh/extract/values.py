"""What kind of indicator a single value is, and its refanged canonical form.

`detect_type` answers for one value as found in a list or a table cell
('hxxp://evil[.]com/x', '8.8.8.8/24', 'CVE-2021-44228'): an `IocType` and the
refanged, canonical value, or None when the value is not an indicator. It never
guesses: an ambiguous value (a bare word, a file name whose extension is also a
top-level domain) is not an indicator.

Pure: no I/O; the top-level-domain list comes from the Public Suffix List that
the `publicsuffixlist` package ships (offline, updated with each release).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from threatmesh.stix.observables import normalize


class IocType(str, enum.Enum):
    """The value types threatmesh recognises, named as `extract --json` prints them."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    CVE = "cve"
    ATTACK_TECHNIQUE = "attack-technique"


HASH_TYPES = {IocType.MD5: 32, IocType.SHA1: 40, IocType.SHA256: 64, IocType.SHA512: 128}
HASH_BY_LENGTH = {length: kind for kind, length in HASH_TYPES.items()}
# Names that 'type' columns of real tables use (MISP types, Sophos, OpenIOC words).
TYPE_ALIASES: dict[str, IocType] = {
    "ip": IocType.IPV4, "ipv4": IocType.IPV4, "ip-dst": IocType.IPV4, "ip-src": IocType.IPV4,
    "ipv4-addr": IocType.IPV4, "ip address": IocType.IPV4, "ipaddress": IocType.IPV4,
    "ipv6": IocType.IPV6, "ipv6-addr": IocType.IPV6, "cidr": IocType.CIDR, "ip range": IocType.CIDR,
    "domain": IocType.DOMAIN, "hostname": IocType.DOMAIN, "host": IocType.DOMAIN, "fqdn": IocType.DOMAIN,
    "domain-name": IocType.DOMAIN, "domain name": IocType.DOMAIN,
    "url": IocType.URL, "uri": IocType.URL, "link": IocType.URL,
    "email": IocType.EMAIL, "email-src": IocType.EMAIL, "email-dst": IocType.EMAIL, "e-mail": IocType.EMAIL,
    "email-addr": IocType.EMAIL, "email address": IocType.EMAIL,
    "md5": IocType.MD5, "sha1": IocType.SHA1, "sha-1": IocType.SHA1, "sha256": IocType.SHA256,
    "sha-256": IocType.SHA256, "sha512": IocType.SHA512, "sha-512": IocType.SHA512,
    "cve": IocType.CVE, "vulnerability": IocType.CVE,
    "technique": IocType.ATTACK_TECHNIQUE, "attack-pattern": IocType.ATTACK_TECHNIQUE,
    "mitre att&ck": IocType.ATTACK_TECHNIQUE, "attack-technique": IocType.ATTACK_TECHNIQUE,
}

# File extensions that are also delegated top-level domains: 'setup.zip',
# 'ssl.py' or 'libc.so' are file names far more often than hosts. A two-label
# name ending in one of them is only taken as a domain when it was defanged or
# sits inside a URL or an e-mail address, where the author's intent is plain.
AMBIGUOUS_TLDS = frozenset({
    "zip", "mov", "py", "sh", "pl", "ps", "rs", "md", "so", "cab", "app", "pm", "ml", "bz",
})

# Defang spellings, longest first, with what they stand for.
_DEFANGS: tuple[tuple[str, str], ...] = (
    ("[dot]", "."), ("(dot)", "."), ("{dot}", "."), ("[.]", "."), ("(.)", "."), ("{.}", "."),
    ("[at]", "@"), ("(at)", "@"), ("{at}", "@"), ("[@]", "@"), ("[:]", ":"), ("[://]", "://"),
    ("[/]", "/"),
)
_DEFANG_RE = re.compile("|".join(re.escape(token) for token, _ in _DEFANGS), re.IGNORECASE)
_DEFANG_MAP = {token: plain for token, plain in _DEFANGS}
_SCHEME_RE = re.compile(r"^(?:h(?:xx|XX|xX|Xx)p(s?)|fxp|hxps)(?=\[?:)", re.IGNORECASE)
_ONE_SLASH_RE = re.compile(r"^(https?|ftp):/(?!/)", re.IGNORECASE)
# 'CVE-2021-44228' and the spellings prose uses: any case, dashes, underscores, spaces, 'CVE2012-0507'.
_CVE_RE = re.compile(r"CVE[-\u2010-\u2015\u2212_ \u00a0]?((?:19|20)\d\d)[-\u2010-\u2015\u2212_ \u00a0](\d{4,7})\Z",
                     re.IGNORECASE)
_TECHNIQUE_RE = re.compile(r"T\d{4}(?:\.\d{3})?\Z")
_HEX_RE = re.compile(r"[0-9a-fA-F]+\Z")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\Z")
# ESET's AsciiDoc wraps values in literal passthroughs: `+1.2.3[.]4+` or `++...++`.
_WRAPPERS_RE = re.compile(r"^[`'\"<(\[]*\+{0,2}|\+{0,2}[`'\">)\]]*$")


@dataclass(frozen=True, slots=True)
class Detected:
    """One value recognised as an indicator."""

    type: IocType
    value: str  # refanged and canonical
    defanged: bool  # the input carried a defang mark


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # ICANN section only: private suffixes (blogspot.com, ...) are hosts one level down.
    return PublicSuffixList(only_icann=True)


def is_known_tld(label: str) -> bool:
    """Whether `label` is a top-level domain of the Public Suffix List's ICANN section."""
    return bool(label) and _psl().publicsuffix(label.lower(), accept_unknown=False) is not None


def has_public_suffix(name: str) -> bool:
    """Whether the name ends in a known public suffix and has a label in front of it."""
    name = name.lower().rstrip(".")
    if "." not in name:
        return False
    return _psl().publicsuffix(name, accept_unknown=False) not in (None, name)


def refang(value: str) -> tuple[str, bool]:
    """The value with every defang spelling undone, and whether there was any."""
    text = value
    fixed = _DEFANG_RE.sub(lambda m: _DEFANG_MAP[m.group(0).lower()], text)
    scheme = _SCHEME_RE.match(fixed)
    if scheme:
        fixed = ("https" if scheme.group(1) or scheme.group(0).lower() == "hxps" else
                 "ftp" if scheme.group(0).lower() == "fxp" else "http") + fixed[scheme.end():]
    # 'hXXps:/host' (one slash) is a defang of its own, seen in ESET's reports.
    single = _ONE_SLASH_RE.match(fixed)
    if single and (scheme or _DEFANG_RE.search(text)):
        fixed = f"{single.group(1)}://{fixed[single.end():]}"
    return fixed, fixed != text


def canonical_cve(value: str) -> str | None:
    match = _CVE_RE.match(value.strip())
    return f"CVE-{match.group(1)}-{match.group(2)}" if match else None


def detect_type(raw: str, hint: IocType | None = None, *, in_list: bool = False) -> Detected | None:
    """The indicator type and canonical value of one cell or line, or None.

    `hint` is a type named by the input (a table's type column); it is checked,
    never trusted blindly: 'md5' on a 40-digit value gives None. `in_list`: the
    value comes from an indicator list, whose author says it is a host, so a
    name like 'q0v.pl' is a domain there although it would be a file in prose.
    """
    stripped = _WRAPPERS_RE.sub("", raw.strip())
    if not stripped or any(c.isspace() for c in stripped):
        return None
    text, defanged = refang(stripped)
    found = _detect(text, defanged, lenient=defanged or in_list)
    if found is None or hint is None:
        return found
    if hint == found.type or (hint is IocType.IPV4 and found.type in (IocType.IPV6, IocType.CIDR)):
        return found
    if hint is IocType.DOMAIN and found.type is IocType.URL:
        return None
    return found if hint in (IocType.URL, IocType.DOMAIN) and found.type in (IocType.DOMAIN, IocType.URL) else None


def _detect(text: str, defanged: bool, *, lenient: bool) -> Detected | None:
    cve = canonical_cve(text)
    if cve:
        return Detected(IocType.CVE, cve, defanged)
    if _TECHNIQUE_RE.match(text):
        return Detected(IocType.ATTACK_TECHNIQUE, text, defanged)
    if _HEX_RE.match(text) and len(text) in HASH_BY_LENGTH and not text.isdigit():
        return Detected(HASH_BY_LENGTH[len(text)], text.lower(), defanged)
    ip = _ip(text)
    if ip is not None:
        return Detected(ip[0], ip[1], defanged)
    if "://" in text:
        try:
            url = normalize("url", text)
        except ValueError:
            return None
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        if _ip(host.strip("[]")) is None and not has_public_suffix(host):
            return None
        return Detected(IocType.URL, url, defanged)
    if "@" in text and _EMAIL_RE.match(text):
        domain = text.rsplit("@", 1)[1]
        if not has_public_suffix(domain):
            return None
        try:
            return Detected(IocType.EMAIL, normalize("email-addr", text), defanged)
        except ValueError:
            return None
    if "." in text:
        return _domain(text, defanged, lenient)
    return None


def _domain(text: str, defanged: bool, lenient: bool) -> Detected | None:
    try:
        name = normalize("domain-name", text)
    except ValueError:
        return None
    if not has_public_suffix(name) or name.replace(".", "").isdigit():
        return None
    labels = name.split(".")
    if not lenient and len(labels) == 2 and labels[-1] in AMBIGUOUS_TLDS:
        return None
    return Detected(IocType.DOMAIN, name, defanged)


def _ip(text: str) -> tuple[IocType, str] | None:
    """('ipv4'|'ipv6'|'cidr', canonical) for an address or a network, else None."""
    if not text or not (text[0].isdigit() or ":" in text or text[0] in "abcdefABCDEF"):
        return None
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.prefixlen == network.max_prefixlen:
                kind = IocType.IPV4 if network.version == 4 else IocType.IPV6
                return kind, network.network_address.compressed
            return IocType.CIDR, network.compressed
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 4:
        if any(len(part) > 1 and part.startswith("0") for part in text.split(".")):
            return None  # '010.1.1.1' is octal to some parsers and a version string to people
        return IocType.IPV4, address.compressed
    if address.is_unspecified:
        return None
    return IocType.IPV6, address.compressed
