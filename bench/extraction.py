"""IoC extraction accuracy: threatmesh against iocextract and ioc-finder, in one run.

Three measurements, each on third-party ground truth from ../shared/corpora:

  pairs     the 26 ESET articles of reports/ground-truth/eset_text_to_misp_pairs.json
            against ESET's own MISP event for each. Relevant = the event's values
            flagged in_text, pooled with event values any tool found in the text
            (so a value the flagging missed counts for every tool alike). A value
            a tool reports that is not in the event is a false positive. MISP
            'link' attributes are the publisher's references, not indicators.
  samples   every ESET AsciiDoc report folder with samples.md5/.sha1/.sha256:
            the hashes of the .adoc files against those lists (recall over the
            listed hashes that appear in the AsciiDoc text).
  defanged  every defanged token in the ESET AsciiDoc reports and the Unit 42
            text notes, refanged by ioc-fanger (a third party): the share of
            them each tool reports, refanged, under any type.

Goals (issue 5): F1 above both peers on every type; defanged recall >= 0.98.

    .venv/bin/python bench/extraction.py [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
TYPES = ("ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512", "cve")
HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}

Found = dict[str, set[str]]  # type -> normalised values


def norm(kind: str, value: str) -> str:
    """One neutral spelling for comparison, applied to every tool and the ground truth alike."""
    value = value.strip().strip("`+").strip()
    if kind == "url":
        scheme, sep, rest = value.partition("://")
        if sep:
            host, slash, path = rest.partition("/")
            value = f"{scheme.lower()}://{host.lower()}{slash}{path}"
        return value.rstrip("/")
    if kind == "cve":
        return value.upper()
    return value.lower().rstrip(".")


# -- the tools ------------------------------------------------------------------------
def run_threatmesh(text: str) -> Found:
    from threatmesh.extract import extract
    found: Found = defaultdict(set)
    for hit in extract(text):
        kind = {"cidr": "ipv4"}.get(hit.type.value, hit.type.value)
        if kind in TYPES:
            found[kind].add(norm(kind, hit.value))
    return found


def run_iocextract(text: str) -> Found:
    import iocextract
    found: Found = defaultdict(set)
    found["url"] = {norm("url", u) for u in iocextract.extract_urls(text, refang=True)}
    found["ipv4"] = {norm("ipv4", v) for v in iocextract.extract_ipv4s(text, refang=True)}
    found["ipv6"] = {norm("ipv6", v) for v in iocextract.extract_ipv6s(text)}
    found["email"] = {norm("email", v) for v in iocextract.extract_emails(text, refang=True)}
    found["md5"] = {norm("md5", v) for v in iocextract.extract_md5_hashes(text)}
    found["sha1"] = {norm("sha1", v) for v in iocextract.extract_sha1_hashes(text)}
    found["sha256"] = {norm("sha256", v) for v in iocextract.extract_sha256_hashes(text)}
    found["sha512"] = {norm("sha512", v) for v in iocextract.extract_sha512_hashes(text)}
    return found  # iocextract has no domain or CVE extractor


def run_ioc_finder(text: str) -> Found:
    from ioc_finder import find_iocs
    result = find_iocs(text)
    names = {"urls": "url", "ipv4s": "ipv4", "ipv6s": "ipv6", "domains": "domain", "email_addresses": "email",
             "md5s": "md5", "sha1s": "sha1", "sha256s": "sha256", "sha512s": "sha512", "cves": "cve"}
    found: Found = defaultdict(set)
    for key, kind in names.items():
        for value in result.get(key, []) or []:
            found[kind].add(norm(kind, value if isinstance(value, str) else str(value)))
    return found


TOOLS: dict[str, Callable[[str], Found]] = {
    "threatmesh": run_threatmesh, "iocextract": run_iocextract, "ioc-finder": run_ioc_finder,
}
SUPPORTED = {
    "iocextract": {"ipv4", "ipv6", "url", "email", "md5", "sha1", "sha256", "sha512"},
    "ioc-finder": set(TYPES),
    "threatmesh": set(TYPES),
}


# -- ground truth -----------------------------------------------------------------------
def misp_values(attr_type: str, value: str) -> Iterable[tuple[str, str]]:
    """(type, value) pairs that a MISP attribute stands for, in our type names."""
    parts = value.split("|")
    base = attr_type.split("|")
    for kind, part in zip(base, parts):
        if kind in ("ip-dst", "ip-src", "ip"):
            yield ("ipv6" if ":" in part else "ipv4", part)
        elif kind in ("domain", "hostname"):
            yield "domain", part
        elif kind == "url":
            yield "url", part
        elif kind in ("email-src", "email-dst", "email"):
            yield "email", part
        elif kind in ("md5", "sha1", "sha256", "sha512"):
            yield kind, part
        elif kind in ("vulnerability", "text", "comment"):
            # a CVE id, or one inside a detection name ('Win32/Exploit.CVE-2017-11882.BU'):
            # the event names that CVE either way
            for cve in re.findall(r"(?<![\w-])CVE-\d{4}-\d{4,7}(?!\d)", part, re.I):
                yield "cve", cve


class Score:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, found: set[str], relevant: set[str], correct: set[str]) -> None:
        self.tp += len(found & relevant)
        self.fp += len(found - correct)
        self.fn += len(relevant - found)

    def prf(self) -> tuple[float | None, float | None, float | None]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else None
        f = 2 * p * r / (p + r) if p is not None and r is not None and p + r else (0.0 if p is not None or r else None)
        return p, r, f


def bench_pairs(scores: dict[str, dict[str, Score]]) -> int:
    pairs = json.loads((CORPORA / "reports/ground-truth/eset_text_to_misp_pairs.json").read_text("utf-8"))
    for pair in pairs:
        text = (CORPORA / pair["report_text"]).read_text("utf-8", errors="replace")
        every: Found = defaultdict(set)
        in_text: Found = defaultdict(set)
        lowered = text.lower()
        for ioc in pair["iocs"]:
            for kind, value in misp_values(ioc["type"], ioc["value"]):
                every[kind].add(norm(kind, value))
                # The dataset's in_text flag covers the whole attribute ('name.eps|<md5>' is
                # flagged when only the file name occurs); each part must occur itself.
                if ioc["in_text"] and value.strip().lower() in lowered:
                    in_text[kind].add(norm(kind, value))
        results = {name: tool(text) for name, tool in TOOLS.items()}
        for kind in TYPES:
            pooled = in_text[kind] | (every[kind] & set().union(*(r[kind] for r in results.values())))
            for name, found in results.items():
                scores[name][kind].add(found[kind], pooled, every[kind])
    return len(pairs)


def bench_samples(scores: dict[str, dict[str, Score]]) -> int:
    folders = 0
    for folder in sorted((CORPORA / "reports/eset").iterdir()):
        lists = {kind: folder / f"samples.{kind}" for kind in ("md5", "sha1", "sha256")}
        adocs = sorted(folder.glob("*.adoc"))
        if not adocs or not all(p.exists() for p in lists.values()):
            continue
        text = "\n".join(p.read_text("utf-8", errors="replace") for p in adocs)
        lowered = text.lower()
        folders += 1
        results = {name: tool(text) for name, tool in TOOLS.items()}
        for kind, path in lists.items():
            listed = {line.strip().lower() for line in path.read_text("utf-8", errors="replace").splitlines()
                      if re.fullmatch(r"[0-9a-fA-F]+", line.strip())}
            relevant = {h for h in listed if h in lowered}
            for name, found in results.items():
                scores[name][kind].add(found[kind], relevant, listed)
    return folders


_DEFANG_TOKEN = re.compile(r"\[\.\]|\(\.\)|\[dot\]|hxxp|hXXp|\[:\]|\[at\]|\[@\]", re.I)


def defanged_truth() -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, [(type, expected value)]) per file: every clean defanged token, refanged by ioc-fanger."""
    from ioc_fanger import fang
    files = sorted((CORPORA / "reports/eset").rglob("*.adoc")) + sorted((CORPORA / "reports/unit42").glob("*.txt"))
    out = []
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        expected: list[tuple[str, str]] = []
        for token in re.split(r"[\s|,;]+", text):
            if not _DEFANG_TOKEN.search(token):
                continue
            value = fang(token.strip("`+*'\"()<>[]")).strip("`+*'\"()<>.,:;")
            value = value.rstrip("]") if value.count("]") > value.count("[") else value
            kind = classify(value)
            if kind:
                expected.append((kind, norm(kind, value)))
        if expected:
            out.append((text, expected))
    return out


def classify(value: str) -> str | None:
    if re.fullmatch(r"(?:https?|ftp)://[^\s/\[\]{}<>]+(?:/\S*)?", value, re.I) and "{" not in value:
        return "url"
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?", value):
        return "ipv4"
    if re.fullmatch(r"[\w.%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", value, re.I):
        return "email"
    if re.fullmatch(r"(?:[a-z0-9-]+\.)+[a-z]{2,}", value, re.I):
        return "domain"
    return None


def bench_defanged() -> dict[str, tuple[int, int]]:
    found_counts = {name: 0 for name in TOOLS}
    total = 0
    for text, expected in defanged_truth():
        results = {name: tool(text) for name, tool in TOOLS.items()}
        for kind, value in expected:
            value = value.split(":")[0] if kind == "ipv4" else value
            total += 1
            for name, found in results.items():
                if value in found[kind] or any(value in values for values in found.values()):
                    found_counts[name] += 1
    return {name: (count, total) for name, count in found_counts.items()}


def fmt(x: float | None) -> str:
    return "  —  " if x is None else f"{x:5.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not CORPORA.exists():
        print(f"corpora absent at {CORPORA}", file=sys.stderr)
        return 2
    scores: dict[str, dict[str, Score]] = {name: defaultdict(Score) for name in TOOLS}
    n_pairs = bench_pairs(scores)
    n_folders = bench_samples(scores)
    defanged = bench_defanged()
    report: dict[str, object] = {"pairs": n_pairs, "sample_folders": n_folders, "types": {}, "defanged": {}}
    lines = [f"IoC extraction: {n_pairs} ESET article/MISP pairs + {n_folders} ESET AsciiDoc folders vs samples.*",
             f"{'type':<8} {'tool':<11} {'TP':>5} {'FP':>5} {'FN':>5}   P      R      F1",]
    goal_met = True
    for kind in TYPES:
        f1s = {}
        for name in TOOLS:
            s = scores[name][kind]
            p, r, f = s.prf()
            if name not in SUPPORTED or kind in SUPPORTED[name]:
                f1s[name] = f
            else:
                p = r = f = None
            report["types"].setdefault(kind, {})[name] = {"tp": s.tp, "fp": s.fp, "fn": s.fn, "precision": p,
                                                         "recall": r, "f1": f}
            if s.tp + s.fp + s.fn:
                lines.append(f"{kind:<8} {name:<11} {s.tp:>5} {s.fp:>5} {s.fn:>5}  {fmt(p)}  {fmt(r)}  {fmt(f)}")
        ours = f1s.get("threatmesh")
        if ours is not None and any(f is not None and f >= ours for n, f in f1s.items() if n != "threatmesh"):
            goal_met = False
    lines.append("defanged recall (ESET AsciiDoc + Unit 42 notes, refanged by ioc-fanger):")
    for name, (count, total) in defanged.items():
        lines.append(f"  {name:<11} {count}/{total} = {count / total if total else 0:.3f}")
        report["defanged"][name] = {"found": count, "total": total, "recall": count / total if total else None}
    d_count, d_total = defanged["threatmesh"]
    report["goal_f1_above_peers"] = goal_met
    report["goal_defanged_recall"] = bool(d_total) and d_count / d_total >= 0.98
    lines.append(f"goals: F1 above every peer on every type: {goal_met}; defanged recall >= 0.98: "
                 f"{report['goal_defanged_recall']}")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
