"""The columnar Zeek matcher finds exactly what the line-at-a-time matcher finds."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import corpus_path
from threatmesh.logs import ReadReport, read_logs
from threatmesh.match.columnar import match_zeek_file
from threatmesh.match.engine import Matcher
from threatmesh.match.index import build_index
from threatmesh.match.protocol import LogEvent

pytest.importorskip("polars")


def _ind(n: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000", "pattern": pattern,
            "pattern_type": "stix", "valid_from": "2018-01-01T00:00:00Z", **extra}


def _corpus_indicators(events: list[LogEvent]) -> list[dict[str, Any]]:
    """Indicators drawn from the logs' own values: some names' parents, addresses, ranges, hashes."""
    rng = random.Random(6)
    ips: set[str] = set()
    names: set[str] = set()
    hashes: set[str] = set()
    for event in events:
        for role, value in event.values:
            if role in ("src-ip", "dst-ip", "ip") and ":" not in value:
                ips.add(value)
            elif role == "domain":
                names.add(value.lower().rstrip("."))
            elif role == "sha256":
                hashes.add(value)
    picked_ips = rng.sample(sorted(ips), min(40, len(ips)))
    parents = {n.partition(".")[2] for n in rng.sample(sorted(names), min(60, len(names))) if n.count(".") >= 2}
    patterns = [f"[ipv4-addr:value = '{ip}']" for ip in picked_ips]
    patterns += [f"[ipv4-addr:value = '{ip.rsplit('.', 1)[0]}.0/{plen}']" for ip, plen in
                 zip(picked_ips[:8], (24, 24, 25, 26, 28, 24, 30, 29))]
    patterns += ["[ipv4-addr:value = '10.0.0.0/8']", "[ipv4-addr:value = '10.47.0.0/16']"]
    patterns += [f"[domain-name:value = '{p}']" for p in sorted(parents) if p]
    patterns += [f"[file:hashes.'SHA-256' = '{h}']" for h in sorted(hashes)[:5]]
    # one indicator valid only after the logs were written: it must not hit
    out = [_ind(i, p) for i, p in enumerate(patterns)]
    out.append(_ind(len(out), f"[ipv4-addr:value = '{picked_ips[0]}']", valid_from="2019-01-01T00:00:00Z"))
    return out


def test_same_hits_on_the_real_zeek_logs() -> None:
    folder = corpus_path("logs", "zeek-wrccdc2018", "zeek-default")
    # Each log is read line by line once: its events give the indicators and the reference hits.
    by_file: dict[Path, tuple[list[LogEvent], int]] = {}
    for path in sorted(folder.glob("*.log")):
        read = ReadReport()
        by_file[path] = (list(read_logs([str(path)], "zeek", read)), read.lines)
    index = build_index(_corpus_indicators([e for events, _ in by_file.values() for e in events]))
    assert len(index) > 60 and index.cidr[4]
    total = 0
    for path, (events, lines) in by_file.items():
        line_hits = {(h.event.line, h.indicator_id) for h in Matcher(index, now=0).match(events)}
        report = ReadReport()
        hits, columnar_lines, _ = match_zeek_file(str(path), index, report, now=0)
        assert columnar_lines == lines and report.bad == 0
        assert {(h.event.line, h.indicator_id) for h in hits} == line_hits, path.name
        total += len(line_hits)
    assert total > 10_000  # the comparison is not vacuous
    late = index.indicators[-1].id
    assert late not in {i for _, i in line_hits}


def test_same_hits_with_urls_subdomains_sets_and_broken_lines(tmp_path: Path) -> None:
    log = tmp_path / "http.log"
    log.write_text(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
        "#fields\tts\tid.orig_h\tid.resp_h\thost\turi\tmd5\ttx_hosts\n"
        "1700000000.0\t10.0.0.1\t198.51.100.7\twww.evil.example\t/a%7eb\t-\t-\n"
        "1700000001.0\t10.0.0.2\t192.0.2.9\tBAD.example\t/x\t" + "AB" * 16 + "\t203.0.113.5,192.0.2.1\n"
        "1700000002.0\t10.0.0.3\t192.0.2.10\tok.example\t/\t-\n"  # one field short: unreadable
        "#close\t2023-11-14-23-13-20\n"
        "#fields\tts\tid.orig_h\tid.resp_h\thost\turi\tmd5\ttx_hosts\n"  # a concatenated log's repeated header
        "1700000003.0\t10.0.0.4\t192.0.2.11\tcdn.deep.evil.example.\t/\t-\t(empty)\n"
    )
    index = build_index([
        _ind(1, "[domain-name:value = 'evil.example']"),
        _ind(2, "[url:value = 'http://bad.example/x']"),
        _ind(3, "[url:value = 'http://www.evil.example/a~b']"),
        _ind(4, "[file:hashes.MD5 = '" + "ab" * 16 + "']"),
        _ind(5, "[ipv4-addr:value = '203.0.113.0/24']"),
        _ind(6, "[ipv4-addr:value = '198.51.100.7']"),
    ])
    read = ReadReport()
    line_hits = {(h.event.line, h.indicator_id[11:19]) for h in Matcher(index, now=0).match(
        read_logs([str(log)], "zeek", read))}
    report = ReadReport()
    hits, _, _ = match_zeek_file(str(log), index, report, now=0)
    columnar_hits = {(h.event.line, h.indicator_id[11:19]) for h in hits}
    assert columnar_hits == line_hits == {
        (7, "00000001"), (7, "00000003"), (7, "00000006"), (8, "00000002"), (8, "00000004"), (8, "00000005"),
        (12, "00000001")}
    assert report.bad == read.bad == 1 and report.bad_lines[0].line == 9
    by_line = {h.event.line: h for h in hits}
    assert by_line[12].value == "cdn.deep.evil.example"


def _both_readers(log: Path, index: Any) -> tuple[list[Any], set[tuple[int, str]], int, ReadReport, ReadReport]:
    """The columnar matcher's hits of a log, held equal to the line reader's (returned too, as
    (line, indicator id)), the lines read and both readers' reports."""
    read = ReadReport()
    line_hits = {(h.event.line, h.indicator_id) for h in Matcher(index, now=0).match(
        read_logs([str(log)], "zeek", read))}
    report = ReadReport()
    hits, lines, _ = match_zeek_file(str(log), index, report, now=0)
    assert {(h.event.line, h.indicator_id) for h in hits} == line_hits
    return hits, line_hits, lines, report, read


DIGEST = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("upper_share", "fold_past"), [(0.0, 0.02), (0.2, 1.0), (0.2, 0.0)])
def test_same_hits_on_unusual_names_across_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        upper_share: float, fold_past: float) -> None:
    """Names the prefilters do not hash as they are (upper case, ports, non-ASCII, trailing dots),
    both below and above the share where the column is lower-cased whole, and chunks with and
    without comment lines and lines holding only their first field."""
    import threatmesh.match.columnar as columnar

    monkeypatch.setattr(columnar, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(columnar, "_UNUSUAL_SHARE", fold_past)  # 1.0: never lower-case a whole column
    rng = random.Random(int(upper_share * 100 + fold_past * 10) + 1)
    bad = ["evil.example", "xn--bcher-kva.example", "c2.bad.test"]
    rows = []
    for i in range(1500):
        host = rng.choice([f"h{i}.site.example", f"w{i}.{rng.choice(bad)}", rng.choice(bad), "bücher.example"])
        if rng.random() < upper_share:
            host = "".join(c.upper() if rng.random() < 0.5 else c for c in host)
        host += rng.choice(["", "", "", ".", ":8080"])
        digest = rng.choice(["-", "-", "-", f"{i:032x}", DIGEST])
        if rng.random() < upper_share:
            digest = digest.upper()
        rows.append(f"{1700000000 + i}.0\t10.0.{i % 250}.{i % 200}\t192.0.2.{i % 250}\t{host}\t/p{i}\t{digest}\n")
        if rng.random() < 0.01:
            rows.append("#close\t2023-11-14-23-13-20\n")
        if rng.random() < 0.01:
            rows.append(f"{1700000000 + i}.5\n")  # only the first field: unreadable
    log = tmp_path / "http.log"
    log.write_text("#separator \\x09\n#path\thttp\n#fields\tts\tid.orig_h\tid.resp_h\thost\turi\tmd5\n" + "".join(rows),
                   encoding="utf-8")
    index = build_index([
        _ind(1, "[domain-name:value = 'evil.example']"),
        _ind(2, "[domain-name:value = 'bücher.example']"),
        _ind(4, "[domain-name:value = 'bad.test']"),
        _ind(5, f"[file:hashes.MD5 = '{DIGEST}']"),
        *(_ind(10 + i, f"[url:value = 'http://c2.bad.test{port}/p{i}']") for i in range(0, 1500, 7)
          for port in ("", ":8080")),
    ])
    hits, line_hits, lines, report, read = _both_readers(log, index)
    assert len(line_hits) > 300
    assert report.bad == read.bad > 0 and lines == read.lines


def test_same_hits_when_fields_are_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk is read as strict UTF-8 first; a broken byte in a field read makes it (and the
    chunks after it) read leniently, a broken byte in a field not read changes nothing."""
    import threatmesh.match.columnar as columnar

    monkeypatch.setattr(columnar, "CHUNK_BYTES", 2048)
    rows = []
    for i in range(600):
        host = f"w{i}.evil.example".encode()
        method = b"G\xc3ET" if i == 150 else b"GET"  # a field no prefilter reads
        if i in (300, 450):
            host = b"x\xff" + host  # a field read: lenient from here on
        rows.append(b"%d.0\t10.0.0.%d\t192.0.2.%d\t%s\t%s\t/p%d\t200\n" % (1700000000 + i, i % 250, i % 250, method, host, i))
    log = tmp_path / "http.log"
    log.write_bytes(b"#separator \\x09\n#path\thttp\n#fields\tts\tid.orig_h\tid.resp_h\tmethod\thost\turi\tstatus_code\n"
                    + b"".join(rows))
    index = build_index([_ind(1, "[domain-name:value = 'evil.example']"), _ind(2, "[ipv4-addr:value = '192.0.2.7']")])
    hits, line_hits, lines, report, read = _both_readers(log, index)
    assert {h.event.line for h in hits if h.indicator_id.startswith("indicator--00000001")} == set(range(4, 604))
    assert report.bad == read.bad == 0 and lines == read.lines == 603


def test_url_hosts_of_a_column_equal_url_host_of_each_key() -> None:
    import polars as pl

    from threatmesh.match.columnar import url_hosts
    from threatmesh.match.keys import url_host, url_key

    urls = ["http://user:pw@Host.example:8080/x", "https://[2001:db8::1]:443/a", "https://[2001:db8::2]/",
            "http://a.example?q=1", "http://b.example#frag", "ftp://c.example/", "http://a@b@d.example/p",
            "http://e.example/path://not-a-host", "http://f.example:81", "https://g.example/a@b"]
    keys = [url_key(u) for u in urls]
    assert url_hosts(pl.Series(keys)).to_list() == sorted({url_host(k) for k in keys})
    assert len(set(url_hosts(pl.Series(keys)).to_list())) == 10


def test_a_prefilter_that_fails_to_build_stops_the_scan_with_its_error(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Its parts are built on the workers; a failure there must reach the caller, not hang the
    chunks waiting on it."""
    import threatmesh.match.columnar as columnar

    def broken(index: Any) -> None:
        raise RuntimeError("no tails today")

    monkeypatch.setattr(columnar, "_name_tails", broken)
    log = tmp_path / "http.log"
    log.write_text("#separator \\x09\n#path\thttp\n#fields\tts\tid.orig_h\tid.resp_h\thost\turi\n"
                   "1700000000.0\t10.0.0.1\t192.0.2.1\twww.evil.example\t/\n")
    index = build_index([_ind(1, "[domain-name:value = 'evil.example']")])
    with pytest.raises(RuntimeError, match="no tails today"):
        match_zeek_file(str(log), index, ReadReport(), now=0)
    with pytest.raises(RuntimeError, match="no tails today"):
        columnar.prefilter(index).result()  # without a pool too
