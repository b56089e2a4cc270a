"""IoCs in prose: positions, every defanged form, the classic false positives, and real reports."""

from __future__ import annotations

import re

from threatmesh.extract import ExtractOptions, IocType, extract
from threatmesh.extract.stix import objects_for
from threatmesh.extract.values import Detected
from tests.conftest import corpus_path


def _values(text: str, options: ExtractOptions | None = None) -> set[tuple[str, str]]:
    return {(hit.type.value, hit.value) for hit in extract(text, options)}


def test_positions_point_at_the_text_as_found() -> None:
    text = "intro\nC&C at hxxp://evil[.]com/a.php, then\n  `+5.252.178[.]140+` again"
    hits = extract(text)
    assert [(h.type, h.value, h.line, h.column) for h in hits] == [
        (IocType.URL, "http://evil.com/a.php", 2, 8),
        (IocType.IPV4, "5.252.178.140", 3, 5),
    ]
    for hit in hits:
        assert text[hit.start:hit.end] == hit.found
        assert hit.defanged


def test_every_defanged_form_of_the_corpora() -> None:
    text = ("a evil[.]com b evil2(.)com c api[dot]sypexgeo[dot]net d hxxp://x1[.]org/p e hXXps:/www[.]mit.gov.it/m "
            "f http[:]//x2.org/q g foo[at]bar[.]com h joe[@]x3[.]net i `+5.252.178[.]140+` "
            "j `++https://script.google[.]com/macros/s/x/exec++` k hxxps://x4[.]ru/")
    assert _values(text) == {
        ("domain", "evil.com"), ("domain", "evil2.com"), ("domain", "api.sypexgeo.net"),
        ("url", "http://x1.org/p"), ("url", "https://www.mit.gov.it/m"), ("url", "http://x2.org/q"),
        ("email", "foo@bar.com"), ("email", "joe@x3.net"), ("ipv4", "5.252.178.140"),
        ("url", "https://script.google.com/macros/s/x/exec"), ("url", "https://x4.ru/"),
    }


def test_classic_false_positives_are_kept_out() -> None:
    text = ("It drops invoice.pdf, svchost.exe and setup.zip into C:\\Users\\x\\ssl.py; ESET detects Win32/Sednit.BG. "
            "Built with ASP.NET on version 10.2.3.4, build 6.1.7601.17514, v1.0.0.1. "
            "The key 0xA010D5449D29A1916827FDB443E3C84C405CB2A5FF and A010D5449D29A1916827FDB443E3C84C405CB2A5FF00. "
            "See https://www.welivesecurity.com/2019/05/22/journey-zebrocy-land/ and document.write(x).")
    assert _values(text) == set()


def test_publisher_links_are_configurable_and_defanged_ones_always_count() -> None:
    text = "https://www.welivesecurity.com/x and hxxps://welivesecurity[.]com/y and https://evil.org/z"
    assert _values(text) == {("url", "https://welivesecurity.com/y"), ("url", "https://evil.org/z")}
    everything = _values(text, ExtractOptions(ignore_domains=frozenset()))
    assert ("url", "https://www.welivesecurity.com/x") in everything
    assert ("url", "https://evil.org/z") not in _values(text, ExtractOptions(ignore_domains=frozenset({"evil.org"})))


def test_hosts_of_urls_on_request() -> None:
    text = "C&C hxxp://c2[.]example-bad.com:8080/gate.php"
    assert ("domain", "c2.example-bad.com") not in _values(text)
    assert ("domain", "c2.example-bad.com") in _values(text, ExtractOptions(hosts_of_urls=True))


def test_cve_and_technique_ids() -> None:
    assert _values("exploits CVE-2017-0263 (cve\u20112017\u20110262) via T1059.001 and T1086; not T12345") == {
        ("cve", "CVE-2017-0263"), ("cve", "CVE-2017-0262"), ("attack-technique", "T1059.001"),
        ("attack-technique", "T1086")}


def test_eset_asciidoc_hashes_match_esets_own_sample_lists() -> None:
    folder = corpus_path("reports", "eset", "sednit")
    text = (folder / "2019-05-23_Zebrocy.adoc").read_text("utf-8")
    listed = {line.strip().lower() for line in (folder / "samples.sha1").read_text().splitlines() if line.strip()}
    found = {hit.value for hit in extract(text) if hit.type is IocType.SHA1}
    in_text = {h for h in listed if h in text.lower()}
    assert in_text and in_text <= found
    assert found <= listed


def test_every_defanged_token_of_an_eset_report_is_recovered() -> None:
    text = corpus_path("reports", "eset", "turla", "README.adoc").read_text("utf-8")
    tokens = [m.group(0) for m in re.finditer(r"[\w.-]*\[\.\][\w.-]+", text)]
    assert len(tokens) > 20
    hits = extract(text)
    covered = [t for t in tokens if any(h.start <= text.find(t) < h.end or t in h.found for h in hits)]
    assert len(covered) / len(tokens) >= 0.98


def test_stix_objects_for_values_pass_the_oasis_library() -> None:
    import stix2
    from stix2patterns.validator import run_validator

    for detected in (Detected(IocType.DOMAIN, "evil.com", True), Detected(IocType.URL, "http://e.org/a'b", False),
                     Detected(IocType.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                              False), Detected(IocType.CIDR, "10.0.0.0/8", False),
                     Detected(IocType.CVE, "CVE-2021-44228", False)):
        objects = objects_for(detected, source="file:x.txt", timestamp="2024-01-01T00:00:00.000Z")
        again = objects_for(detected, source="file:x.txt", timestamp="2024-01-01T00:00:00.000Z")
        assert [o["id"] for o in objects] == [o["id"] for o in again]
        for obj in objects:
            stix2.parse(obj, allow_custom=False)
            if obj["type"] == "indicator":
                assert run_validator(obj["pattern"]) == []
    other = objects_for(Detected(IocType.DOMAIN, "evil.com", True), source="file:y.txt",
                        timestamp="2024-01-01T00:00:00.000Z")
    first = objects_for(Detected(IocType.DOMAIN, "evil.com", True), source="file:x.txt",
                        timestamp="2024-01-01T00:00:00.000Z")
    assert other[0]["id"] != first[0]["id"] and other[1]["id"] == first[1]["id"]  # SCO ids are source-free


def test_cve_ids_in_every_spelling_prose_uses() -> None:
    # seen in the corpora: 'CVE2012-0507' (McAfee, Kaspersky), lower case 'cve-2015-0311';
    # and the dashes, underscores (file names) and spaces that typesetting and authors use
    text = ("used CVE2012-0507 and cve-2015-0311, then CVE\u20112017\u20110199 (non-breaking), CVE\u20142014\u20146332, "
            "CVE_2017_11882.rtf, CVE 2021 44228 and Win32/Exploit.CVE-2018-0802.A; "
            "not CVE-1234-5678, not 'CVE 2019 saw 12345', not XCVE-2019-0708, not CVE-2019-07088123")
    assert {v for t, v in _values(text) if t == "cve"} == {
        "CVE-2012-0507", "CVE-2015-0311", "CVE-2017-0199", "CVE-2014-6332", "CVE-2017-11882", "CVE-2021-44228",
        "CVE-2018-0802"}


def test_hashes_under_a_key_heading_are_keys_but_a_keylogger_is_a_file() -> None:
    sha1 = "5316abf8c4c148ce4d18419bb4e5057cf7535dcf"
    keys = f"=== XOR cipher keys\n----\n{sha1}\n----\n"
    assert _values(keys) == set()
    for heading in ("==== Key/clipboard logger plugin", "=== Key logger", "=== Keylogger"):
        assert _values(f"{heading}\n----\n{sha1}\n----\n") == {("sha1", sha1)}, heading
    assert _values(f"=== Keys used by the logger\n----\n{sha1}\n") == set()
