"""Exports for the tools that block and detect: Zeek intel, Suricata, Snort, DNS RPZ, CSV, plain lists.

Every writer takes its values from `blocklists.select_entries` (qualifying
indicators only, through the egress policy) and counts one written item per
value. Formats follow their tools' documentation:

- Zeek intel framework (input framework TSV): a `#fields` header, tab-separated
  columns, `-` for empty fields, `Intel::ADDR|SUBNET|DOMAIN|URL|EMAIL|FILE_HASH`;
  Zeek's URLs carry no scheme.
- Suricata 6+/7 rules: IPs as address rules, domains on `dns.query`, `tls.sni`
  and `http.host` (with `dotprefix`, so every subdomain and no look-alike
  matches), URLs on `http.host` + `http.uri`. `suricata-iprep` writes an IP
  reputation list (`ip,category,score`; category 1 is defined in its header
  comment) and `suricata-dataset` an `ip` dataset file.
- Snort 2.9 rules: IP rules, DNS query content in wire form (`|04|evil|03|com|00|`)
  for a domain and its subdomains, HTTP host + URI for URLs.
- RPZ (ISC's DNS Response Policy Zones): `name CNAME .` (NXDOMAIN) for each domain
  and `*.name` for its subdomains, `rpz-ip` triggers for addresses and ranges.
- CSV with a header, and plain lists (one value a line, `#` comments).

Values a format cannot say (a file hash in RPZ, say) are left out.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import time
from typing import BinaryIO, Callable, Iterable
from urllib.parse import urlsplit

from threatmesh.export.blocklists import Entry, Selection, select_entries
from threatmesh.export.select import ExportOptions, Progress, Tally
from threatmesh.share.policy import Recipient
from threatmesh.store.protocol import Store

Writer = Callable[[Iterable[Entry], BinaryIO, ExportOptions], int]
_SID_BASE = 9_100_000  # in the 9,000,000+ range local rules use, clear of published rule sets


def _tool_exporter(writer: Writer) -> Callable[..., Tally]:
    def export(
        store: Store,
        out: BinaryIO,
        *,
        recipient: Recipient,
        default_tlp: str,
        options: ExportOptions,
        progress: Progress | None = None,
    ) -> Tally:
        selection = Selection()
        entries = select_entries(store, recipient, default_tlp=default_tlp, options=options, selection=selection)
        written = writer(_counted(entries, progress), out, options)
        selection.tally.written = written
        return selection.tally

    export.__doc__ = writer.__doc__
    return export


def _counted(entries: Iterable[Entry], progress: Progress | None) -> Iterable[Entry]:
    n = 0
    for entry in entries:
        yield entry
        n += 1
        if progress and n % 1000 == 0:
            progress(1000)


def _clean(text: str, limit: int = 120) -> str:
    # Free text goes into tab- and semicolon-delimited formats: keep it on one line, without delimiters.
    return re.sub(r"[\t\r\n;\"\\|]+", " ", text).strip()[:limit]


def _describe(entry: Entry) -> str:
    return _clean(f"{entry.name} ({entry.indicator_id})" if entry.name else entry.indicator_id, 200)


# -- Zeek ----------------------------------------------------------------------------------

_ZEEK_TYPES = {"domain": "Intel::DOMAIN", "url": "Intel::URL", "email": "Intel::EMAIL",
               "md5": "Intel::FILE_HASH", "sha1": "Intel::FILE_HASH", "sha256": "Intel::FILE_HASH",
               "sha512": "Intel::FILE_HASH"}


def write_zeek_intel(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """Zeek intel framework file (load it with `redef Intel::read_files += { "file" };`)."""
    out.write(b"#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n")
    n = 0
    source = _clean(options.extra.get("source", "threatmesh")) or "threatmesh"
    for entry in entries:
        if entry.kind == "ip":
            zeek_type = "Intel::SUBNET" if "/" in entry.value else "Intel::ADDR"
            value = entry.value
        else:
            zeek_type = _ZEEK_TYPES[entry.kind]
            # Zeek matches URLs as host + path, without the scheme.
            value = entry.value.split("://", 1)[1] if entry.kind == "url" else entry.value
        if any(c in value for c in "\t\r\n") or not value:
            continue
        out.write("\t".join((value, zeek_type, source, _describe(entry) or "-", "-")).encode() + b"\n")
        n += 1
    return n


# -- Suricata / Snort ----------------------------------------------------------------------------


def _content(text: str) -> str:
    # Characters with a meaning in rule syntax, and non-printables, go in |hex| form.
    parts = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        parts.append(char if 0x20 <= byte < 0x7F and char not in ';"\\|:' else f"|{byte:02X}|")
    return "".join(parts).replace("||", " ")


def _msg(entry: Entry, what: str) -> str:
    return _clean(f"threatmesh {what} {entry.value} {entry.name}", 180)


class _Sids:
    def __init__(self, options: ExportOptions) -> None:
        self.next = int(options.extra.get("sid_base", _SID_BASE))

    def __call__(self) -> int:
        self.next += 1
        return self.next - 1


def _ip_rule(entry: Entry, sid: int) -> str:
    return (f'alert ip any any <> {entry.value} any (msg:"{_msg(entry, "ip")}"; '
            f"classtype:trojan-activity; sid:{sid}; rev:1;)")


def _url_parts(value: str) -> tuple[str, str]:
    parts = urlsplit(value)
    uri = parts.path or "/"
    if parts.query:
        uri += "?" + parts.query
    return parts.hostname or "", uri


def write_suricata_rules(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """Suricata rules: IP address rules, DNS/TLS SNI/HTTP host rules for domains, HTTP rules for URLs."""
    sid = _Sids(options)
    out.write(b"# threatmesh indicators as Suricata rules (Suricata 6 or later)\n")
    n = 0
    for entry in entries:
        rules: list[str] = []
        if entry.kind == "ip":
            rules.append(_ip_rule(entry, sid()))
        elif entry.kind == "domain":
            dotted = _content("." + entry.value)
            for proto, buffer in (("dns", "dns.query"), ("tls", "tls.sni"), ("http", "http.host")):
                rules.append(f'alert {proto} any any -> any any (msg:"{_msg(entry, "domain " + proto)}"; '
                             f'{buffer}; dotprefix; content:"{dotted}"; nocase; endswith; '
                             f"classtype:trojan-activity; sid:{sid()}; rev:1;)")
        elif entry.kind == "url":
            host, uri = _url_parts(entry.value)
            if not host:
                continue
            uri_part = f' http.uri; content:"{_content(uri)}"; startswith;' if uri != "/" else ""
            rules.append(f'alert http any any -> any any (msg:"{_msg(entry, "url")}"; flow:established,to_server; '
                         f'http.host; content:"{_content(host)}"; nocase; startswith; endswith;{uri_part} '
                         f"classtype:trojan-activity; sid:{sid()}; rev:1;)")
        if rules:
            out.write(("\n".join(rules) + "\n").encode())
            n += 1
    return n


def write_suricata_iprep(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """Suricata IP reputation list: `ip,category,score`; pair it with a categories file holding
    `1,threatmesh,threatmesh indicators` (reputation-categories-file)."""
    out.write(b"# categories file line: 1,threatmesh,threatmesh indicators\n")
    n = 0
    for entry in entries:
        if entry.kind != "ip":
            continue
        score = entry.confidence if entry.confidence is not None else 100
        out.write(f"{entry.value},1,{max(1, min(score, 127))}\n".encode())
        n += 1
    return n


def write_suricata_dataset(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """A Suricata `ip` dataset file (one address a line): `dataset:isset,tm,type ip,load FILE`.
    Ranges do not fit a dataset and are left out (use the rules or the reputation list)."""
    n = 0
    for entry in entries:
        if entry.kind == "ip" and "/" not in entry.value:
            out.write(entry.value.encode() + b"\n")
            n += 1
    return n


def _dns_wire(domain: str) -> str:
    return "".join(f"|{len(label):02X}|{_content(label)}" for label in domain.split(".")) + "|00|"


def write_snort_rules(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """Snort 2.9 rules: IP rules, DNS queries for domains (and their subdomains), HTTP host + URI for URLs."""
    sid = _Sids(options)
    out.write(b"# threatmesh indicators as Snort 2.9 rules\n")
    n = 0
    for entry in entries:
        rule = None
        if entry.kind == "ip":
            rule = _ip_rule(entry, sid())
        elif entry.kind == "domain":
            rule = (f'alert udp any any -> any 53 (msg:"{_msg(entry, "dns")}"; '
                    f'content:"{_dns_wire(entry.value)}"; nocase; classtype:trojan-activity; sid:{sid()}; rev:1;)')
        elif entry.kind == "url":
            host, uri = _url_parts(entry.value)
            if host:
                uri_part = f' content:"{_content(uri)}"; http_uri;' if uri != "/" else ""
                rule = (f'alert tcp any any -> any any (msg:"{_msg(entry, "url")}"; flow:to_server,established; '
                        f'content:"{_content(host)}"; http_header; nocase;{uri_part} '
                        f"classtype:trojan-activity; sid:{sid()}; rev:1;)")
        if rule:
            out.write(rule.encode() + b"\n")
            n += 1
    return n


# -- RPZ ----------------------------------------------------------------------------------------


def rpz_ip_owner(value: str) -> str:
    """The `rpz-ip` trigger name of an address or range (ISC RPZ draft §4.2)."""
    network = ipaddress.ip_network(value, strict=False)
    if network.version == 4:
        labels = str(network.network_address).split(".")[::-1]
        return f"{network.prefixlen}." + ".".join(labels) + ".rpz-ip"
    groups = [f"{int(g, 16):x}" for g in network.network_address.exploded.split(":")]
    # The longest run of zero groups is written 'zz', as '::' is in text form.
    best_start, best_len, start = -1, 0, -1
    for i, g in enumerate(groups + ["x"]):
        if g == "0" and start < 0:
            start = i
        elif g != "0" and start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    if best_len > 1:
        groups = groups[:best_start] + ["zz"] + groups[best_start + best_len:]
    return f"{network.prefixlen}." + ".".join(reversed(groups)) + ".rpz-ip"


def write_rpz(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """A DNS RPZ zone: domains (and subdomains) answer NXDOMAIN, listed addresses are dropped from answers."""
    serial = int(options.extra.get("serial") or time.time()) % 2**32
    out.write((f"; threatmesh response policy zone\n$TTL 300\n"
               f"@ SOA localhost. hostmaster.localhost. ( {serial} 3600 600 86400 300 )\n"
               f"  NS localhost.\n").encode())
    n = 0
    for entry in entries:
        if entry.kind == "domain":
            out.write(f"{entry.value} CNAME .\n*.{entry.value} CNAME .\n".encode())
        elif entry.kind == "ip":
            out.write(f"{rpz_ip_owner(entry.value)} CNAME .\n".encode())
        else:
            continue
        n += 1
    return n


# -- CSV and plain lists ---------------------------------------------------------------------------

CSV_COLUMNS = ("type", "value", "indicator_id", "name", "confidence", "valid_from", "valid_until", "tlp")


def write_csv(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """CSV with a header: one row per value."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for e in entries:
        writer.writerow((e.kind, e.value, e.indicator_id, e.name, "" if e.confidence is None else e.confidence,
                         e.valid_from, e.valid_until or "", e.tlp or ""))
        n += 1
    text.detach()  # the caller owns and closes `out`
    return n


def write_txt(entries: Iterable[Entry], out: BinaryIO, options: ExportOptions) -> int:
    """Plain blocklists: one value a line, grouped by type under `# type` comments."""
    by_kind: dict[str, list[str]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry.value)
    n = 0
    for kind in sorted(by_kind):
        if len(by_kind) > 1:
            out.write(f"# {kind}\n".encode())
        for value in by_kind[kind]:
            out.write(value.encode() + b"\n")
            n += 1
    return n


export_zeek_intel = _tool_exporter(write_zeek_intel)
export_suricata = _tool_exporter(write_suricata_rules)
export_suricata_iprep = _tool_exporter(write_suricata_iprep)
export_suricata_dataset = _tool_exporter(write_suricata_dataset)
export_snort = _tool_exporter(write_snort_rules)
export_rpz = _tool_exporter(write_rpz)
export_csv = _tool_exporter(write_csv)
export_txt = _tool_exporter(write_txt)
