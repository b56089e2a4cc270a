"""Value type detection and refanging of single values (lists and table cells)."""

from __future__ import annotations

import pytest

from threatmesh.extract import IocType, detect_type, refang


@pytest.mark.parametrize(("raw", "kind", "value"), [
    ("8.8.8.8", IocType.IPV4, "8.8.8.8"),
    ("5.252.178[.]140", IocType.IPV4, "5.252.178.140"),
    ("`+5.252.178[.]140+`", IocType.IPV4, "5.252.178.140"),
    ("2001:DB8::0:1", IocType.IPV6, "2001:db8::1"),
    ("10.0.0.0/8", IocType.CIDR, "10.0.0.0/8"),
    ("evil[.]com", IocType.DOMAIN, "evil.com"),
    ("api[dot]sypexgeo[dot]net", IocType.DOMAIN, "api.sypexgeo.net"),
    ("evil(.)org", IocType.DOMAIN, "evil.org"),
    ("hxxp://evil[.]com/a.php", IocType.URL, "http://evil.com/a.php"),
    ("hXXps://evil[.]com/x", IocType.URL, "https://evil.com/x"),
    ("hXXps:/www[.]mit.gov.it/mit", IocType.URL, "https://www.mit.gov.it/mit"),
    ("http[:]//1.2.3[.]4/x", IocType.URL, "http://1.2.3.4/x"),
    ("foo[at]bar[.]com", IocType.EMAIL, "foo@bar.com"),
    ("foo[@]bar.com", IocType.EMAIL, "foo@bar.com"),
    ("D41D8CD98F00B204E9800998ECF8427E", IocType.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
    ("a010d5449d29a1916827fdb443e3c84c405cb2a5", IocType.SHA1, "a010d5449d29a1916827fdb443e3c84c405cb2a5"),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", IocType.SHA256,
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd4741"
     "7a81a538327af927da3e", IocType.SHA512,
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd4741"
     "7a81a538327af927da3e"),
    ("cve-2021-44228", IocType.CVE, "CVE-2021-44228"),
    ("T1059.001", IocType.ATTACK_TECHNIQUE, "T1059.001"),
])
def test_values_are_detected_and_refanged(raw: str, kind: IocType, value: str) -> None:
    found = detect_type(raw)
    assert found is not None, raw
    assert (found.type, found.value) == (kind, value)
    assert found.defanged == (raw != value and any(t in raw for t in ("[", "(", "xx", "XX")))


@pytest.mark.parametrize("raw", [
    "invoice.pdf", "svchost.exe", "setup.zip", "hello", "Description", "1.2.3", "256.1.1.1", "010.1.1.1",
    "12345678901234567890123456789012",  # all digits: a number, not a digest
    "abcdef0123456789abcdef0123456789ab",  # 34 hex digits: no hash has that length
    "two words", "", "::", "http://nohost", "T12345",
])
def test_non_indicators_are_not_guessed(raw: str) -> None:
    assert detect_type(raw) is None


def test_a_type_hint_is_checked_not_trusted() -> None:
    sha1 = "a010d5449d29a1916827fdb443e3c84c405cb2a5"
    assert detect_type(sha1, IocType.MD5) is None
    assert detect_type(sha1, IocType.SHA1) is not None
    assert detect_type("evil.com", IocType.IPV4) is None


def test_list_context_accepts_names_whose_tld_is_also_a_file_extension() -> None:
    assert detect_type("q0v.pl") is None
    found = detect_type("q0v.pl", in_list=True)
    assert found is not None and found.type is IocType.DOMAIN and not found.defanged


def test_refang_reports_whether_anything_was_defanged() -> None:
    assert refang("evil.com") == ("evil.com", False)
    assert refang("hxxps[:]//evil[.]com") == ("https://evil.com", True)
