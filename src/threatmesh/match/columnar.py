"""The columnar matcher for Zeek TSV logs: polars reads the columns that matter and joins them
against the indicator tables, so a line costs no Python at all unless it hits.

- exact values (addresses, hashes, names): one hash join per column;
- subdomains: the distinct names of a column, stripped of one label at a time, joined again;
- CIDR ranges: IPv4 addresses as integers, masked once per prefix length in use, joined;
  IPv6 addresses (few in most logs) go through the index's own lookup;
- URLs: rows whose host is the host of some URL indicator are normalised in Python and
  looked up (the prefilter makes that a handful of rows);
- e-mail fields (free text such as '"Name" <a@b>') are read in Python, distinct values only.

Hits are then checked against the indicators' validity at the line's time and
turned into the same `Hit`s the line-at-a-time matcher produces.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from threatmesh.logs.fields import ROLE_IP_OR_DOMAIN, ZEEK_FIELDS, ZEEK_PATH_FIELDS
from threatmesh.logs.readers import ReadReport, _add, parse_time
from threatmesh.match.engine import Hit
from threatmesh.match.index import IndicatorIndex
from threatmesh.match.keys import (
    GROUP_DOMAIN, GROUP_EMAIL, GROUP_HASH, GROUP_IP, GROUP_URL, ROLE_GROUP, url_host, value_key,
)
from threatmesh.match.protocol import ROLE_URL, LogEvent

_HEADER_LINES = 8


def _tables(index: IndicatorIndex) -> dict[str, pl.DataFrame]:
    """(key, slot) frames of the index's exact tables, built once per index and kept on it."""
    cached = getattr(index, "_polars_tables", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    tables: dict[str, pl.DataFrame] = {}
    for group, table in index.exact.items():
        keys: list[str] = []
        slots: list[int] = []
        for key, owners in table.items():
            for slot in owners:
                keys.append(key)
                slots.append(slot)
        tables[group] = pl.DataFrame({"key": keys, "slot": slots}, schema={"key": pl.String, "slot": pl.UInt32})
    for prefixlen, nets in index.cidr[4].items():
        nets_list, slots_list = [], []
        for net, owners in nets.items():
            for slot in owners:
                nets_list.append(net >> (32 - prefixlen))
                slots_list.append(slot)
        tables[f"cidr4/{prefixlen}"] = pl.DataFrame({"net": nets_list, "slot": slots_list},
                                                    schema={"net": pl.UInt32, "slot": pl.UInt32})
    object.__setattr__(index, "_polars_tables", tables)
    return tables


def _header(path: str) -> dict[str, Any]:
    head: list[str] = []
    meta: dict[str, Any] = {"sep": "\t", "set_sep": ",", "empty": "(empty)", "unset": "-", "path": "",
                            "fields": []}
    with open(path, "rb") as fh:
        for raw in fh:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(head) < _HEADER_LINES:
                head.append(text)
            if not text.startswith("#"):
                break
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
    meta["skip"] = sum(1 for t in head if t.startswith("#")) if len(head) < _HEADER_LINES or not \
        head[-1].startswith("#") else _count_leading_comments(path)
    return meta


def _count_leading_comments(path: str) -> int:
    with open(path, "rb") as fh:
        n = 0
        for raw in fh:
            if not raw.startswith(b"#"):
                return n
            n += 1
    return n


def _ipv4_int(col: pl.Expr) -> pl.Expr:
    parts = col.str.split_exact(".", 3)
    return (parts.struct.field("field_0").cast(pl.UInt32, strict=False) * 16777216
            + parts.struct.field("field_1").cast(pl.UInt32, strict=False) * 65536
            + parts.struct.field("field_2").cast(pl.UInt32, strict=False) * 256
            + parts.struct.field("field_3").cast(pl.UInt32, strict=False))


def _join_hits(values: pl.LazyFrame, table: pl.DataFrame, left: str = "v", right: str = "key") -> pl.LazyFrame:
    return values.join(table.lazy(), left_on=left, right_on=right, how="inner")


def match_zeek_file(path: str, index: IndicatorIndex, report: ReadReport, *, now: int) -> tuple[list[Hit], int, list[str]]:
    """Hits of one Zeek TSV file, the number of lines read, and its first lines."""
    meta = _header(path)
    names: list[str] = meta["fields"]
    report.formats[path] = "zeek"
    report.heads[path] = meta["head"]
    log_path = meta["path"]
    if not names:
        report.bad += 1
        from threatmesh.logs.readers import BadLine
        report.bad_lines.append(BadLine(path, 1, 0, "no #fields header: not a Zeek TSV log"))
        return [], 0, meta["head"]
    per_path = ZEEK_PATH_FIELDS.get(log_path, {})
    roles = {n: per_path.get(n) or ZEEK_FIELDS[n] for n in names if n in per_path or n in ZEEK_FIELDS}
    # The first and last columns always: a '#' in the first marks a comment line (the '#close'
    # trailer, the headers of a concatenated log), a null in the last a line that is too short.
    wanted = [n for i, n in enumerate(names) if n in roles or n == "ts" or (log_path == "http" and n == "uri")
              or i in (0, len(names) - 1)]
    unset, empty, set_sep = meta["unset"], meta["empty"], meta["set_sep"]
    skip = meta["skip"]
    # Reading with a comment prefix costs polars a third of its speed; the leading header is
    # skipped by count and later comment lines are found in the first column instead.
    df = pl.read_csv(
        path, separator=meta["sep"], skip_rows=skip, has_header=False,
        columns=[names.index(n) for n in wanted], new_columns=names,
        schema_overrides={n: pl.String for n in wanted}, quote_char=None, infer_schema=False,
        truncate_ragged_lines=True, encoding="utf8-lossy",
    ).with_row_index("row")
    total_lines = df.height + skip
    first, last = names[0], names[-1]
    is_comment = pl.col(first).str.starts_with("#")
    broken = df.filter(pl.col(last).is_null() & ~is_comment)
    if broken.height:
        from threatmesh.logs.source import Line
        for row in broken["row"].to_list():
            report.reject(path, Line(row + 1 + skip, -1, ""), "fewer fields than the #fields header names")
    df = df.filter(~is_comment & pl.col(last).is_not_null())
    report.lines += total_lines
    report.events += df.height
    tables = _tables(index)
    found: list[pl.DataFrame] = []  # (row, slot, field) frames
    # Every column's joins are planned lazily and run together: polars spreads them over the cores.
    planned: list[pl.LazyFrame] = []
    types = dict(zip(names, meta.get("types", [])))

    def add(frame: pl.DataFrame | pl.LazyFrame, field: str) -> None:
        selected = frame.select("row", "slot").with_columns(pl.lit(field).alias("field"))
        if isinstance(selected, pl.LazyFrame):
            planned.append(selected)
        elif selected.height:
            found.append(selected)

    base = df.lazy()
    for name, role in roles.items():
        if name not in df.columns:
            continue
        col = base.select("row", pl.col(name).alias("v")).filter(
            pl.col("v").is_not_null() & (pl.col("v") != unset) & (pl.col("v") != empty) & (pl.col("v") != ""))
        # Zeek's #types says which columns hold sets and vectors; without it, look for separators.
        kind = types.get(name, "")
        is_set = kind.startswith(("set", "vector")) if kind else bool(
            df[name].str.contains(set_sep, literal=True).any())
        if role not in ("user-agent", ROLE_URL) and is_set:
            col = col.with_columns(pl.col("v").str.split(set_sep)).explode("v")
        group = ROLE_GROUP.get(role)
        if role == ROLE_IP_OR_DOMAIN:
            is_ip = pl.col("v").str.contains(r"^[0-9.]+$|:")
            _match_ip(col.filter(is_ip), index, tables, add, name)
            _match_domain(col.filter(~is_ip), index, tables, add, name)
        elif group == GROUP_IP:
            _match_ip(col, index, tables, add, name)
        elif group == GROUP_DOMAIN:
            _match_domain(col, index, tables, add, name)
        elif group == GROUP_HASH and GROUP_HASH in tables:
            add(_join_hits(col.with_columns(pl.col("v").str.to_lowercase()), tables[GROUP_HASH]), name)
        elif group == GROUP_EMAIL and GROUP_EMAIL in index.exact:
            _match_python(col.collect(), index, GROUP_EMAIL, add, name, email=True)
        elif group == GROUP_URL and GROUP_URL in index.exact:
            _match_python(col.collect(), index, GROUP_URL, add, name)
    if log_path == "http" and GROUP_URL in index.exact and "host" in df.columns and "uri" in df.columns:
        hosts = pl.Series("h", sorted({url_host(k) for k in index.exact[GROUP_URL]}), dtype=pl.String)
        cand = df.filter(pl.col("host").str.to_lowercase().is_in(hosts.implode())).select(
            "row", (pl.lit("http://") + pl.col("host") + pl.col("uri")).alias("v"))
        _match_python(cand, index, GROUP_URL, add, "uri")
    found.extend(f for f in pl.collect_all(planned) if f.height)
    if not found:
        return [], total_lines, meta["head"]
    hits_df = pl.concat(found).unique(["row", "slot"], keep="first", maintain_order=True).sort("row")
    rows = df.filter(pl.col("row").is_in(hits_df["row"].unique().implode()))
    by_row = {r["row"]: r for r in rows.iter_rows(named=True)}
    hits: list[Hit] = []
    events: dict[int, LogEvent] = {}
    for row, slot, field in hits_df.iter_rows():
        info = index.indicators[slot]
        record = by_row[row]
        try:
            at = parse_time(record["ts"]) if record.get("ts") not in (None, unset, "") else now
        except ValueError:
            at = now
        if not info.valid_at(at):
            continue
        event = events.get(row)
        if event is None:
            values: list[tuple[str, str]] = []
            for name, role in roles.items():
                cell = record.get(name)
                if cell in (None, unset, empty, ""):
                    continue
                for part in cell.split(set_sep) if role not in ("user-agent", ROLE_URL) else (cell,):
                    _add(role, part, values)
            if log_path == "http" and record.get("host") not in (None, unset) and record.get("uri") not in (None, unset):
                values.append((ROLE_URL, f"http://{record['host']}{record['uri']}"))
            event = events[row] = LogEvent(path, row + 1 + skip, -1,
                                           at if record.get("ts") not in (None, unset, "") else None,
                                           tuple(values), f"zeek:{log_path}" if log_path else "zeek")
        role = "url" if field == "uri" else roles.get(field, field)
        hits.append(Hit(slot, info.id, event, role, _hit_key(event, role, index, slot)))
    return hits, total_lines, meta["head"]


def _hit_key(event: LogEvent, role: str, index: IndicatorIndex, slot: int) -> str:
    """The normalised value of the event that hit `slot` (for reports; hits are few)."""
    group = ROLE_GROUP.get(role)
    candidates = [(r, v) for r, v in event.values if ROLE_GROUP.get(r) == group or r == role] or list(event.values)
    for r, v in candidates:
        g = ROLE_GROUP.get(r)
        if g is None:
            continue
        try:
            key = value_key(g, v)
        except ValueError:
            continue
        if slot in index.lookup(g, key):
            return key
    return ""


def _match_ip(col: pl.LazyFrame, index: IndicatorIndex, tables: dict[str, pl.DataFrame], add: Any, name: str) -> None:
    if GROUP_IP in tables:
        add(_join_hits(col, tables[GROUP_IP]), name)
    v6 = col.filter(pl.col("v").str.contains(":", literal=True))
    if index.cidr[4]:
        v4 = col.filter(~pl.col("v").str.contains(":", literal=True)).with_columns(_ipv4_int(pl.col("v")).alias("ip"))
        v4 = v4.filter(pl.col("ip").is_not_null())
        for prefixlen in index.cidr[4]:
            table = tables[f"cidr4/{prefixlen}"]
            shifted = v4.select("row", (pl.col("ip") // (1 << (32 - prefixlen))).cast(pl.UInt32).alias("net"))
            add(shifted.join(table.lazy(), on="net", how="inner"), name)
    if index.cidr[6]:
        _match_python(v6.collect(), index, GROUP_IP, add, name, cidr_only=True)


def _match_domain(col: pl.LazyFrame, index: IndicatorIndex, tables: dict[str, pl.DataFrame], add: Any, name: str) -> None:
    table = tables.get(GROUP_DOMAIN)
    if table is None:
        return
    names = col.with_columns(pl.col("v").str.strip_prefix("*.").str.strip_chars().str.to_lowercase()
                             .str.strip_chars_end("."))
    distinct = names.select(pl.col("v").unique())
    matched: list[pl.LazyFrame] = []
    # A name hits an indicator on itself or on one of its parents; a parent that can hit has as
    # many labels as some indicator name, so one pass per label count in use finds them all.
    for labels in sorted(index.domain_label_counts):
        suffix = pl.col("v").str.extract(rf"((?:[^.]+\.){{{labels - 1}}}[^.]+)$")
        parents = distinct.with_columns(suffix.alias("d")).filter(pl.col("d").is_not_null())
        matched.append(parents.join(table.lazy(), left_on="d", right_on="key", how="inner").select("v", "slot"))
    if matched:
        add(names.join(pl.concat(matched), on="v", how="inner"), name)


def _match_python(col: pl.DataFrame, index: IndicatorIndex, group: str, add: Any, name: str, *,
                  email: bool = False, cidr_only: bool = False) -> None:
    rows: list[int] = []
    slots: list[int] = []
    cache: dict[str, list[int]] = {}
    for row, raw in col.select("row", "v").iter_rows():
        found = cache.get(raw)
        if found is None:
            found = []
            values: list[tuple[str, str]] = []
            if email:
                _add("email", raw, values)
            else:
                values.append((group, raw))
            for _, value in values:
                try:
                    key = value_key(group, value)
                except ValueError:
                    continue
                found.extend(s for s in index.lookup(group, key)
                             if not cidr_only or key not in index.exact.get(group, {}))
            cache[raw] = found
        for slot in found:
            rows.append(row)
            slots.append(slot)
    if rows:
        add(pl.DataFrame({"row": rows, "slot": slots}, schema={"row": pl.UInt32, "slot": pl.UInt32}), name)
