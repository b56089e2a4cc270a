"""Render a Brief as Markdown, HTML (charts embedded as PNG data) or PDF (WeasyPrint, offline).

What a brief counts leaves the node with it, so its objects are read through
the export path's egress filter (`export.select.outgoing`) for the audience
the operator names; objects the audience may not see are not counted.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

from threatmesh.analytics.brief import Brief
from threatmesh.export.select import ExportOptions, Tally, outgoing
from threatmesh.node import Node
from threatmesh.share.policy import Recipient, RecipientKind


@dataclass
class BriefSource:
    node: Node
    recipient: Recipient
    tally: int = 0

    def stream(self):  # type: ignore[no-untyped-def]
        counter = Tally()
        for version in outgoing(self.node.store, self.recipient, default_tlp=self.node.settings.default_tlp,
                                options=ExportOptions(), tally=counter):
            yield version
        self.tally = counter.withheld


def brief_versions(node: Node, audience: str) -> BriefSource:
    recipient = {
        "operator": Recipient.operator(),
        "community": Recipient("brief readers", RecipientKind.PEER, role="community"),
        "public": Recipient.public(),
    }[audience]
    return BriefSource(node, recipient)


def _chart(kind: str, labels: list[str], values: list[float], title: str) -> str:
    """A PNG chart as a data URI (no file, no network needed to view it)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 2.4), dpi=110)
    if kind == "line":
        ax.plot(labels, values, marker="o", color="#1f4e79")
        ax.set_ylim(bottom=0)
    else:
        ax.barh(labels[::-1], values[::-1], color="#1f4e79")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_markdown(brief: Brief) -> str:
    lines = [f"# {brief.title}", "", "## By the numbers", ""]
    lines += [f"- {h}" for h in brief.headlines]
    lines += ["", "## Trend", "", "| year | count |", "| --- | ---: |"]
    lines += [f"| {y} | {n} |" for y, n in brief.trend]
    lines += ["", "## Victim countries", "", "| country | count | share |", "| --- | ---: | ---: |"]
    lines += [f"| {c} | {n} | {s:.0%} |" for c, n, s in brief.victim_countries]
    lines += ["", "## Sectors", "", "| sector | count | share |", "| --- | ---: | ---: |"]
    lines += [f"| {c} | {n} | {s:.0%} |" for c, n, s in brief.sectors]
    lines += ["", "## Top actors", "", "| actor | aliases | sponsor | count |", "| --- | --- | --- | ---: |"]
    lines += [f"| {a['name']} | {', '.join(a['aliases'])} | {', '.join(a['sponsors'])} | {a['count']} |"
              for a in brief.actors]
    lines += ["", "## Notable incidents", ""]
    lines += [f"- {n['date'] or 'undated'}: {n['name']}" + (f" ({', '.join(n['actors'])})" if n["actors"] else "")
              for n in brief.notable]
    lines += ["", "## Method", "", brief.method, ""]
    return "\n".join(lines)


def to_html(brief: Brief) -> str:
    e = html.escape
    charts = []
    if brief.trend:
        charts.append(_chart("line", [y for y, _ in brief.trend], [n for _, n in brief.trend], "per year"))
    if brief.victim_countries:
        charts.append(_chart("bar", [c for c, _, _ in brief.victim_countries],
                             [n for _, n, _ in brief.victim_countries], "top victim countries"))
    if brief.sectors:
        charts.append(_chart("bar", [c for c, _, _ in brief.sectors], [n for _, n, _ in brief.sectors], "sectors"))
    actors = "".join(
        f"<tr><td>{e(a['name'])}</td><td>{e(', '.join(a['aliases']))}</td><td>{e(', '.join(a['sponsors']))}</td>"
        f"<td class=n>{a['count']}</td></tr>" for a in brief.actors)
    notable = "".join(f"<li><b>{e(n['date'] or 'undated')}</b> {e(n['name'])}"
                      + (f" <i>({e(', '.join(n['actors']))})</i>" if n["actors"] else "") + "</li>"
                      for n in brief.notable)
    images = "".join(f'<img src="{c}" alt="chart">' for c in charts)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(brief.title)}</title>
<style>
@page {{ size: A4; margin: 14mm; }}
body {{ font-family: 'DejaVu Sans', sans-serif; font-size: 9.5pt; color: #1a1a1a; }}
h1 {{ font-size: 15pt; color: #1f4e79; margin: 0 0 4pt; }} h2 {{ font-size: 11pt; color: #1f4e79; margin: 10pt 0 4pt; }}
.numbers li {{ margin: 2pt 0; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ccd; padding: 2pt 4pt; text-align: left; }} .n {{ text-align: right; }}
img {{ width: 49%; }} .method {{ font-size: 8pt; color: #444; }}
</style></head><body>
<h1>{e(brief.title)}</h1>
<h2>By the numbers</h2><ul class="numbers">{''.join(f'<li>{e(h)}</li>' for h in brief.headlines)}</ul>
<div>{images}</div>
<h2>Top actors</h2><table><tr><th>actor</th><th>aliases</th><th>sponsor</th><th class=n>count</th></tr>{actors}</table>
<h2>Notable incidents</h2><ul>{notable}</ul>
<h2>Method</h2><p class="method">{e(brief.method)}</p>
</body></html>"""


def write_brief(brief: Brief, path: Path, fmt: str) -> None:
    if fmt == "md":
        path.write_text(to_markdown(brief), "utf-8")
    elif fmt == "html":
        path.write_text(to_html(brief), "utf-8")
    elif fmt == "pdf":
        from weasyprint import HTML

        # No base_url and only data: URIs inside: WeasyPrint fetches nothing from the network.
        HTML(string=to_html(brief)).write_pdf(str(path))
    else:
        raise ValueError(f"unknown brief format {fmt!r}")
