"""What each dashboard page shows, as plain values for the templates.

Every object read here comes through a `Viewer`, so the egress policy has
already decided what the signed-in account may see; a neighbour that the
viewer may not see is left out without a trace (not even "1 hidden").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from threatmesh.analytics.aggregate import label as field_label
from threatmesh.analytics.countries import country_name
from threatmesh.analytics.facts import Fact
from threatmesh.analytics.periods import period_range
from threatmesh.analytics.summary import FactSummary
from threatmesh.stix.markings import tlp_of_marking
from threatmesh.store.protocol import StoredVersion
from threatmesh.web.dashboard.charts import GraphEdge, GraphNode, bar_chart, line_chart, neighbourhood_graph
from threatmesh.web.dashboard.view import Viewer, parse

UI = "/ui"
ACTOR_TYPES = ("intrusion-set", "threat-actor")
TREND_KINDS = ("incidents", "reports", "indicators")
TLP_ORDER = ("clear", "green", "amber", "amber+strict", "red", "unmarked")


def object_href(object_id: str) -> str:
    return f"{UI}/object/{quote(object_id, safe='')}"


def actor_href(object_id: str) -> str:
    return f"{UI}/actor/{quote(object_id, safe='')}"


def href_for(object_id: str, stix_type: str) -> str:
    return actor_href(object_id) if stix_type in ACTOR_TYPES else object_href(object_id)


def display_name(data: dict[str, Any]) -> str:
    """What people call an object: its name, else its value, else its type and a short id."""
    for key in ("name", "value", "pattern", "path", "number", "display_name"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:160]
    if data.get("type") == "relationship":
        return f"relationship: {data.get('relationship_type', '?')}"
    if data.get("type") == "sighting":
        return f"sighting ×{data.get('count', 1)}"
    object_id = str(data.get("id", ""))
    return f"{data.get('type', 'object')} {object_id.partition('--')[2][:8]}"


def micros_to_text(value: int) -> str:
    if not value:
        return "never"
    return datetime.fromtimestamp(value / 1_000_000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Link:
    id: str
    type: str
    name: str
    href: str
    tlp: str | None = None
    note: str = ""


def link_of(version: StoredVersion, data: dict[str, Any] | None = None, note: str = "") -> Link:
    data = parse(version) if data is None else data
    return Link(version.id, version.type, display_name(data), href_for(version.id, version.type), version.tlp, note)


# -- overview -----------------------------------------------------------------------------


def _trend(summary: FactSummary) -> tuple[str, list[str], dict[str, list[int]]]:
    months = {kind: summary.months(kind) for kind in TREND_KINDS}
    dated = [m for per_kind in months.values() for m in per_kind]
    if not dated:
        return "year", [], {}
    first, last = min(dated), max(dated)
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    period = "month" if span <= 36 else "year"
    width = 7 if period == "month" else 4  # 'YYYY-MM' or 'YYYY'
    labels = period_range(first[:width], last[:width], period)
    series: dict[str, list[int]] = {}
    for kind, per_month in months.items():
        counts: Counter[str] = Counter()
        for month, n in per_month.items():
            counts[month[:width]] += n
        series[kind] = [counts.get(p, 0) for p in labels]
    return period, labels, series


def overview(viewer: Viewer) -> dict[str, Any]:
    """The overview's figures, from the view's pre-aggregated counts (no pass over the facts)."""
    snap = viewer.snapshot()
    facts, summary = snap.facts, snap.summary
    period, labels, series = _trend(summary)
    # Rank actors by what they did; without incidents, the indicators that point at them.
    basis_name = "incidents" if summary.total("incidents") else "indicators"
    actors = []
    for ranked in summary.top([basis_name], "actor", 10):
        ids = facts.actors.ids.get(ranked.value, ())
        sponsors = facts.actor_sponsors.get(ranked.value, ())
        actors.append({
            "name": ranked.value,
            "count": ranked.count,
            "share": ranked.share,
            "aliases": facts.actors.aliases.get(ranked.value, ())[:4],
            "sponsors": [field_label("sponsor", s) for s in sponsors],
            "href": actor_href(ids[0]) if ids else None,
        })
    victim_kinds = ["incidents", "campaigns"]
    sectors = [(r.value, r.count) for r in summary.top(victim_kinds, "sector", 8)]
    countries = [(field_label("victim-country", r.value), r.count)
                 for r in summary.top(victim_kinds, "victim-country", 8)]
    recent = _sightings(viewer, list(summary.recent_sightings))
    types = sorted(snap.by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    tlps = [(level, snap.by_tlp[level]) for level in TLP_ORDER if snap.by_tlp.get(level)]
    return {
        "total": snap.objects,
        "types": types,
        "tlps": tlps,
        "period": period,
        "trend_labels": labels,
        "trend_series": series,
        "trend_chart": line_chart(labels, series, title=f"Incidents, reports and indicators per {period}",
                                  chart_id="trend") if labels else None,
        "actors": actors,
        "actor_basis": basis_name,
        "sectors": sectors,
        "sector_chart": bar_chart(sectors, title="Most targeted sectors", chart_id="sectors") if sectors else None,
        "countries": countries,
        "country_chart": bar_chart(countries, title="Most targeted countries",
                                   chart_id="countries") if countries else None,
        "victim_count": sum(summary.total(k) for k in victim_kinds),
        "sightings": recent,
        "peers": _peers(viewer) if viewer.is_admin else None,
        "withheld": snap.withheld,
        "snapshot_seconds": snap.seconds,
        "from_table": snap.from_table,
    }


def _sightings(viewer: Viewer, ids: list[str]) -> list[dict[str, Any]]:
    found = viewer.latest_many(ids)
    datas = {i: parse(v) for i, v in found.items()}
    refs = [d.get("sighting_of_ref") for d in datas.values()]
    refs += [w for d in datas.values() for w in d.get("where_sighted_refs", []) or []]
    targets = viewer.latest_many(r for r in refs if isinstance(r, str))
    rows = []
    for object_id in ids:
        data = datas.get(object_id)
        if data is None:
            continue
        seen = targets.get(str(data.get("sighting_of_ref")))
        where = [link_of(targets[w]) for w in data.get("where_sighted_refs", []) or [] if w in targets]
        rows.append({
            "link": link_of(found[object_id], data),
            "of": link_of(seen) if seen else None,
            "count": data.get("count", 1),
            "when": str(data.get("last_seen") or data.get("first_seen") or data.get("created", ""))[:10],
            "where": where,
        })
    return rows


def _peers(viewer: Viewer) -> list[dict[str, Any]]:
    rows = []
    for peer in viewer.store.list_peers():
        state = viewer.store.get_sync_state(peer.name)
        healthy = state.last_success > 0 and state.failures == 0
        rows.append({
            "name": peer.name,
            "url": peer.url,
            "role": peer.role,
            "cleared": ", ".join(peer.cleared_for) or "none",
            "last_success": micros_to_text(state.last_success),
            "last_attempt": micros_to_text(state.last_attempt),
            "status": "ok" if healthy else ("never synced" if not state.last_attempt else "failing"),
            "error": state.last_error or "",
            "sent": state.sent,
            "received": state.received,
            "refused": state.refused,
        })
    return rows


# -- search -------------------------------------------------------------------------------


FACET_FIELDS = ("actor", "sector", "country")  # country: the victim country, as analytics counts it
FACETS_SHOWN = 10


@dataclass(slots=True)
class SearchResult:
    query: str
    type: str
    tlp: str
    actor: str = ""
    sector: str = ""
    country: str = ""
    results: list[Link] = field(default_factory=list)
    type_facets: list[tuple[str, int]] = field(default_factory=list)
    tlp_facets: list[tuple[str, int]] = field(default_factory=list)
    # (value, label, count) per facet field, from the analytics facts of the objects found
    facets: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    total: int = 0
    capped: bool = False


SEARCH_CANDIDATES = 500
SEARCH_SHOWN = 100


def _facet_values(viewer: Viewer, found: list[StoredVersion]) -> dict[str, dict[str, tuple[str, ...]]]:
    """For each object found: its actor, sector and victim-country values (the facts' values; an actor
    object is its own merged actor)."""
    facts = viewer.facts_for(v.id for v in found)
    actors = viewer.snapshot().facts.actors.canonical_by_id
    values: dict[str, dict[str, tuple[str, ...]]] = {}
    for version in found:
        fact = facts.get(version.id)
        own = (actors[version.id],) if version.id in actors else ()
        values[version.id] = {
            "actor": fact.actor if fact else own,
            "sector": fact.sector if fact else (),
            "country": fact.victim_country if fact else (),
        }
    return values


def search(viewer: Viewer, text: str, stix_type: str, tlp: str, *, actor: str = "", sector: str = "",
           country: str = "") -> SearchResult:
    result = SearchResult(text, stix_type, tlp, actor, sector, country)
    if text.strip():
        found = viewer.search(text, SEARCH_CANDIDATES)
    elif stix_type:
        found = viewer.browse(stix_type, SEARCH_CANDIDATES)
    else:
        return result
    result.capped = len(found) >= SEARCH_CANDIDATES
    chosen_values = {"actor": actor, "sector": sector, "country": country}
    values = _facet_values(viewer, found) if found else {}

    def keep(version: StoredVersion, *, but: str) -> bool:
        """Whether a version passes every chosen filter except the facet `but` (whose counts are shown)."""
        if but != "type" and stix_type and version.type != stix_type:
            return False
        if but != "tlp" and tlp and (version.tlp or "unmarked") != tlp:
            return False
        return all(name == but or not wanted or wanted in values[version.id][name]
                   for name, wanted in chosen_values.items())

    result.type_facets = sorted(Counter(v.type for v in found if keep(v, but="type")).items(),
                                key=lambda kv: (-kv[1], kv[0]))
    tlp_counts = Counter((v.tlp or "unmarked") for v in found if keep(v, but="tlp"))
    result.tlp_facets = [(level, tlp_counts[level]) for level in TLP_ORDER if tlp_counts.get(level)]
    for name in FACET_FIELDS:
        counts = Counter(value for v in found if keep(v, but=name) for value in set(values[v.id][name]))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FACETS_SHOWN]
        if chosen_values[name] and chosen_values[name] not in dict(ranked):
            ranked.append((chosen_values[name], counts.get(chosen_values[name], 0)))
        label_field = "victim-country" if name == "country" else name
        result.facets[name] = [(value, field_label(label_field, value), n) for value, n in ranked]
    chosen = [v for v in found if keep(v, but="")]
    result.total = len(chosen)
    result.results = [link_of(v) for v in chosen[:SEARCH_SHOWN]]
    return result


# -- object page ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neighbour:
    link: Link
    label: str  # relationship type, or the reference property
    outgoing: bool
    via: str | None = None  # the relationship object's id, when the link is an SRO


def _own_refs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, id) for every reference the object itself holds (top level)."""
    refs: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in ("object_marking_refs",):
            continue
        if key.endswith("_ref") and isinstance(value, str):
            refs.append((key, value))
        elif key.endswith("_refs") and isinstance(value, list):
            refs.extend((key, v) for v in value if isinstance(v, str))
    return refs


def neighbours(viewer: Viewer, version: StoredVersion, data: dict[str, Any]) -> list[Neighbour]:
    """Links in and out, with relationship objects folded into labelled edges."""
    own = _own_refs(data)
    own_set = {(p, i) for p, i in own}
    inbound = [(p, i) for p, i in viewer.store.related(version.id) if (p, i) not in own_set]
    shown = viewer.latest_many([i for _, i in own] + [i for _, i in inbound])
    relationships = {i: parse(v) for i, v in shown.items() if v.type == "relationship"}
    far_ends = {}
    for sro in relationships.values():
        for end in (sro.get("source_ref"), sro.get("target_ref")):
            if isinstance(end, str) and end != version.id:
                far_ends[end] = True
    far = viewer.latest_many(far_ends)
    result: list[Neighbour] = []
    for prop, other in own:
        if other in shown:
            result.append(Neighbour(link_of(shown[other]), prop, True))
    for prop, other in inbound:
        if other not in shown:
            continue
        rel = relationships.get(other)
        if rel is not None and prop in ("source_ref", "target_ref"):
            outgoing = prop == "source_ref"
            end = rel.get("target_ref") if outgoing else rel.get("source_ref")
            if isinstance(end, str) and end in far:
                result.append(Neighbour(link_of(far[end]), str(rel.get("relationship_type", "related-to")),
                                        outgoing, via=other))
            continue
        result.append(Neighbour(link_of(shown[other]), prop, False))
    return result


def graph_of(version: StoredVersion, data: dict[str, Any], links: list[Neighbour]) -> Markup:
    centre = GraphNode(version.id, display_name(data), version.type, href_for(version.id, version.type))
    edges = [GraphEdge(GraphNode(n.link.id, n.link.name, n.link.type, n.link.href), n.label, n.outgoing)
             for n in links if n.label != "created_by_ref"]
    return neighbourhood_graph(centre, edges)


def properties(data: dict[str, Any], names: dict[str, Link]) -> list[tuple[str, Any]]:
    """(property, value) pairs for the template; references are resolved to Links where visible."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key.endswith("_ref") and isinstance(value, str):
            rows.append((key, [names.get(value, value)]))
        elif key.endswith("_refs") and isinstance(value, list):
            rows.append((key, [names.get(v, v) for v in value if isinstance(v, str)]))
        else:
            rows.append((key, value))
    return rows


def marking_names(viewer: Viewer, data: dict[str, Any]) -> dict[str, Link]:
    """Links for every reference in the object's properties that the viewer may see."""
    ids = [i for _, i in _own_refs(data)]
    markings = [r for r in data.get("object_marking_refs", []) or [] if isinstance(r, str)]
    names = {i: link_of(v) for i, v in viewer.latest_many(ids + markings).items()}
    for ref in markings:
        level = tlp_of_marking(ref)
        if level is not None and ref not in names:
            # The five TLP 2.0 definitions are well known; nodes need not store them.
            names[ref] = Link(ref, "marking-definition", f"TLP:{level.upper()}", object_href(ref), level)
    return names


def provenance(viewer: Viewer, version: StoredVersion) -> list[dict[str, Any]]:
    """Who sent this object here (operators only: peer names are the node's own business)."""
    if not viewer.is_admin:
        return []
    rows: list[dict[str, Any]] = [{"version": version.version, "peer": "first stored from " + version.source, "when": "", "verified": None,
             "path": ""}]
    for record in viewer.store.provenance(version.id):
        rows.append({"version": record.version, "peer": record.peer, "when": micros_to_text(record.received),
                     "verified": record.verified, "path": " → ".join(record.path)})
    return rows


# -- actor page -------------------------------------------------------------------------------


def actor(viewer: Viewer, version: StoredVersion, data: dict[str, Any], links: list[Neighbour]) -> dict[str, Any]:
    facts = viewer.snapshot().facts
    canonical = facts.actors.canonical_by_id.get(version.id, display_name(data))
    aliases: list[str] = []
    for name in [*(data.get("aliases") or []), *(data.get("x_mitre_aliases") or []),
                 *facts.actors.aliases.get(canonical, ())]:
        if isinstance(name, str) and name not in aliases and name != data.get("name"):
            aliases.append(name)
    sponsors = set(facts.actor_sponsors.get(canonical, ()))
    for prop in ("x_threatmesh_sponsor_country", "country"):
        if isinstance(data.get(prop), str) and len(data[prop]) == 2:
            sponsors.add(data[prop].upper())
    sponsor_names = [f"{country_name(c)} ({c})" for c in sorted(sponsors)]
    origin = [n for n in links if n.outgoing and n.link.type == "location"]

    def pick(kinds: tuple[str, ...], labels: tuple[str, ...], outgoing: bool) -> list[Neighbour]:
        return [n for n in links if n.link.type in kinds and n.label in labels and n.outgoing == outgoing]

    incidents = [f for f in facts.of("incidents") if canonical in f.actor]
    years = Counter(str(f.day.year) for f in incidents if f.day is not None)
    incident_rows = sorted(years.items())
    others = [i for i in facts.actors.ids.get(canonical, ()) if i != version.id]
    other_links = viewer.latest_many(others)
    return {
        "canonical": canonical,
        "aliases": aliases,
        "sponsors": sponsor_names,
        "origin": origin,
        "motivation": data.get("primary_motivation") or "",
        "techniques": pick(("attack-pattern",), ("uses",), True),
        "software": pick(("malware", "tool"), ("uses",), True),
        "targets": pick(("identity", "location", "vulnerability"), ("targets",), True),
        "indicators": pick(("indicator",), ("indicates",), False),
        "campaigns": [n for n in links if n.link.type == "campaign"],
        "incidents": sorted(incidents, key=lambda f: (f.day is None, f.day), reverse=True),
        "incident_years": incident_rows,
        "incident_chart": bar_chart(incident_rows, title=f"Incidents attributed to {canonical} per year",
                                    chart_id="incidents") if incident_rows else None,
        "same_actor": [link_of(v) for v in other_links.values()],
    }
