"""Log readers: each format's fields land in the right roles; bad lines are counted with their place."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import corpus_path
from threatmesh.logs import ReadReport, detect_format, read_logs
from threatmesh.logs.readers import make_reader, parse_time
from threatmesh.logs.source import follow_lines, text_lines

ZEEK_DNS = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tvector[string]\n"
    "1521911720.865716\tC1\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\tise.wrccdc.org\tise.cpp.edu,134.71.3.16\n"
    "1521911721.000000\tC2\t10.47.1.101\t41773\t10.0.0.100\t53\tudp\t-\t(empty)\n"
    "only\ttwo\n"
    "#close\t2024-04-12-19-29-12\n"
)


def _events(fmt: str, text: str, **options: object) -> tuple[list, ReadReport]:
    report = ReadReport()
    reader = make_reader(fmt, **options)  # type: ignore[arg-type]
    return list(reader.events(text_lines(text), "sample", report)), report


def test_zeek_tsv_maps_fields_sets_and_unset_values() -> None:
    events, report = _events("zeek", ZEEK_DNS)
    assert len(events) == 2
    first = events[0]
    assert first.time == 1521911720865716
    assert first.log_type == "zeek:dns"
    assert ("src-ip", "10.47.1.100") in first.values and ("dst-ip", "10.0.0.100") in first.values
    assert ("domain", "ise.wrccdc.org") in first.values
    # a vector of answers is split, each answer classified as a name or an address
    assert ("domain", "ise.cpp.edu") in first.values and ("ip", "134.71.3.16") in first.values
    assert not any(role == "domain" for role, _ in events[1].values)  # '-' and '(empty)' are no values
    assert first.line == 8 and events[1].line == 9
    assert report.bad == 1 and report.bad_lines[0].line == 10
    assert "2 fields" in report.bad_lines[0].reason


def test_zeek_http_host_and_uri_make_a_url() -> None:
    text = ("#separator \\x09\n#path\thttp\n#fields\tts\tid.orig_h\tid.resp_h\thost\turi\tuser_agent\n"
            "1700000000.5\t10.0.0.1\t93.184.216.34\tEvil.COM\t/a?b=1\tcurl/8\n")
    (event,), _ = _events("zeek", text)
    assert ("url", "http://Evil.COM/a?b=1") in event.values
    assert ("domain", "Evil.COM") in event.values and ("user-agent", "curl/8") in event.values


def test_zeek_json_and_smtp_addresses() -> None:
    line = ('{"_path":"smtp","ts":"2018-03-24T17:15:21.789543Z","id.orig_h":"10.164.94.120","id.resp_h":"10.47.8.208",'
            '"mailfrom":"<Boss@Corp.example>","rcptto":["a@b.example","c@d.example"],"from":"\\"Boss\\" <boss@corp.example>"}')
    (event,), report = _events("zeek-json", line + "\nnot json\n")
    assert event.time == parse_time("2018-03-24T17:15:21.789543Z") == 1521911721789543
    emails = [v for r, v in event.values if r == "email"]
    assert "Boss@Corp.example" in emails and "a@b.example" in emails and "boss@corp.example" in emails
    assert report.bad == 1 and report.bad_lines[0].line == 2


def test_csv_with_header_and_mapping() -> None:
    text = "time,client,server,qname\n2024-01-02T03:04:05Z,10.1.1.1,8.8.8.8,evil.example\n2024-01-02,bad\n"
    events, report = _events("csv", text, mapping={"client": "src-ip", "server": "dst-ip", "qname": "domain"})
    assert len(events) == 1 and set(events[0].values) == {("src-ip", "10.1.1.1"), ("dst-ip", "8.8.8.8"),
                                                         ("domain", "evil.example")}
    assert events[0].time == parse_time("2024-01-02T03:04:05Z")
    assert report.bad == 1 and report.bad_lines[0].line == 3


def test_jsonl_nested_fields_with_default_names() -> None:
    text = ('{"@timestamp": 1704164645000, "source": {"ip": "10.0.0.5"}, "destination": {"ip": "203.0.113.9"},'
            ' "url": {"full": "https://x.example/p"}}\n[1,2]\n')
    (event,), report = _events("jsonl", text)
    assert event.time == 1704164645000000  # milliseconds recognised
    assert ("src-ip", "10.0.0.5") in event.values and ("dst-ip", "203.0.113.9") in event.values
    assert ("url", "https://x.example/p") in event.values
    assert report.bad == 1 and "not an object" in report.bad_lines[0].reason


def test_sysmon_nested_eventdata_and_hashes() -> None:
    text = ('{"winlog": {"event_id": 3, "event_data": {"UtcTime": "2024-01-02 03:04:05.123", "SourceIp": "10.0.0.2",'
            ' "DestinationIp": "198.51.100.7", "DestinationHostname": "c2.example",'
            ' "Hashes": "SHA256=AB' + "0" * 62 + ',MD5=' + "F" * 32 + '"}}}\n')
    (event,), _ = _events("sysmon", text)
    assert event.log_type == "sysmon:3"
    assert ("dst-ip", "198.51.100.7") in event.values and ("domain", "c2.example") in event.values
    assert ("sha256", "AB" + "0" * 62) in event.values and ("md5", "F" * 32) in event.values
    assert event.time == parse_time("2024-01-02T03:04:05.123Z")


def test_apache_combined_and_error_lines() -> None:
    text = ('203.0.113.5 - alice [10/Oct/2023:13:55:36 +0200] "GET /x.php?a=1 HTTP/1.1" 200 2326 '
            '"http://ref.example/" "Mozilla/5.0"\n'
            '[Sun Dec 04 05:15:09 2005] [error] [client 222.166.160.184] Directory index forbidden\n'
            'garbage\n')
    events, report = _events("apache", text, default_host="www.site.example")
    access, error = events
    assert ("src-ip", "203.0.113.5") in access.values and ("user", "alice") in access.values
    assert ("url", "http://www.site.example/x.php?a=1") in access.values
    assert access.time == parse_time("2023-10-10T11:55:36Z")
    assert ("src-ip", "222.166.160.184") in error.values
    assert report.bad == 1 and report.bad_lines[0].line == 3


def test_sshd_lines_give_address_user_and_reverse_name() -> None:
    text = ("Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com "
            "[173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!\n"
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n")
    first, second = _events("syslog", text, year=2023)[0]
    assert ("domain", "ns.marryaldkfaczcz.com") in first.values and ("src-ip", "173.234.31.186") in first.values
    assert ("user", "webmaster") in second.values and second.time == parse_time("2023-12-10T06:55:46Z")


def test_detect_format_on_every_corpus_log() -> None:
    logs = corpus_path("logs")
    expected = {"zeek-default": "zeek", "zeek-json": "zeek-json", "Apache": "apache", "OpenSSH": "syslog",
                "Linux": "syslog"}
    for folder, fmt in expected.items():
        for path in sorted(logs.rglob(f"{folder}/*")):
            if path.suffix in (".log", ".json"):
                head = path.read_text(errors="replace").splitlines()[:8]
                assert detect_format(head) == fmt, path


def test_real_zeek_logs_read_without_loss() -> None:
    folder = corpus_path("logs", "zeek-wrccdc2018", "zeek-default")
    report = ReadReport()
    events = list(read_logs([str(folder)], "auto", report))
    data_lines = sum(1 for p in folder.glob("*.log") for line in p.read_text(errors="replace").splitlines()
                     if line and not line.startswith("#"))
    assert report.bad == 0, report.bad_lines[:3]
    assert len(events) == report.events == data_lines
    assert all(e.time is not None and 1521900000e6 < e.time < 1522000000e6 for e in events)
    dns = [e for e in events if e.log_type == "zeek:dns"]
    assert len(dns) > 50_000 and all(any(r == "src-ip" for r, _ in e.values) for e in dns)


def test_real_loghub_logs_count_what_they_cannot_read() -> None:
    report = ReadReport()
    events = list(read_logs([str(corpus_path("logs", "loghub"))], "auto", report))
    by_source = {label: fmt for label, fmt in report.formats.items()}
    assert any(label.endswith("OpenSSH_2k.log") and fmt == "syslog" for label, fmt in by_source.items())
    ssh = [e for e in events if e.log_type == "sshd"]
    assert len(ssh) > 1500
    assert any(("src-ip", "173.234.31.186") in e.values for e in ssh)
    # Proxifier's log is no format threatmesh reads: reported with its name, and the rest goes on
    assert any(b.source.endswith("Proxifier_2k.log") and "not recognised" in b.reason for b in report.bad_lines)
    assert report.lines >= 6000


def test_gzip_directories_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with gzip.open(tmp_path / "d" / "dns.log.gz", "wt") as fh:
        fh.write(ZEEK_DNS)
    report = ReadReport()
    events = list(read_logs([str(tmp_path / "d")], "auto", report))
    assert len(events) == 2 and report.bad == 1
    from threatmesh.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        list(read_logs([str(tmp_path / "missing.log")], "auto", ReadReport()))


def test_follow_reads_lines_as_they_are_written(tmp_path: Path) -> None:
    path = tmp_path / "grow.log"
    path.write_text("first\n")
    seen: list[str] = []
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.15)
        with open(path, "a") as fh:
            fh.write("sec")
            fh.flush()
            time.sleep(0.15)
            fh.write("ond\nthird\n")

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 5
    for line in follow_lines(str(path), poll_seconds=0.02, stop=lambda: done.is_set() or time.monotonic() > deadline):
        seen.append(line.text)
        if len(seen) == 3:
            done.set()
    thread.join()
    assert seen == ["first", "second", "third"]  # a half-written line waits for its end
