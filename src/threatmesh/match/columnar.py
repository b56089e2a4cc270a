"""Zeek TSV logs matched column by column (polars, numpy): a line costs no Python unless it may hit.

The file is read in chunks of a few MB, two at a time (polars and numpy leave
the interpreter lock while they work, so both cores read). In each chunk, the
columns the matcher reads are tested whole against prefilters built once from
the index (`match.hashed`: 64-bit hashes, a bitmap, a sorted array):

- addresses: the value itself among the indicator addresses; its first four
  characters among those of any address a CIDR range covers (`10.1`, `192.`);
- names: the last n characters of the name among the last n characters of the
  indicator names, for a few n: a name hits an indicator only when it ends with
  the indicator's name, so this passes every name that can hit. Names are
  compared as they are written: the few that normalising could change (upper
  case, a port, non-ASCII, a trailing dot) pass to the exact matcher without a
  test, and a column where they are many is lower-cased whole instead;
- hashes: the lower-cased digest among the indicator digests;
- URLs of an http log: the host among the URL indicators' hosts;
- URL and e-mail columns, and IPv6 addresses when there are IPv6 ranges: one
  value at a time, distinct values only.

Only the columns tested are parsed; the first column (which tells comment
lines) only in chunks that hold a line starting with '#'. The whole line of a
candidate row is cut from the chunk's bytes.

A row some prefilter passes becomes a `LogEvent` and goes through the
line-at-a-time `Matcher`, which decides (normalisation, parent domains, ranges,
validity at the line's time). So the columnar matcher finds exactly what the
line reader finds (tests/match/test_columnar.py holds them to it), and costs
Python work only for the rows that hit or nearly do.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import polars as pl

from threatmesh.logs.fields import ROLE_IP_OR_DOMAIN, ZEEK_FIELDS, ZEEK_PATH_FIELDS
from threatmesh.logs.readers import BadLine, ReadReport, _add, parse_time
from threatmesh.logs.source import Line
from threatmesh.match.engine import Hit, Matcher
from threatmesh.match.hashed import HashedKeys
from threatmesh.match.index import IndicatorIndex
from threatmesh.match.keys import (GROUP_DOMAIN, GROUP_EMAIL, GROUP_HASH, GROUP_IP, GROUP_URL, ROLE_GROUP, url_host,
                                   value_key)
from threatmesh.match.protocol import ROLE_URL, LogEvent

_HEADER_LINES = 8
CHUNK_BYTES = 16 << 20
WORKERS = 2
QUEUED_CHUNKS = 3
# Name suffix lengths tested: each indicator name is tested on the longest one it reaches.
_TAILS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20)


@dataclass
class Prefilter:
    ip: HashedKeys | None = None
    cidr4_heads: HashedKeys | None = None
    cidr6: bool = False
    tails: dict[int, HashedKeys] = field(default_factory=dict)
    hashes: HashedKeys | None = None
    url_hosts: HashedKeys | None = None
    urls: bool = False
    emails: bool = False


def _keys_of(index: IndicatorIndex, group: str) -> tuple[pl.Series, np.ndarray] | None:
    table = index.hashed.get(group)
    if isinstance(table, HashedKeys) and len(table):
        return table.keys, table.slots
    exact = index.exact.get(group)
    if not exact:
        return None
    keys = [k for k, slots in exact.items() for _ in slots]
    slots = [s for _, ss in exact.items() for s in ss]
    return pl.Series("key", keys, dtype=pl.String), np.asarray(slots, dtype=np.uint32)


def _table(index: IndicatorIndex, group: str) -> HashedKeys | None:
    table = index.hashed.get(group)
    if isinstance(table, HashedKeys):
        return table if len(table) else None
    found = _keys_of(index, group)
    return HashedKeys(*found) if found is not None else None


def _cidr4_heads(index: IndicatorIndex) -> HashedKeys | None:
    """The first four characters of every dotted quad in a first octet that some IPv4 range touches."""
    touched = np.zeros(256, dtype=np.bool_)
    for prefixlen, nets in index.cidr[4].items():
        first = np.fromiter(nets, dtype=np.uint64, count=len(nets)) >> np.uint64(24)
        for offset in range(1 << max(0, 8 - prefixlen)):  # a range shorter than /8 spans several octets
            touched[np.minimum(first + np.uint64(offset), np.uint64(255)).astype(np.intp)] = True
    octets = np.flatnonzero(touched).tolist()
    if not octets:
        return None
    heads = {f"{a}.{b}.0.0"[:4] for a in octets for b in range(256)}
    return HashedKeys(sorted(heads))


def url_hosts(keys: pl.Series) -> pl.Series:
    """The distinct hosts of URL keys (`keys.url_host` for a whole column).

    Cut with literal splits, as `url_host` cuts them; the few keys whose
    authority holds user info, a port or an IPv6 literal are read by
    `url_host` itself.
    """
    netloc = keys.str.split_exact("://", 1).struct.field("field_1")
    for stop in ("/", "?", "#"):
        netloc = netloc.str.split_exact(stop, 1).struct.field("field_0")
    frame = pl.DataFrame({"key": keys, "netloc": netloc}).drop_nulls("netloc")
    special = frame["netloc"].str.contains(r"[@\[:]")
    hosts = frame.filter(~special)["netloc"]
    rest: list[str] = []
    for key, cut in frame.filter(special).iter_rows():
        try:
            rest.append(url_host(key))
        except ValueError:  # '[' without ']': no IPv6 literal, the netloc stands for itself
            rest.append(cut)
    return pl.concat([hosts, pl.Series("netloc", rest, dtype=pl.String)]).unique().sort()


def _name_tails(index: IndicatorIndex) -> dict[int, HashedKeys]:
    names = _keys_of(index, GROUP_DOMAIN)
    if names is None:
        return {}
    # Keys repeat (one name, several indicators): a repeated tail only repeats a hash.
    frame = pl.DataFrame({"key": names[0]})
    lengths = frame["key"].str.len_chars().to_numpy()
    tails = np.asarray(_TAILS)
    frame = frame.with_columns(pl.Series("n", tails[np.searchsorted(tails, lengths, side="right") - 1]))
    return {int(n): HashedKeys(part["key"].str.tail(int(n)))  # type: ignore[arg-type]
            for (n,), part in frame.partition_by("n", as_dict=True).items()}


def _url_host_keys(index: IndicatorIndex) -> HashedKeys | None:
    url_keys = _keys_of(index, GROUP_URL) if index.has_group(GROUP_URL) else None
    return HashedKeys(url_hosts(url_keys[0])) if url_keys is not None else None


def _finished(fn: Callable[[IndicatorIndex], Any], index: IndicatorIndex) -> Future[Any]:
    """`fn(index)` run here, as a finished future (its result or its exception)."""
    future: Future[Any] = Future()
    try:
        future.set_result(fn(index))
    except BaseException as e:
        future.set_exception(e)
    return future


def prefilter(index: IndicatorIndex, pool: ThreadPoolExecutor | None = None) -> Future[Prefilter]:
    """The prefilters of an index, built once and kept on it.

    With a pool, the two parts that take time (name tails, URL hosts: about
    0.1 s each for a million indicators) are built on both of its threads at
    once, ahead of the chunks queued after them; without one, here.
    """
    done: Future[Prefilter] = Future()
    cached = getattr(index, "_columnar_prefilter", None)
    if isinstance(cached, Prefilter):
        done.set_result(cached)
        return done
    run = pool.submit if pool is not None else _finished
    tails, hosts = run(_name_tails, index), run(_url_host_keys, index)
    pre = Prefilter(ip=_table(index, GROUP_IP), cidr4_heads=_cidr4_heads(index), cidr6=bool(index.cidr[6]),
                    hashes=_table(index, GROUP_HASH), urls=index.has_group(GROUP_URL),
                    emails=index.has_group(GROUP_EMAIL))
    finishing = threading.Lock()  # both parts' callbacks may run at once, on two threads

    def finish(_: object) -> None:
        with finishing:
            if done.done() or not (tails.done() and hosts.done()):
                return
            try:
                pre.tails, pre.url_hosts = tails.result(), hosts.result()
            except BaseException as e:  # a part failed: every chunk waiting on the prefilter sees why
                done.set_exception(e)
                return
            object.__setattr__(index, "_columnar_prefilter", pre)
            done.set_result(pre)

    tails.add_done_callback(finish)
    hosts.add_done_callback(finish)
    return done


# -- the header --------------------------------------------------------------------------


def _header(path: str) -> dict[str, Any]:
    head: list[str] = []
    meta: dict[str, Any] = {"sep": "\t", "set_sep": ",", "empty": "(empty)", "unset": "-", "path": "",
                            "fields": [], "skip": 0, "skip_bytes": 0}
    with open(path, "rb") as fh:
        for raw in fh:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(head) < _HEADER_LINES:
                head.append(text)
            if not text.startswith("#"):
                break
            meta["skip"] += 1
            meta["skip_bytes"] += len(raw)
            if text.startswith("#separator"):
                meta["sep"] = text.partition(" ")[2].strip().encode().decode("unicode_escape")
                continue
            directive, _, rest = text.partition(meta["sep"])
            key = {"#set_separator": "set_sep", "#empty_field": "empty", "#unset_field": "unset",
                   "#path": "path"}.get(directive)
            if key:
                meta[key] = rest
            elif directive == "#fields":
                meta["fields"] = rest.split(meta["sep"])
            elif directive == "#types":
                meta["types"] = rest.split(meta["sep"])
    meta["head"] = head
    return meta


# -- one chunk ---------------------------------------------------------------------------


@dataclass
class _Spec:
    sep: str
    set_sep: str
    unset: str
    empty: str
    names: list[str]  # every column of the file
    wanted: list[str]  # the columns an event is made of
    tested: list[str]  # the columns read for the prefilters (the others only for candidate lines)
    roles: dict[str, str]
    sets: set[str]  # columns holding sets or vectors
    http: bool
    # The prefilters, built on the workers while the first chunk is read (about 0.1 s for a
    # million indicators, which would otherwise delay every chunk).
    prefilters: Future[Prefilter]
    index: IndicatorIndex
    lossy: bool = False  # a field read was not UTF-8: decode the chunks leniently from then on

    @property
    def pre(self) -> Prefilter:
        return self.prefilters.result()


@dataclass
class _Chunk:
    lines: int = 0
    events: int = 0
    broken: list[int] = field(default_factory=list)  # line numbers, counted from the chunk's first (0)
    # (line, fields, the index groups whose prefilter passed the line) of the candidate lines
    records: list[tuple[int, dict[str, Any], frozenset[str]]] = field(default_factory=list)


def _ip_rows(values: pl.Series, pre: Prefilter) -> Iterator[np.ndarray]:
    if pre.ip is not None:
        yield pre.ip.candidates(values)
    if pre.cidr4_heads is not None:
        yield pre.cidr4_heads.candidates(values.str.head(4))
    if pre.cidr6:
        yield np.flatnonzero(values.str.contains(":", literal=True).fill_null(False).to_numpy())


# Names the index would not spell the same way once normalised: upper case, a port or other ':',
# non-ASCII (IDNA), a trailing dot or space. One pass of this finds them all.
_UNUSUAL_NAME = r"[A-Z:]|[^\x00-\x7F]|[. ]$"
# Past this share of unusual names (a DNS log with 0x20 case randomisation), lower-casing the
# whole column is cheaper than sending them all to the exact matcher.
_UNUSUAL_SHARE = 0.02
# Digests the index would spell otherwise: upper-case hex (anything else is no digest of it).
_UNUSUAL_DIGEST = r"[A-F]"


def _fold(column: pl.Series, unusual_pattern: str = _UNUSUAL_NAME) -> tuple[pl.Series, np.ndarray]:
    """A name column as the prefilters compare it, and the rows they cannot judge.

    Most names in logs are already lower-case ASCII: they are hashed as they are,
    and the few that are not go straight to the exact matcher (which
    normalises), rather than lower-casing every value. Digests likewise, with
    `_UNUSUAL_DIGEST`.
    """
    unusual = np.flatnonzero(column.str.contains(unusual_pattern).fill_null(False).to_numpy())
    if unusual.size <= _UNUSUAL_SHARE * len(column):
        return column, unusual
    lowered = column.str.to_lowercase()
    return lowered, np.flatnonzero(lowered.str.contains(unusual_pattern).fill_null(False).to_numpy())


def _name_rows(names: pl.Series, unusual: np.ndarray, pre: Prefilter) -> Iterator[np.ndarray]:
    """Rows a name can hit on: those whose last n characters are some indicator name's, and the
    unusual ones (see `_fold`)."""
    for n, tails in pre.tails.items():
        yield tails.candidates(names.str.tail(n))
    yield unusual


def _python_rows(values: pl.Series, index: IndicatorIndex, group: str, email: bool) -> np.ndarray:
    """Rows whose value hits, found one distinct value at a time (URL and e-mail columns)."""
    hitting: list[str] = []
    for raw in values.drop_nulls().unique().to_list():
        found: list[tuple[str, str]] = []
        if email:
            _add("email", raw, found)
        else:
            found.append((group, raw))
        for _, value in found:
            try:
                key = value_key(group, value)
            except ValueError:
                continue
            if next(index.lookup(group, key), None) is not None:
                hitting.append(raw)
                break
    if not hitting:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(values.is_in(pl.Series(hitting, dtype=pl.String).implode()).fill_null(False).to_numpy())


def _scan(path: str, start: int, end: int, spec: _Spec) -> _Chunk:
    """The candidate lines of the bytes [start, end) of a file (whole lines), in a worker thread."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    # Where each line ends: the line count, and where a candidate line is cut from.
    octets = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(octets == 10)
    lines = len(ends) + (0 if data.endswith(b"\n") else 1)
    chunk = _Chunk(lines)
    first, last = spec.names[0], spec.names[-1]
    # The first column only tells comment lines ('#close', the headers of a concatenated log) from
    # events; a chunk with no line starting with '#' has none, and need not read it.
    comments = data.startswith(b"#") or bool((octets[ends[ends < len(data) - 1] + 1] == 35).any())

    def read(columns: list[str]) -> pl.DataFrame:
        def parse(encoding: str) -> pl.DataFrame:
            return pl.read_csv(
                data, separator=spec.sep, has_header=False, columns=[spec.names.index(n) for n in columns],
                schema={n: pl.String for n in spec.names}, quote_char=None, truncate_ragged_lines=True,
                encoding=encoding, missing_columns="insert", extra_columns="ignore",
            )

        # Strict UTF-8 checks only the fields read, "lossy" first rewrites the whole chunk (a
        # third of the read): the chunk that has a broken byte in a field read is read again.
        if not spec.lossy:
            try:
                return parse("utf8")
            except pl.exceptions.ComputeError:
                spec.lossy = True  # one such chunk: the file may hold more
        return parse("utf8-lossy")

    df = read([n for n in spec.tested if comments or n != first or n == last or n in spec.roles])
    # An empty line reads as a row of nulls: neither an event nor a broken line. Without the first
    # column, a line holding only that field would look empty too: read it after all.
    blank = df.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if first not in df.columns and blank.any():
        df, comments = read(spec.tested), True
        blank = df.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if df.height == lines:
        line_of = None
    else:  # polars skips empty lines: number the others one by one
        line_of = [i for i, text in enumerate(data.split(b"\n")[:lines]) if text.strip(b"\r")]
    comment = (df[first].str.starts_with("#").fill_null(False) | blank) if comments else blank
    broken = (df[last].is_null() & ~comment).to_numpy()
    for row in np.flatnonzero(broken).tolist():
        chunk.broken.append(row if line_of is None else line_of[row])
    usable = ~(comment.to_numpy() | broken)
    chunk.events = int(usable.sum())
    masks: dict[str, np.ndarray] = {}

    def mark(group: str, rows: np.ndarray) -> None:
        if rows.size:
            mask = masks.get(group)
            if mask is None:
                mask = masks[group] = np.zeros(df.height, dtype=np.bool_)
            mask[rows] = True

    pre = spec.pre
    folded_columns: dict[str, tuple[pl.Series, np.ndarray]] = {}
    for name, role in spec.roles.items():
        if name not in df.columns:
            continue
        column = df[name]
        group = ROLE_GROUP.get(role)
        if role not in ("user-agent", ROLE_URL) and name in spec.sets:
            exploded = pl.DataFrame({"row": np.arange(df.height), "v": column.str.split(spec.set_sep)}).explode("v")
            rows_of, column = exploded["row"].to_numpy(), exploded["v"]
        else:
            rows_of = None
        found: list[tuple[str, np.ndarray]] = []
        if role == ROLE_IP_OR_DOMAIN or group == GROUP_IP:
            found.extend((GROUP_IP, rows) for rows in _ip_rows(column, pre))
        if (role == ROLE_IP_OR_DOMAIN or group == GROUP_DOMAIN) and pre.tails:
            names, unusual = _fold(column)
            if rows_of is None:
                folded_columns[name] = names, unusual
            found.extend((GROUP_DOMAIN, rows) for rows in _name_rows(names, unusual, pre))
        if group == GROUP_HASH and pre.hashes is not None:
            # A digest column is mostly unset in logs other than files.log (an http log's md5 is
            # set only for the few responses Zeek hashed): only the values there are tested.
            there = np.flatnonzero((column != spec.unset).fill_null(False).to_numpy())
            values = column if there.size > len(column) // 2 else column.gather(there)
            digests, unusual = _fold(values, _UNUSUAL_DIGEST)
            for rows in (pre.hashes.candidates(digests), unusual):
                found.append((GROUP_HASH, rows if values is column else there[rows]))
        if group == GROUP_EMAIL and pre.emails:
            found.append((GROUP_EMAIL, _python_rows(column, spec.index, GROUP_EMAIL, email=True)))
        if group == GROUP_URL and pre.urls:
            found.append((GROUP_URL, _python_rows(column, spec.index, GROUP_URL, email=False)))
        for hit_group, rows in found:
            mark(hit_group, rows if rows_of is None else rows_of[rows])
    if spec.http and pre.url_hosts is not None and "host" in df.columns and "uri" in spec.names:
        hosts, unusual = folded_columns.get("host") or _fold(df["host"])
        mark(GROUP_URL, pre.url_hosts.candidates(hosts))
        mark(GROUP_URL, unusual)  # with a port, upper case, non-ASCII: the exact matcher decides
    if not masks:
        return chunk
    any_group = np.logical_or.reduce(list(masks.values()))
    rows = np.flatnonzero(any_group & usable)
    if rows.size:
        # The candidate lines themselves, cut from the chunk: every field of the event, only for them.
        position = {name: i for i, name in enumerate(spec.names)}
        wanted = [(name, position[name]) for name in spec.wanted]
        for row in rows.tolist():
            at = row if line_of is None else line_of[row]
            start = int(ends[at - 1]) + 1 if at > 0 else 0
            end = int(ends[at]) if at < len(ends) else len(data)
            cells = data[start:end].decode("utf-8", "replace").rstrip("\r").split(spec.sep)
            record = {name: cells[i] if i < len(cells) else None for name, i in wanted}
            groups = frozenset(g for g, mask in masks.items() if mask[row])
            chunk.records.append((at, record, groups))
    return chunk


def _chunks(path: str, start: int) -> Iterator[tuple[int, int]]:
    """Byte ranges [start, end) of whole-line chunks of the file from byte `start` (the workers read them)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        while start < size:
            end = min(size, start + CHUNK_BYTES)
            if end < size:
                fh.seek(end)
                end += len(fh.readline())  # to the end of the line the chunk stops in
            yield start, end
            start = end


def _event(path: str, line: int, record: dict[str, Any], spec: _Spec, log_path: str, now: int) -> LogEvent:
    values: list[tuple[str, str]] = []
    for name, role in spec.roles.items():
        cell = record.get(name)
        if cell in (None, spec.unset, spec.empty, ""):
            continue
        for part in cell.split(spec.set_sep) if role not in ("user-agent", ROLE_URL) else (cell,):
            _add(role, part, values)
    host, uri = record.get("host"), record.get("uri")
    if spec.http and host not in (None, spec.unset) and uri not in (None, spec.unset):
        values.append((ROLE_URL, f"http://{host}{uri}"))
    ts = record.get("ts")
    at: int | None = None
    if ts not in (None, spec.unset, ""):
        try:
            at = parse_time(ts)
        except ValueError:
            at = None
    return LogEvent(path, line, -1, at, tuple(values), f"zeek:{log_path}" if log_path else "zeek")


def _prefetch(index: IndicatorIndex, matcher: Matcher, events: list[tuple[LogEvent, frozenset[str]]]) -> None:
    """Resolve at once every key the matcher will look up for these events (bulk index tables)."""
    if not index.hashed or not events:
        return
    wanted: dict[str, list[str]] = {}
    for event, groups in events:
        for role, raw in event.values:
            group = ROLE_GROUP.get(role)
            if group is None or group not in groups or group not in index.hashed:
                continue
            key = matcher.key(group, raw)
            if key is None:
                continue
            keys = wanted.setdefault(group, [])
            keys.append(key)
            if group == GROUP_DOMAIN:
                while "." in key:
                    key = key.partition(".")[2]
                    keys.append(key)
    for group, keys in wanted.items():
        table = index.hashed[group]
        if isinstance(table, HashedKeys):
            table.prefetch(keys)


@dataclass
class ZeekScan:
    """A Zeek file being matched: its first lines (known at once), then its hits chunk by chunk.

    Iterating gives `(lines, hits)`: the lines read so far (header included) and the
    hits among them, so that sightings are written while the next chunks are read.
    """

    head: list[str]
    chunks: Iterator[tuple[int, list[Hit]]]

    def __iter__(self) -> Iterator[tuple[int, list[Hit]]]:
        return self.chunks


def scan_zeek_file(path: str, index: IndicatorIndex, report: ReadReport, *, now: int) -> ZeekScan:
    """Match one Zeek TSV file, lazily: see `ZeekScan`."""
    meta = _header(path)
    names: list[str] = meta["fields"]
    report.formats[path] = "zeek"
    report.heads[path] = meta["head"]
    if not names:
        report.bad += 1
        report.bad_lines.append(BadLine(path, 1, 0, "no #fields header: not a Zeek TSV log"))
        return ZeekScan(meta["head"], iter(()))
    return ZeekScan(meta["head"], _scan_file(path, meta, index, report, now))


def _scan_file(path: str, meta: dict[str, Any], index: IndicatorIndex, report: ReadReport,
               now: int) -> Iterator[tuple[int, list[Hit]]]:
    names: list[str] = meta["fields"]
    log_path = meta["path"]
    per_path = ZEEK_PATH_FIELDS.get(log_path, {})
    roles = {n: per_path.get(n) or ZEEK_FIELDS[n] for n in names if n in per_path or n in ZEEK_FIELDS}
    http = log_path == "http"
    # The first and last columns always: a '#' in the first marks a comment line (the '#close'
    # trailer, the headers of a concatenated log), a null in the last a line that is too short.
    wanted = [n for i, n in enumerate(names) if n in roles or n == "ts" or (http and n == "uri")
              or i in (0, len(names) - 1)]
    tested = [n for i, n in enumerate(names) if i in (0, len(names) - 1) or (http and n == "host")
              or ROLE_GROUP.get(roles.get(n, "")) is not None or roles.get(n) == ROLE_IP_OR_DOMAIN]
    types = dict(zip(names, meta.get("types", [])))
    sets = {n for n in roles if types.get(n, "").startswith(("set", "vector"))}
    if "types" not in meta:  # without #types, any column may hold sets: split those with a separator
        sets = set(roles)
    matcher = Matcher(index, now=now)
    total = meta["skip"]
    report.lines += meta["skip"]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        spec = _Spec(meta["sep"], meta["set_sep"], meta["unset"], meta["empty"], names, wanted, tested, roles,
                     sets, http, prefilter(index, pool), index)
        pending: list[Future[_Chunk]] = []
        chunks = _chunks(path, meta["skip_bytes"])
        while True:
            # Two chunks in work and a few queued: both cores stay busy while this thread writes
            # sightings, and memory stays bounded (a chunk and its columns: about 40 MB).
            while len(pending) < WORKERS + QUEUED_CHUNKS:
                nxt = next(chunks, None)
                if nxt is None:
                    break
                pending.append(pool.submit(_scan, path, nxt[0], nxt[1], spec))
            if not pending:
                break
            chunk = pending.pop(0).result()
            first_line = total + 1
            total += chunk.lines
            report.lines += chunk.lines
            report.events += chunk.events
            for line in chunk.broken:
                report.reject(path, Line(first_line + line, -1, ""), "fewer fields than the #fields header names")
            events = [(_event(path, first_line + line, record, spec, log_path, now), groups)
                      for line, record, groups in chunk.records]
            _prefetch(index, matcher, events)
            hits: list[Hit] = []
            for event, groups in events:
                hits.extend(matcher.match_event(event, groups))
            yield total, hits


def match_zeek_file(path: str, index: IndicatorIndex, report: ReadReport, *, now: int) -> tuple[list[Hit], int, list[str]]:
    """Hits of one Zeek TSV file, the number of lines read, and its first lines."""
    scan = scan_zeek_file(path, index, report, now=now)
    hits: list[Hit] = []
    lines = 0
    for lines, found in scan:
        hits.extend(found)
    return hits, lines, scan.head
