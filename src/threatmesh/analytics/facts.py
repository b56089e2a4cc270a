"""Facts: one flat row per countable object, with every breakdown resolved.

STIX spreads what an analyst counts by over a graph: an incident is
`attributed-to` an intrusion set, which is `attributed-to` (or `originates-from`)
a sponsoring state's location; victims are identities (sectors, country) or
locations that the incident or campaign `targets`; an indicator `indicates` a
campaign that is attributed to an actor; a sighting is `sighting_of_ref` an
indicator. `build_facts` walks that graph once, over latest versions, and
flattens each incident, campaign, report, indicator and sighting into a `Fact`
whose fields are tuples of values (an incident may hit three sectors).

Sponsor: an object's own `attributed-to` a state's location wins; only an
object without one inherits the sponsor of its actors, and only from an actor
attributed to exactly one state (open data attributes some groups to several
states; picking among them would invent an attribution).

The walk is bounded on purpose: an actor's own attribution is followed one
step (intrusion set -> threat actor / location), never further, so that one
wrongly linked object cannot pull half the graph into a count.

Every fact keeps the id of the object it stands for, so any figure can be
traced back to the objects behind it (`threatmesh stats ... --explain`).

Reach. Given the visibility classes of the objects it reads (`Reach`, see
analytics/visibility.py), `build_facts` also records, per fact, the union of
the classes of everything that went into it: the object, each relationship
and target it followed, the campaign or indicator it inherited from (with
their own reach), and the whole merged group of every actor it names (all
members, their origin links and locations), since dropping any of them can
change the fact. A recipient allowed every class of a fact's reach sees the
operator's fact unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from threatmesh.analytics.actors import ActorIndex
from threatmesh.analytics.countries import country_code
from threatmesh.store.protocol import StoredVersion

KINDS: dict[str, str] = {
    "incidents": "incident",
    "campaigns": "campaign",
    "reports": "report",
    "indicators": "indicator",
    "sightings": "sighting",
}
FIELDS = ("actor", "sponsor", "victim-country", "sector", "type", "tlp", "source")
ACTOR_TYPES = ("intrusion-set", "threat-actor")
# The strings of an object that a fact's values come from and that redaction may rewrite
# (share/redact.py scans `name` and every `x_` property): visibility.text_altered reads these.
TEXT_READ = ("name", "x_threatmesh_date", "x_threatmesh_operation_type", "x_campaign_types", "x_cta_country",
             "x_mitre_aliases")

# The date an object's activity happened, best evidence first. `created` is the
# last resort: it is when someone wrote the object, often years after the event.
TIME_PROPERTIES: dict[str, tuple[str, ...]] = {
    # ingest/incidents.py writes x_threatmesh_date; `created` is not a fallback for incidents and
    # campaigns, whose objects are often written long after the activity they describe.
    "incident": ("x_threatmesh_date", "first_seen"),
    "campaign": ("first_seen",),
    "report": ("published", "created"),
    "indicator": ("valid_from", "created"),
    "sighting": ("first_seen", "last_seen", "created"),
}
# Operation type, for `--by type`; STIX has no single property, so each kind names its own.
TYPE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "incident": ("x_threatmesh_operation_type", "incident_types"),
    "campaign": ("x_campaign_types",),
    "report": ("report_types",),
    "indicator": ("indicator_types",),
    "sighting": (),
}
# Relationship types by their meaning for analytics (STIX 2.1 §4.x relationship tables).
ATTRIBUTION = frozenset({"attributed-to"})
ORIGIN = frozenset({"attributed-to", "originates-from", "located-at"})
VICTIM = frozenset({"targets", "impacts"})
INDICATES = frozenset({"indicates"})


@dataclass(frozen=True, slots=True)
class Fact:
    id: str
    kind: str  # 'incident', 'campaign', ...
    name: str
    day: date | None
    actor: tuple[str, ...] = ()
    sponsor: tuple[str, ...] = ()  # alpha-2 codes
    victim_country: tuple[str, ...] = ()  # alpha-2 codes
    sector: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    tlp: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    confidence: int | None = None

    def values(self, field_name: str) -> tuple[str, ...]:
        """The values of a breakdown field ('victim-country' and 'victim_country' alike)."""
        return getattr(self, field_name.replace("-", "_"))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Reach:
    """What `build_facts` needs to record the reach of each fact (analytics/visibility.py)."""

    of: Callable[[str], frozenset[int]]  # object id -> classes of it and of its held ref targets
    altered: Callable[[dict[str, Any]], bool] | None = None  # redaction rewrites a string a fact reads
    altered_class: int = 0


_NOTHING: frozenset[int] = frozenset()


@dataclass(slots=True)
class FactBase:
    """Every fact of a store, by kind, with the actor index that named them.

    Facts are either all held (`build_facts`) or read per kind on first use from
    a store's fact table (`loader`, see analytics/source.py)."""

    facts: dict[str, list[Fact]] = field(default_factory=dict)
    actors: ActorIndex = field(default_factory=ActorIndex)
    # actor canonical name -> sponsor codes, for pages and briefs
    actor_sponsors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    objects_read: int = 0
    loader: Callable[[str], list[Fact]] | None = None  # STIX type -> its facts
    # With a `Reach`: fact id -> the classes behind it; canonical actor -> the classes behind its group.
    reach: dict[str, frozenset[int]] = field(default_factory=dict)
    actor_reach: dict[str, frozenset[int]] = field(default_factory=dict)

    def of(self, kind: str) -> list[Fact]:
        key = KINDS.get(kind, kind)
        found = self.facts.get(key)
        if found is None and self.loader is not None:
            found = self.facts[key] = self.loader(key)
        return found if found is not None else []


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _countries(value: Any) -> list[str]:
    codes = (country_code(v) for v in _strings(value))
    return [c for c in codes if c]


def _source_label(source: str) -> str:
    # 'peer:CERT-X' -> 'CERT-X'; local sources ('file:...', 'demo', 'user:...') are the node itself.
    return source[5:] if source.startswith("peer:") else "local"


def build_facts(
    versions: Iterable[StoredVersion],
    *,
    actor_names: Callable[[str], str | None] | None = None,
    reach: Reach | None = None,
) -> FactBase:
    """Read latest versions once and flatten the countable ones into facts.

    `actor_names` maps any actor name or alias to a canonical one (the knowledge
    base's resolver); aliases that the objects themselves declare are merged
    whether it is given or not. With `reach`, the FactBase also holds the reach of
    each fact and actor group (the module docstring).
    """
    countable: list[tuple[dict[str, Any], StoredVersion]] = []
    actor_objects: list[dict[str, Any]] = []
    location_country: dict[str, str] = {}
    identity_info: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    out_edges: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # source -> (type, target, rel id)
    own: dict[str, frozenset[int]] = {}  # with `reach`: object id -> its classes (and ALTERED)
    wanted = set(KINDS.values())
    read = 0
    for version in versions:
        read += 1
        kind = version.type
        if kind not in wanted and kind not in ("relationship", "location", "identity", *ACTOR_TYPES):
            continue
        obj = orjson.loads(version.json)
        if reach is not None:
            classes = reach.of(version.id)
            if kind != "relationship" and reach.altered is not None and reach.altered(obj):
                classes = classes | {reach.altered_class}
            own[version.id] = classes
        if kind == "relationship":
            rel_type, src, tgt = obj.get("relationship_type"), obj.get("source_ref"), obj.get("target_ref")
            if isinstance(rel_type, str) and isinstance(src, str) and isinstance(tgt, str):
                out_edges[src].append((rel_type, tgt, version.id))
        elif kind == "location":
            code = country_code(obj["country"]) if isinstance(obj.get("country"), str) else None
            if code is None and isinstance(obj.get("name"), str) and not obj.get("region"):
                code = country_code(obj["name"])
            if code:
                location_country[obj["id"]] = code
        elif kind == "identity":
            sectors = tuple(s.strip().lower() for s in _strings(obj.get("sectors")))
            countries = tuple(_countries(obj.get("x_cta_country")) + _countries(obj.get("country")))
            identity_info[obj["id"]] = (sectors, countries)
        elif kind in ACTOR_TYPES:
            actor_objects.append(obj)
        if kind in wanted:
            countable.append((obj, version))

    actors = ActorIndex.from_objects(actor_objects, resolve=actor_names)
    base = FactBase(actors=actors, objects_read=read)

    def seen(acc: set[int] | None, *object_ids: str) -> None:
        if acc is not None:
            for object_id in object_ids:
                acc.update(own.get(object_id, _NOTHING))

    track = reach is not None

    def origin_of(object_id: str, acc: set[int] | None = None) -> set[str]:
        codes: set[str] = set()
        for rel, target, rel_id in out_edges.get(object_id, ()):
            if rel in ORIGIN and target in location_country:
                codes.add(location_country[target])
                seen(acc, rel_id, target)
        return codes

    # An actor's sponsor: its own origin links, and those of the actors it is attributed to.
    sponsor_by_actor_id: dict[str, set[str]] = {}
    reach_by_actor_id: dict[str, set[int]] = {}
    for obj in actor_objects:
        acc: set[int] | None = set(own.get(obj["id"], _NOTHING)) if track else None
        codes = origin_of(obj["id"], acc)
        for rel, target, rel_id in out_edges.get(obj["id"], ()):
            if rel in ATTRIBUTION and target in actors.canonical_by_id:
                codes |= origin_of(target, acc)
                seen(acc, rel_id, target)
        codes.update(_countries(obj.get("country")))
        sponsor_by_actor_id[obj["id"]] = codes
        if acc is not None:
            reach_by_actor_id[obj["id"]] = acc
    by_name: dict[str, set[str]] = defaultdict(set)
    group_reach: dict[str, set[int]] = defaultdict(set)
    for actor_id, codes in sponsor_by_actor_id.items():
        by_name[actors.canonical_by_id[actor_id]] |= codes
        if track:
            group_reach[actors.canonical_by_id[actor_id]] |= reach_by_actor_id[actor_id]
    base.actor_sponsors = {name: tuple(sorted(codes)) for name, codes in by_name.items()}
    base.actor_reach = {name: frozenset(classes) for name, classes in group_reach.items()}

    def attributed_actors(object_id: str, acc: set[int] | None) -> set[str]:
        """Actor object ids that an object is attributed to, directly or via one more attribution step."""
        found: set[str] = set()
        for rel, target, rel_id in out_edges.get(object_id, ()):
            if rel in ATTRIBUTION and target in actors.canonical_by_id:
                found.add(target)
                seen(acc, rel_id)
        return found

    def victims(object_id: str, acc: set[int] | None) -> tuple[set[str], set[str]]:
        countries: set[str] = set()
        sectors: set[str] = set()
        for rel, target, rel_id in out_edges.get(object_id, ()):
            if rel not in VICTIM:
                continue
            if target in location_country:
                countries.add(location_country[target])
                seen(acc, rel_id, target)
            elif target in identity_info:
                id_sectors, id_countries = identity_info[target]
                sectors.update(id_sectors)
                countries.update(id_countries)
                seen(acc, rel_id, target)
                for rel2, loc, rel2_id in out_edges.get(target, ()):
                    if rel2 == "located-at" and loc in location_country:
                        countries.add(location_country[loc])
                        seen(acc, rel2_id, loc)
        return countries, sectors

    campaign_info: dict[str, tuple[set[str], set[str], set[str]]] = {}
    inherited_reach: dict[str, frozenset[int]] = {}  # campaign and indicator id -> its fact's reach

    def profile(obj: dict[str, Any], acc: set[int] | None) -> tuple[set[str], set[str], set[str], set[str]]:
        """(actor ids, sponsors, victim countries, sectors) of one countable object."""
        oid = obj["id"]
        kind = obj["type"]
        actor_ids = attributed_actors(oid, acc)
        sponsors = origin_of(oid, acc)
        countries, sectors = victims(oid, acc)
        if kind == "report":
            actor_ids |= {r for r in _strings(obj.get("object_refs")) if r in actors.canonical_by_id}
        elif kind == "indicator":
            for rel, target, rel_id in out_edges.get(oid, ()):
                if rel not in INDICATES:
                    continue
                if target in actors.canonical_by_id:
                    actor_ids.add(target)
                    seen(acc, rel_id)
                elif target in campaign_info:
                    c_actors, c_countries, c_sectors = campaign_info[target]
                    actor_ids |= c_actors
                    countries |= c_countries
                    sectors |= c_sectors
                    seen(acc, rel_id)
                    if acc is not None:
                        acc.update(inherited_reach[target])
        elif kind == "sighting":
            seen_ref = obj.get("sighting_of_ref")
            if isinstance(seen_ref, str):
                if seen_ref in actors.canonical_by_id:
                    actor_ids.add(seen_ref)
                elif seen_ref in indicator_actor_ids:
                    actor_ids |= indicator_actor_ids[seen_ref]
                    if acc is not None:
                        acc.update(inherited_reach[seen_ref])
                elif seen_ref in campaign_info:
                    actor_ids |= campaign_info[seen_ref][0]
                    if acc is not None:
                        acc.update(inherited_reach[seen_ref])
            for where in _strings(obj.get("where_sighted_refs")):
                if where in identity_info:
                    sectors.update(identity_info[where][0])
                    countries.update(identity_info[where][1])
                    seen(acc, where)
                elif where in location_country:
                    countries.add(location_country[where])
                    seen(acc, where)
        if acc is not None:
            # Every actor named, as its whole merged group: its name and sponsors come from all of it.
            for actor_id in actor_ids:
                acc.update(group_reach.get(actors.canonical_by_id[actor_id], _NOTHING))
        if not sponsors:
            # The object's own attribution to a state is the most specific evidence and wins;
            # only without it does the sponsor come from its actors, and only from an actor
            # attributed to exactly one state (aliases are one actor): open data attributes some
            # groups to several states, and guessing among them would invent attributions.
            for actor_id in actor_ids:
                known = base.actor_sponsors.get(actors.canonical_by_id[actor_id], ())
                if len(known) == 1:
                    sponsors.update(known)
        return actor_ids, sponsors, countries, sectors

    # Campaigns first (indicators inherit from them), then indicators (sightings inherit from those).
    order = {"campaign": 0, "incident": 1, "report": 1, "indicator": 2, "sighting": 3}
    countable.sort(key=lambda pair: order[pair[0]["type"]])
    indicator_actor_ids: dict[str, set[str]] = {}
    for obj, version in countable:
        kind = obj["type"]
        fact_reach: set[int] | None = set(own.get(obj["id"], _NOTHING)) if track else None
        actor_ids, sponsor_codes, victim_codes, sector_names = profile(obj, fact_reach)
        if fact_reach is not None:
            frozen = base.reach[obj["id"]] = frozenset(fact_reach)
            if kind in ("campaign", "indicator"):
                inherited_reach[obj["id"]] = frozen
        if kind == "campaign":
            campaign_info[obj["id"]] = (actor_ids, victim_codes, sector_names)
        elif kind == "indicator" and actor_ids:
            indicator_actor_ids[obj["id"]] = actor_ids
        day = next((d for d in (_day(obj.get(p)) for p in TIME_PROPERTIES[kind]) if d is not None), None)
        types: list[str] = []
        for prop in TYPE_PROPERTIES[kind]:
            types.extend(t.strip() for t in _strings(obj.get(prop)))
        confidence = obj.get("confidence")
        base.facts.setdefault(kind, []).append(
            Fact(
                id=obj["id"],
                kind=kind,
                name=str(obj.get("name") or obj.get("pattern") or obj["id"])[:200],
                day=day,
                actor=tuple(sorted({actors.canonical_by_id[a] for a in actor_ids})),
                sponsor=tuple(sorted(sponsor_codes)),
                victim_country=tuple(sorted(victim_codes)),
                sector=tuple(sorted(sector_names)),
                type=tuple(sorted(set(types))),
                tlp=(version.tlp or "unmarked",),
                source=(_source_label(version.source),),
                confidence=confidence if isinstance(confidence, int) else None,
            )
        )
    return base
