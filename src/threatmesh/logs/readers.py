"""Log readers: one per format, each turning lines into `LogEvent`s with values by role.

A line that cannot be read is recorded in the `ReadReport` with its position
and reading goes on (IntelMQ's rule: a bad line is kept and reported, never
silently dropped, and never stops the feed).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from threatmesh.logs.fields import (
    GENERIC_FIELDS, ROLE_IP_OR_DOMAIN, SYSMON_FIELDS, SYSMON_HASH_FIELDS, TIME_FIELDS, ZEEK_FIELDS,
    ZEEK_PATH_FIELDS,
)
from threatmesh.logs.source import Line
from threatmesh.match.protocol import (
    ROLE_DOMAIN, ROLE_EMAIL, ROLE_IP, ROLE_MD5, ROLE_SHA1, ROLE_SHA256,
    ROLE_SHA512, ROLE_SRC_IP, ROLE_URL, ROLE_USER, ROLE_USER_AGENT, LogEvent,
)

FORMATS = ("zeek", "zeek-json", "csv", "jsonl", "syslog", "apache", "sysmon")
MAX_KEPT_ERRORS = 100  # per report: enough to show what is wrong, bounded for huge bad files


@dataclass(frozen=True, slots=True)
class BadLine:
    source: str
    line: int
    offset: int
    reason: str

    def describe(self) -> str:
        return f"{self.source}, line {self.line}: {self.reason}"


@dataclass
class ReadReport:
    """What reading saw: lines, events, and the lines that could not be read (first ones kept)."""

    lines: int = 0
    events: int = 0
    bad: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # source -> format used
    heads: dict[str, list[str]] = field(default_factory=dict)  # source -> its first lines (its identity)

    def reject(self, source: str, line: Line, reason: str) -> None:
        self.bad += 1
        if len(self.bad_lines) < MAX_KEPT_ERRORS:
            self.bad_lines.append(BadLine(source, line.number, line.offset, reason))


Values = list[tuple[str, str]]


def _iso_micros(text: str) -> int:
    # fromisoformat reads RFC 3339 since Python 3.11, 'Z' and fractions included.
    dt = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if " " in text.strip()[:11] else text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # logs without a zone are taken as UTC
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def parse_time(value: Any) -> int:
    """µs since the epoch from epoch seconds (int, float or string) or an ISO 8601 text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds since the epoch, as many JSON exporters write
            seconds /= 1000.0
        return int(round(seconds * 1_000_000))
    text = str(value).strip()
    if not text:
        raise ValueError("empty time")
    if text[0].isdigit() and text.replace(".", "", 1).isdigit():
        return parse_time(float(text))
    try:
        return _iso_micros(text)
    except ValueError:
        raise ValueError(f"not a time: {value!r}") from None


def _split_ip_or_domain(role: str, value: str, out: Values) -> None:
    if role == ROLE_IP_OR_DOMAIN:
        role = ROLE_IP if (value.replace(".", "").isdigit() or ":" in value) else ROLE_DOMAIN
    out.append((role, value))


_EMAIL_IN_TEXT = re.compile(r"[^\s<>\"',;]+@[^\s<>\"',;]+")


def _add(role: str, value: str, out: Values) -> None:
    if role == ROLE_EMAIL:
        out.extend((ROLE_EMAIL, m) for m in _EMAIL_IN_TEXT.findall(value))
    else:
        _split_ip_or_domain(role, value, out)


# -- Zeek TSV ------------------------------------------------------------------------


class ZeekReader:
    """Zeek's default TSV logs (every standard log): the `#fields` header names the columns.

    Zeek escapes separators inside values as `\\x09` (and `\\x2c` in sets), so
    a plain split is exact; '-' is unset and '(empty)' an empty set.
    """

    name = "zeek"

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        sep, set_sep, empty, unset = "\t", ",", "(empty)", "-"
        columns: list[tuple[int, str]] = []  # (column index, role) of the columns that matter
        url_cols: tuple[int, int] | None = None
        ts_col: int | None = None
        width = 0
        path = ""
        for line in lines:
            text = line.text
            report.lines += 1
            if text.startswith("#"):
                directive, _, rest = text.partition(sep if not text.startswith("#separator") else " ")
                if directive == "#separator":
                    sep = rest.strip().encode().decode("unicode_escape")
                elif directive == "#set_separator":
                    set_sep = rest
                elif directive == "#empty_field":
                    empty = rest
                elif directive == "#unset_field":
                    unset = rest
                elif directive == "#path":
                    path = rest
                elif directive == "#fields":
                    names = rest.split(sep)
                    width = len(names)
                    per_path = ZEEK_PATH_FIELDS.get(path, {})
                    columns = [(i, per_path.get(n) or ZEEK_FIELDS[n]) for i, n in enumerate(names)
                               if n in per_path or n in ZEEK_FIELDS]
                    ts_col = names.index("ts") if "ts" in names else None
                    url_cols = (names.index("host"), names.index("uri")) \
                        if path == "http" and "host" in names and "uri" in names else None
                continue
            if not text:
                continue
            if not width:
                report.reject(source, line, "data before the #fields header: not a Zeek TSV log")
                continue
            cells = text.split(sep)
            if len(cells) != width:
                report.reject(source, line, f"{len(cells)} fields where the #fields header names {width}")
                continue
            time: int | None = None
            if ts_col is not None and cells[ts_col] != unset:
                try:
                    time = parse_time(cells[ts_col])
                except ValueError as exc:
                    report.reject(source, line, f"ts: {exc}")
                    continue
            values: Values = []
            for i, role in columns:
                cell = cells[i]
                if cell == unset or cell == empty:
                    continue
                if set_sep in cell and role not in (ROLE_USER_AGENT, "url"):
                    for part in cell.split(set_sep):
                        _add(role, part, values)
                else:
                    _add(role, cell, values)
            if url_cols is not None:
                host, uri = cells[url_cols[0]], cells[url_cols[1]]
                if host != unset and uri != unset:
                    values.append((ROLE_URL, f"http://{host}{uri}"))
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values), f"zeek:{path}" if path else "zeek")


# -- JSON: Zeek JSON, JSON lines with a mapping, Sysmon/Windows events --------------


def _flatten(obj: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested objects as dotted keys ('source': {'ip': ..} -> 'source.ip'), the spelling field maps use."""
    out = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value
    return out


def _json_values(record: Mapping[str, Any], mapping: Mapping[str, str], out: Values) -> None:
    for key, role in mapping.items():
        value = record.get(key)
        if value is None or value == "" or value == "-":
            continue
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                _add(role, str(item), out)


class JsonLinesReader:
    """One JSON object per line. `mapping` names the fields (dotted paths for nested ones) and
    their roles; without one, the common names of firewall, proxy and SIEM exports are used."""

    name = "jsonl"

    def __init__(self, mapping: Mapping[str, str] | None = None, time_field: str | None = None) -> None:
        self.mapping = {k.lower(): v for k, v in (mapping or GENERIC_FIELDS).items()}
        self.time_fields = (time_field.lower(),) if time_field else TIME_FIELDS

    def _record(self, line: Line, source: str, report: ReadReport) -> dict[str, Any] | None:
        try:
            obj = orjson.loads(line.text)
        except orjson.JSONDecodeError as exc:
            report.reject(source, line, f"not JSON: {exc}")
            return None
        if not isinstance(obj, dict):
            report.reject(source, line, f"a JSON {type(obj).__name__}, not an object")
            return None
        return obj

    def _time(self, record: Mapping[str, Any]) -> int | None:
        for name in self.time_fields:
            if name in record and record[name] not in (None, ""):
                return parse_time(record[name])
        return None

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            obj = self._record(line, source, report)
            if obj is None:
                continue
            record = {k.lower(): v for k, v in _flatten(obj).items()}
            try:
                time = self._time(record)
            except ValueError as exc:
                report.reject(source, line, str(exc))
                continue
            values: Values = []
            _json_values(record, self.mapping, values)
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values), self.name)


class ZeekJsonReader(JsonLinesReader):
    """Zeek's JSON logs (and the JSON streaming logs package, with `_path`)."""

    name = "zeek-json"

    def __init__(self) -> None:
        super().__init__({k.lower(): v for k, v in ZEEK_FIELDS.items()}, "ts")

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            record = self._record(line, source, report)
            if record is None:
                continue
            path = str(record.get("_path", ""))
            try:
                time = parse_time(record["ts"]) if record.get("ts") not in (None, "") else None
            except ValueError as exc:
                report.reject(source, line, f"ts: {exc}")
                continue
            mapping = dict(ZEEK_FIELDS)
            mapping.update(ZEEK_PATH_FIELDS.get(path, {}))
            values: Values = []
            _json_values(record, mapping, values)
            if path == "http" and isinstance(record.get("host"), str) and isinstance(record.get("uri"), str):
                values.append((ROLE_URL, f"http://{record['host']}{record['uri']}"))
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values),
                           f"zeek:{path}" if path else self.name)


_HASH_PAIR = re.compile(r"(MD5|SHA1|SHA256|SHA512)=([0-9A-Fa-f]+)")
_HASH_ROLE = {"MD5": ROLE_MD5, "SHA1": ROLE_SHA1, "SHA256": ROLE_SHA256, "SHA512": ROLE_SHA512}


class SysmonReader(JsonLinesReader):
    """Windows and Sysmon events as JSON lines: flat EventData fields, or nested under
    `Event.EventData` (Windows' own XML turned JSON) or `winlog.event_data` (Winlogbeat)."""

    name = "sysmon"

    def __init__(self) -> None:
        super().__init__(SYSMON_FIELDS)

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            obj = self._record(line, source, report)
            if obj is None:
                continue
            data: dict[str, Any] = dict(obj)
            for outer, inner in (("Event", "EventData"), ("winlog", "event_data")):
                nested = obj.get(outer)
                if isinstance(nested, dict) and isinstance(nested.get(inner), dict):
                    data.update(nested[inner])
                    system = nested.get("System")
                    if isinstance(system, dict):
                        data.setdefault("EventID", system.get("EventID"))
            event_id = data.get("EventID", data.get("event_id", (obj.get("winlog") or {}).get("event_id")))
            stamp = data.get("UtcTime") or obj.get("@timestamp") or data.get("TimeCreated")
            try:
                time = parse_time(stamp) if stamp else None
            except ValueError as exc:
                report.reject(source, line, str(exc))
                continue
            values: Values = []
            _json_values(data, SYSMON_FIELDS, values)
            for name in SYSMON_HASH_FIELDS:
                if isinstance(data.get(name), str):
                    values.extend((_HASH_ROLE[k.upper()], v) for k, v in _HASH_PAIR.findall(data[name].upper()))
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values),
                           f"sysmon:{event_id}" if event_id is not None else self.name)


# -- CSV -----------------------------------------------------------------------------


class CsvReader:
    """CSV with a header line; columns are mapped by name (the generic names unless a mapping is given)."""

    name = "csv"

    def __init__(self, mapping: Mapping[str, str] | None = None, time_field: str | None = None) -> None:
        self.mapping = {k.lower(): v for k, v in (mapping or GENERIC_FIELDS).items()}
        self.time_fields = (time_field.lower(),) if time_field else TIME_FIELDS

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        header: list[str] | None = None
        columns: list[tuple[int, str]] = []
        ts_col: int | None = None
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            try:
                cells = next(csv.reader([line.text]))
            except csv.Error as exc:
                report.reject(source, line, f"not CSV: {exc}")
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                columns = [(i, self.mapping[n]) for i, n in enumerate(header) if n in self.mapping]
                ts_col = next((header.index(n) for n in self.time_fields if n in header), None)
                continue
            if len(cells) != len(header):
                report.reject(source, line, f"{len(cells)} columns where the header names {len(header)}")
                continue
            try:
                time = parse_time(cells[ts_col]) if ts_col is not None and cells[ts_col].strip() else None
            except ValueError as exc:
                report.reject(source, line, str(exc))
                continue
            values: Values = []
            for i, role in columns:
                if cells[i].strip() and cells[i] != "-":
                    _add(role, cells[i].strip(), values)
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values), self.name)


# -- syslog, sshd auth logs ------------------------------------------------------------

_SYSLOG_RE = re.compile(
    r"(?:<\d+>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?)\s+"
    r"(?P<host>\S+)\s+(?P<prog>[^\s:\[]+(?:\([^)]*\))?)(?:\[\d+\])?(?: [\d.]+)?:\s?(?P<msg>.*)"
)
_IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_SSHD_SRC = re.compile(r"(?:from|by|rhost=|\[)\s*(?P<ip>(?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)")
_SSHD_USER = re.compile(r"(?:[Ii]nvalid user|Failed password for(?: invalid user)?|Accepted \w+ for|user=?)\s+(\S+)")
_SSHD_HOST = re.compile(r"getaddrinfo for (\S+)")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}


def _syslog_time(text: str, year: int) -> int:
    if text[0].isdigit():
        return _iso_micros(text)
    dt = datetime(year, _MONTHS[text[:3]], int(text[4:6]), int(text[7:9]), int(text[10:12]), int(text[13:15]),
                  tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000


def _guess_year(text: str, now: datetime) -> int:
    """The year of a yearless syslog date: this year, unless that puts it in the future."""
    if text[0].isdigit():
        return now.year
    month, day = _MONTHS.get(text[:3], 1), int(text[4:6] or 1)
    return now.year - 1 if (month, day) > (now.month, now.day + 1) else now.year


class SyslogReader:
    """BSD syslog (RFC 3164) and RFC 5424-style lines; sshd and PAM messages give the remote
    address, user and reverse-DNS name, other messages every IPv4 address they mention.

    RFC 3164 lines carry no year and no zone: `year` (default: the current one,
    or the previous one for dates that would lie in the future) and UTC are assumed, which matters only for indicators' validity windows.
    """

    name = "syslog"

    def __init__(self, year: int | None = None) -> None:
        self.year = year
        self._now = datetime.now(timezone.utc)

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            m = _SYSLOG_RE.match(line.text)
            if m is None:
                report.reject(source, line, "not a syslog line (timestamp host program: message)")
                continue
            try:
                time = _syslog_time(m["ts"], self.year or _guess_year(m["ts"], self._now))
            except (ValueError, KeyError) as exc:
                report.reject(source, line, f"bad syslog timestamp {m['ts']!r}: {exc}")
                continue
            msg, prog = m["msg"], m["prog"]
            values: Values = []
            if prog.startswith("sshd") or "sshd" in msg[:40]:
                src = _SSHD_SRC.search(msg)
                if src:
                    values.append((ROLE_SRC_IP, src["ip"]))
                else:  # a message shape not foreseen: its addresses still count, direction unknown
                    values.extend((ROLE_IP, ip) for ip in _IPV4_RE.findall(msg))
                user = _SSHD_USER.search(msg)
                if user and user[1] not in ("unknown",):
                    values.append((ROLE_USER, user[1]))
                host = _SSHD_HOST.search(msg)
                if host:
                    values.append((ROLE_DOMAIN, host[1]))
            else:
                for ip in _IPV4_RE.findall(msg):
                    values.append((ROLE_IP, ip))
                host = re.search(r"rhost=(\S+)", msg)
                if host and not _IPV4_RE.fullmatch(host[1]):
                    values.append((ROLE_DOMAIN, host[1]))
            report.events += 1
            yield LogEvent(source, line.number, line.offset, time, tuple(values),
                           "sshd" if prog.startswith("sshd") else "syslog")


# -- Apache / nginx --------------------------------------------------------------------

_COMBINED_RE = re.compile(
    r'(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+)(?: [^"]*)?" '
    r'(?P<status>\d{3}|-) (?P<size>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)
_ERROR_RE = re.compile(r"\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:.]+ \d{4})\] \[[^\]]+\](?: \[pid[^\]]*\])?"
                       r"(?: \[client (?P<ip>[^\]:]+|\[?[0-9a-fA-F:]+\]?)(?::\d+)?\])?")


class ApacheReader:
    """Apache and nginx access logs (common and combined formats) and Apache error logs."""

    name = "apache"

    def __init__(self, default_host: str | None = None) -> None:
        # An access log has paths, not URLs; with the site's name they become URLs to match.
        self.default_host = default_host

    def events(self, lines: Iterable[Line], source: str, report: ReadReport) -> Iterator[LogEvent]:
        for line in lines:
            report.lines += 1
            if not line.text.strip():
                continue
            values: Values = []
            m = _COMBINED_RE.match(line.text)
            if m is not None:
                try:
                    dt = datetime.strptime(m["ts"], "%d/%b/%Y:%H:%M:%S %z")
                except ValueError:
                    report.reject(source, line, f"bad access-log time {m['ts']!r}")
                    continue
                time = int(dt.timestamp()) * 1_000_000
                values.append((ROLE_SRC_IP, m["ip"]))
                if m["user"] != "-":
                    values.append((ROLE_USER, m["user"]))
                target = m["target"]
                if "://" in target:  # a proxy's log: the full URL
                    values.append((ROLE_URL, target))
                elif self.default_host:
                    values.append((ROLE_URL, f"http://{self.default_host}{target}"))
                if m["referer"] and "://" in m["referer"]:
                    values.append((ROLE_URL, m["referer"]))
                if m["agent"] and m["agent"] != "-":
                    values.append((ROLE_USER_AGENT, m["agent"]))
                report.events += 1
                yield LogEvent(source, line.number, line.offset, time, tuple(values), "apache:access")
                continue
            e = _ERROR_RE.match(line.text)
            if e is None:
                report.reject(source, line, "neither an access-log (common/combined) nor an error-log line")
                continue
            try:
                stamp = e["ts"].split(".")[0] + e["ts"][-5:] if "." in e["ts"] else e["ts"]
                dt = datetime.strptime(stamp, "%a %b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)
            except ValueError:
                report.reject(source, line, f"bad error-log time {e['ts']!r}")
                continue
            if e["ip"]:
                values.append((ROLE_SRC_IP, e["ip"].strip("[]")))
            report.events += 1
            yield LogEvent(source, line.number, line.offset, int(dt.timestamp()) * 1_000_000, tuple(values),
                           "apache:error")


# -- format detection --------------------------------------------------------------------


Reader = ZeekReader | ZeekJsonReader | JsonLinesReader | SysmonReader | CsvReader | SyslogReader | ApacheReader


def detect_format(first_lines: list[str]) -> str | None:
    """The format of a log from its first non-empty lines; None when nothing fits."""
    sample = [t for t in first_lines if t.strip()][:5]
    if not sample:
        return None
    head = sample[0]
    if head.startswith("#separator") or head.startswith("#fields"):
        return "zeek"
    if head.lstrip().startswith("{"):
        try:
            obj = orjson.loads(head)
        except orjson.JSONDecodeError:
            return "jsonl"
        if isinstance(obj, dict):
            keys = set(_flatten(obj))
            if "_path" in obj or "id.orig_h" in obj or "uid" in obj and "ts" in obj:
                return "zeek-json"
            if "EventID" in obj or any(k.startswith(("Event.", "winlog.")) for k in keys):
                return "sysmon"
        return "jsonl"
    if _SYSLOG_RE.match(head):
        return "syslog"
    if _COMBINED_RE.match(head) or _ERROR_RE.match(head):
        return "apache"
    if "," in head and len(sample) > 1 and all(t.count(",") == head.count(",") for t in sample[1:3]):
        return "csv"
    return None


def make_reader(fmt: str, *, mapping: Mapping[str, str] | None = None, time_field: str | None = None,
                year: int | None = None, default_host: str | None = None) -> Reader:
    factories: dict[str, Callable[[], Reader]] = {
        "zeek": ZeekReader,
        "zeek-json": ZeekJsonReader,
        "jsonl": lambda: JsonLinesReader(mapping, time_field),
        "csv": lambda: CsvReader(mapping, time_field),
        "sysmon": SysmonReader,
        "syslog": lambda: SyslogReader(year),
        "apache": lambda: ApacheReader(default_host),
    }
    if fmt not in factories:
        raise ValueError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
    return factories[fmt]()

