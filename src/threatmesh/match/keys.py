"""Match keys: the one spelling under which an indicator value and a log value meet.

Built on `stix.observables.normalize` and stricter for URLs, where the issue
asks for percent-encoding to be normalised as well (RFC 3986 §6.2.2): escapes
of unreserved characters are decoded ('%7E' -> '~') and the others upper-cased
('%2f' -> '%2F'), so two spellings of one resource meet.
"""

from __future__ import annotations

import ipaddress
import re

from threatmesh.match.protocol import HASH_ROLES, ROLE_DOMAIN, ROLE_DST_IP, ROLE_EMAIL, ROLE_IP, ROLE_SRC_IP, ROLE_URL
from threatmesh.stix.observables import is_canonical_ipv4, normalize

# Index groups: which table a kind is looked up in.
GROUP_IP = "ip"
GROUP_DOMAIN = "domain"
GROUP_URL = "url"
GROUP_HASH = "hash"
GROUP_EMAIL = "email"

ROLE_GROUP: dict[str, str] = {
    ROLE_SRC_IP: GROUP_IP, ROLE_DST_IP: GROUP_IP, ROLE_IP: GROUP_IP, ROLE_DOMAIN: GROUP_DOMAIN,
    ROLE_URL: GROUP_URL, ROLE_EMAIL: GROUP_EMAIL, **{role: GROUP_HASH for role in HASH_ROLES},
}

_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct(m: re.Match[str]) -> str:
    byte = int(m.group(1), 16)
    return chr(byte) if byte in _UNRESERVED else f"%{m.group(1).upper()}"


def url_key(url: str) -> str:
    """The match key of a URL: normalised scheme, host, port and percent-encoding; ValueError if not a URL."""
    canonical = normalize("url", url)
    return _PCT_RE.sub(_pct, canonical) if "%" in canonical else canonical


def url_host(key: str) -> str:
    """The host of a URL key (the prefilter the fast matcher joins on)."""
    rest = key.partition("://")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        return netloc[: netloc.index("]") + 1]
    return netloc.partition(":")[0]


def kind_group(kind: str) -> str | None:
    """The index group of an ExactKey kind ('ipv4-addr' -> 'ip'); None for kinds not indexed."""
    if kind in ("ipv4-addr", "ipv6-addr"):
        return GROUP_IP
    if kind == "domain-name":
        return GROUP_DOMAIN
    if kind == "url":
        return GROUP_URL
    if kind == "email-addr":
        return GROUP_EMAIL
    if ":hashes." in kind and kind.rpartition(".")[2] in ("MD5", "SHA-1", "SHA-256", "SHA-512"):
        return GROUP_HASH
    return None


def value_key(group: str, value: str) -> str:
    """The key of a raw log value in its group; ValueError when it is not such a value."""
    if group == GROUP_IP:
        if is_canonical_ipv4(value):  # Zeek's spelling: the common case, without `ipaddress`
            return value
        return ipaddress.ip_address(value.strip("[]").split("%", 1)[0]).compressed
    if group == GROUP_DOMAIN:
        # A certificate's wildcard name covers the name under the '*'; and a name that is not
        # valid DNS (an underscore label, a space) can still sit under an indicator's domain.
        name = value[2:] if value.startswith("*.") else value
        try:
            return normalize("domain-name", name)
        except ValueError:
            name = name.strip().rstrip(".").lower()
            if not name:
                raise
            return name
    if group == GROUP_URL:
        return url_key(value)
    if group == GROUP_EMAIL:
        return normalize("email-addr", value.strip("<>"))
    if group == GROUP_HASH:
        digest = value.strip().lower()
        if len(digest) not in (32, 40, 64, 128) or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a hex digest: {value!r}")
        return digest
    raise ValueError(f"unknown index group {group!r}")


def indicator_key(kind: str, canonical: str) -> str:
    """The key of an ExactKey value (already `normalize`d) in its group."""
    if kind == "url":
        return _PCT_RE.sub(_pct, canonical) if "%" in canonical else canonical
    return canonical
