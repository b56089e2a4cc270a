"""One canonical spelling for each observable value.

Indicators, SCOs and log lines spell the same thing in different ways
('EVIL.com.', 'evil.com'; '2001:DB8::0:1', '2001:db8::1'; 'sha256', 'SHA-256').
The store indexes, and the matcher looks up, the canonical form produced here,
so exact matching is a dictionary lookup.

Kinds are the STIX object path of the value: 'ipv4-addr', 'ipv6-addr',
'domain-name', 'url', 'email-addr', 'mac-addr', and '<type>:hashes.<NAME>' for
hashes of files, artifacts and certificates.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

# Hash names of the STIX 2.1 hash-algorithm-ov vocabulary, keyed by the
# spelling with case, dashes and underscores removed, so 'sha256', 'SHA256',
# 'SHA-256' and 'sha_256' all land on the vocabulary's 'SHA-256'.
_HASH_NAMES: dict[str, str] = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha512": "SHA-512",
    "sha3256": "SHA3-256",
    "sha3512": "SHA3-512",
    "ssdeep": "SSDEEP",
    "tlsh": "TLSH",
}
# Hex digests have a fixed length; a wrong length is a wrong value, not another hash.
_HEX_LENGTH: dict[str, int] = {
    "MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64, "SHA3-512": 128,
}
_HEX_RE = re.compile(r"[0-9a-f]+\Z")
_LABEL_RE = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_MAC_RE = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}\Z")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}


def canonical_hash_name(name: str) -> str:
    """The hash-algorithm-ov spelling of a hash name ('sha256' -> 'SHA-256').

    Names outside the vocabulary (custom hashes) are kept as given.
    """
    key = name.strip().strip("'\"").lower().replace("-", "").replace("_", "")
    return _HASH_NAMES.get(key, name.strip().strip("'\""))


def normalize_kind(kind: str) -> str:
    """The canonical kind: hash names spelled as the vocabulary spells them."""
    obj_type, sep, path = kind.partition(":hashes.")
    if sep:
        return f"{obj_type}:hashes.{canonical_hash_name(path)}"
    return kind


# An IPv4 address already in canonical form (no prefix, no leading zeros, octets to 255):
# the common case, answered without building ipaddress objects (a third of the cost of
# indexing an indicator, which every stored and every received indicator pays).
# The expression (without anchors) is shared with index.py's shortcut for indicator patterns.
CANONICAL_IPV4 = (r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                  r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_CANONICAL_IPV4_RE = re.compile(CANONICAL_IPV4 + r"\Z")


def is_canonical_ipv4(value: str) -> bool:
    """Whether `value` is an IPv4 address spelled as `ipaddress` would write it (Zeek's spelling)."""
    return _CANONICAL_IPV4_RE.match(value) is not None


def _ip(value: str, version: int) -> str:
    if version == 4 and is_canonical_ipv4(value):
        return value
    return _parsed_ip(value, version)


def _parsed_ip(value: str, version: int) -> str:
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError:
        raise ValueError(f"not an IPv{version} address or CIDR: {value!r}") from None
    if iface.version != version:
        raise ValueError(f"not an IPv{version} address: {value!r}")
    # A full-length prefix is the address itself; the bare form is what logs carry.
    if iface.network.prefixlen == iface.max_prefixlen:
        return iface.ip.compressed
    return f"{iface.ip.compressed}/{iface.network.prefixlen}"


# A domain name already in canonical form: lower-case ASCII labels, no trailing
# dot, no surrounding space. The steps of _parsed_domain would return it
# unchanged (each label is what _LABEL_RE accepts); one match costs about half of them.
_CANONICAL_DOMAIN_RE = re.compile(r"(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)*(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")


def _domain(value: str) -> str:
    # `type is str`: the slow path returns a plain str for a str subclass, and so must this.
    if type(value) is str and len(value) <= 253 and _CANONICAL_DOMAIN_RE.match(value):
        return value
    return _parsed_domain(value)


def _parsed_domain(value: str) -> str:
    name = value.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        raise ValueError(f"not a domain name: {value!r}")
    if not name.isascii():
        try:
            # Python's codec implements IDNA 2003; good enough to turn
            # internationalised names into the ASCII form DNS logs carry.
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            # Not convertible: keep the Unicode form, still lower-cased.
            if any(not label or len(label) > 63 or label.startswith("-") for label in name.split(".")):
                raise ValueError(f"not a domain name: {value!r}") from None
            return name
    for label in name.split("."):
        if not _LABEL_RE.match(label):
            raise ValueError(f"not a domain name: {value!r}")
    return name


def _url(value: str) -> str:
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"not a URL: {value!r}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lower-cased, brackets of IPv6 removed
    if not scheme or not host or any(c.isspace() for c in text):
        raise ValueError(f"not a URL: {value!r}")
    if ":" in host:
        host = f"[{ipaddress.IPv6Address(host).compressed}]" if _is_ipv6(host) else host
    elif not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # keep the Unicode host rather than reject a real URL
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    # User info is rare and case-sensitive: kept exactly as given.
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _email(value: str) -> str:
    addr = value.strip().lower()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        raise ValueError(f"not an email address: {value!r}")
    return f"{local}@{_domain(domain)}"


def _mac(value: str) -> str:
    text = value.strip().lower()
    if not _MAC_RE.match(text):
        raise ValueError(f"not a MAC address: {value!r}")
    digits = re.sub(r"[:-]", "", text)
    # STIX 2.1 §6.10: colon-delimited, lower-case, two digits per octet.
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _hash(kind: str, value: str) -> str:
    name = normalize_kind(kind).partition(":hashes.")[2]
    digest = value.strip()
    if name == "SSDEEP":
        if not digest or any(c.isspace() for c in digest):
            raise ValueError(f"not an SSDEEP hash: {value!r}")
        return digest  # base64-like and case-sensitive
    digest = digest.lower()
    if not _HEX_RE.match(digest):
        raise ValueError(f"not a {name} hex digest: {value!r}")
    length = _HEX_LENGTH.get(name)
    if length is not None and len(digest) != length:
        raise ValueError(f"a {name} digest has {length} hex digits, not {len(digest)}: {value!r}")
    return digest


def normalize(kind: str, value: str) -> str:
    """The canonical form of an observable value of `kind`; ValueError if it is invalid."""
    if not isinstance(value, str):
        raise ValueError(f"{kind} value must be a string, not {type(value).__name__}")
    if kind == "ipv4-addr":
        return _ip(value, 4)
    if kind == "ipv6-addr":
        return _ip(value, 6)
    if kind == "domain-name":
        return _domain(value)
    if kind == "url":
        return _url(value)
    if kind == "email-addr":
        return _email(value)
    if kind == "mac-addr":
        return _mac(value)
    if ":hashes." in kind:
        return _hash(kind, value)
    raise ValueError(f"unknown observable kind: {kind!r}")
