"""Charts and the neighbourhood graph as inline SVG, drawn on the server.

Inline SVG needs no script, no font and no request: the page is complete as
served, scales with the viewport (a `viewBox` and CSS width), and reads in a
screen reader through its <title>/<desc> (each chart also has its numbers in
a table next to it). Colours come from presentation attributes, not `style`,
so the page's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Distinguishable in print and for the common colour-vision deficiencies (Okabe-Ito).
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_INK = "#1b1f24"
_GRID = "#d0d7de"


def _nice_max(value: int) -> int:
    """A round upper bound for an axis (1, 2, 5 x 10^n)."""
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(labels: list[str], series: dict[str, list[int]], *, title: str, chart_id: str) -> Markup:
    """Counts per period, one line per series, with a legend."""
    width, height = 720, 260
    left, right, top, bottom = 44, 12, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((max(v) for v in series.values() if v), default=1))
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [
        f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d"'
        ' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(_describe(labels, series))}</desc>',
    ]
    steps = 5 if peak >= 5 else peak  # whole numbers on the axis: peak is 1, 2 or 5 x 10^n
    for tick in range(steps + 1):
        value = peak * tick // steps
        ty = y(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" fill="{_INK}">'
                     f"{value}</text>")
    every = max(1, math.ceil(len(labels) / 12))  # at most a dozen period labels fit
    for i, text in enumerate(labels):
        last = i == len(labels) - 1 and i % every >= every / 2  # the last label, unless it would collide
        if i % every == 0 or last:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11"'
                         f' fill="{_INK}">{escape(text)}</text>')
    for s, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[s % len(SERIES_COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        if len(values) > 1:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(name)} {escape(labels[i])}: {v}</title></circle>")
        lx = left + s * 150
        parts.append(f'<rect x="{lx}" y="6" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 17}" y="16" font-size="12" fill="{_INK}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(rows: list[tuple[str, int]], *, title: str, chart_id: str) -> Markup:
    """Horizontal bars, largest first, labelled with their counts."""
    # Narrow on purpose: the chart sits in a third of a laptop screen or a whole phone screen,
    # and its 12-unit text must stay about 12 px there.
    bar, gap, label_w, width = 18, 8, 130, 340
    height = max(1, len(rows)) * (bar + gap) + gap
    peak = max((n for _, n in rows), default=1) or 1
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="{chart_id}-t" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
    ]
    room = width - label_w - 36
    for i, (name, count) in enumerate(rows):
        top = gap + i * (bar + gap)
        w = max(2.0, room * count / peak)
        shown = _short(name, 20)
        parts.append(f'<text x="{label_w - 8}" y="{top + 13}" text-anchor="end" font-size="12" fill="{_INK}">'
                     f"{escape(shown)}</text>")
        parts.append(f'<rect x="{label_w}" y="{top}" width="{w:.1f}" height="{bar}" fill="{SERIES_COLOURS[0]}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{top + 13}" font-size="12" fill="{_INK}">{count}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _describe(labels: list[str], series: dict[str, list[int]]) -> str:
    if not labels:
        return "No data."
    totals = ", ".join(f"{name}: {sum(values)} in total" for name, values in series.items())
    return f"From {labels[0]} to {labels[-1]}. {totals}."


# -- the neighbourhood graph ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    label: str
    type: str
    href: str


@dataclass(frozen=True, slots=True)
class GraphEdge:
    other: GraphNode
    label: str  # relationship type or reference property
    outgoing: bool  # from the centre to `other`


TYPE_COLOURS = {
    "intrusion-set": "#D55E00", "threat-actor": "#D55E00", "campaign": "#CC79A7", "malware": "#9b2226",
    "tool": "#9b2226", "attack-pattern": "#0072B2", "indicator": "#009E73", "incident": "#E69F00",
    "report": "#56B4E9", "identity": "#6e7781", "location": "#6e7781", "sighting": "#009E73",
    "vulnerability": "#9b2226",
}


def _short(text: str, size: int = 22) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def neighbourhood_graph(centre: GraphNode, edges: list[GraphEdge], *, limit: int = 24) -> Markup:
    """The centre object with its neighbours on a circle around it; each neighbour is a link."""
    shown = edges[:limit]
    width, height = 720, (300 if len(shown) <= 4 else 460)
    cx, cy = width / 2, height / 2
    radius_x, radius_y = width / 2 - 110, height / 2 - 46
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" role="img" aria-labelledby="graph-t"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="graph-t">Neighbourhood of {escape(centre.label)}: {len(shown)} of {len(edges)} links</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        f' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{_INK}"/></marker></defs>',
    ]
    nodes: list[str] = []
    for i, edge in enumerate(shown):
        # Half a step off vertical, so no neighbour sits on the centre's label below it.
        angle = 2 * math.pi * (i + 0.5) / max(len(shown), 1) - math.pi / 2
        nx, ny = cx + radius_x * math.cos(angle), cy + radius_y * math.sin(angle)
        # Stop the line short of both nodes so the arrow head stays visible.
        dx, dy = nx - cx, ny - cy
        length = math.hypot(dx, dy) or 1.0
        sx, sy = cx + dx / length * 30, cy + dy / length * 30
        ex, ey = nx - dx / length * 14, ny - dy / length * 14
        if not edge.outgoing:
            sx, sy, ex, ey = ex, ey, sx, sy
        parts.append(f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="#57606a"'
                     ' stroke-width="1.3" marker-end="url(#arrow)"/>')
        mx, my = (cx + nx) / 2, (cy + ny) / 2
        parts.append(f'<text x="{mx:.1f}" y="{my - 3:.1f}" text-anchor="middle" font-size="10" fill="#57606a">'
                     f"{escape(_short(edge.label, 18))}</text>")
        colour = TYPE_COLOURS.get(edge.other.type, "#6e7781")
        anchor = "start" if nx > cx + 5 else "end" if nx < cx - 5 else "middle"
        tx = nx + (14 if anchor == "start" else -14 if anchor == "end" else 0)
        ty = ny + (4 if anchor != "middle" else (-16 if ny < cy else 24))
        nodes.append(
            f'<a href="{escape(edge.other.href)}" class="graph-node">'
            f"<title>{escape(edge.other.type)}: {escape(edge.other.label)}</title>"
            f'<circle cx="{nx:.1f}" cy="{ny:.1f}" r="11" fill="{colour}" stroke="#ffffff" stroke-width="2"/>'
            f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" font-size="12" fill="{_INK}">'
            f"{escape(_short(edge.other.label))}</text></a>"
        )
    parts.extend(nodes)
    colour = TYPE_COLOURS.get(centre.type, "#6e7781")
    parts.append(f'<circle cx="{cx}" cy="{cy}" r="26" fill="{colour}" stroke="{_INK}" stroke-width="2"/>')
    parts.append(f'<text x="{cx}" y="{cy + 44}" text-anchor="middle" font-size="13" font-weight="bold"'
                 f' fill="{_INK}">{escape(_short(centre.label, 30))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
