from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatmesh.stix.observables import canonical_hash_name, normalize, normalize_kind


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        ("ipv4-addr", " 10.0.0.1 ", "10.0.0.1"),
        ("ipv4-addr", "10.0.0.1/32", "10.0.0.1"),
        ("ipv4-addr", "10.0.0.7/24", "10.0.0.7/24"),  # host bits kept
        ("ipv6-addr", "2001:DB8:0:0::1", "2001:db8::1"),
        ("ipv6-addr", "2001:db8::/32", "2001:db8::/32"),
        ("domain-name", "EVIL.Example.COM.", "evil.example.com"),
        ("domain-name", "_dmarc.example.com", "_dmarc.example.com"),
        ("domain-name", "bücher.de", "xn--bcher-kva.de"),
        ("url", "HTTP://Evil.COM:80/Path/X?q=A#f", "http://evil.com/Path/X?q=A#f"),
        ("url", "https://evil.com:443", "https://evil.com"),
        ("url", "https://evil.com:8443/a", "https://evil.com:8443/a"),
        ("url", "http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
        ("email-addr", "Alice@Example.COM", "alice@example.com"),
        ("mac-addr", "AA-BB-CC-00-11-22", "aa:bb:cc:00:11:22"),
        ("file:hashes.MD5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        ("file:hashes.sha256", "A" * 64, "a" * 64),
    ],
)
def test_normalize(kind: str, value: str, canonical: str) -> None:
    assert normalize(kind, value) == canonical


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("ipv4-addr", "10.0.0.256"),
        ("ipv4-addr", "2001:db8::1"),
        ("ipv4-addr", "010.0.0.1"),
        ("ipv6-addr", "10.0.0.1"),
        ("domain-name", ""),
        ("domain-name", "a..b"),
        ("domain-name", "-a.com"),
        ("domain-name", "has space.com"),
        ("url", "evil.com/path"),
        ("url", "http://"),
        ("url", "http://a b.com/"),
        ("email-addr", "no-at-sign"),
        ("email-addr", "@example.com"),
        ("mac-addr", "aa:bb:cc"),
        ("file:hashes.MD5", "xyz"),
        ("file:hashes.SHA-256", "a" * 63),
        ("unknown-kind", "x"),
    ],
)
def test_normalize_rejects(kind: str, value: str) -> None:
    with pytest.raises(ValueError):
        normalize(kind, value)


@pytest.mark.parametrize("name", ["SHA-256", "SHA256", "sha256", "sha-256", "'SHA-256'"])
def test_hash_names(name: str) -> None:
    assert canonical_hash_name(name) == "SHA-256"
    assert normalize_kind(f"file:hashes.{name}") == "file:hashes.SHA-256"


def test_custom_hash_name_kept() -> None:
    assert canonical_hash_name("x_custom") == "x_custom"
    assert normalize_kind("domain-name") == "domain-name"


@given(st.ip_addresses())
def test_ip_normalisation_is_idempotent_and_exact(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    kind = "ipv4-addr" if ip.version == 4 else "ipv6-addr"
    text = ip.exploded.upper()
    canonical = normalize(kind, text)
    assert canonical == ip.compressed
    assert normalize(kind, canonical) == canonical


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,10}){1,3}", fullmatch=True), st.booleans())
def test_domain_normalisation(domain: str, trailing_dot: bool) -> None:
    canonical = normalize("domain-name", domain.upper() + ("." if trailing_dot else ""))
    assert canonical == domain
    assert normalize("domain-name", canonical) == canonical
    assert normalize("url", f"HTTP://{domain.upper()}:80/P") == f"http://{domain}/P"
