"""Actor alias resolution across ATT&CK, MISP galaxies (threat-actor, MITRE, Microsoft, Tidal) and the store.

Every intrusion set or threat actor is a node named by its `name` and its
`aliases`. Nodes that denote one group are joined into one actor, by evidence
taken strongest first:

1. the same ATT&CK group id (ATT&CK's own objects, the MITRE galaxies' `external_id`,
   Tidal's `group_attack_id`);
2. the same primary name ('APT28' in ATT&CK, in Tidal and in an incident dataset);
3. a galaxy's `same-as` / `similar` link to another cluster (by its uuid);
4. one node's primary name among another node's aliases (Microsoft's 'Forest Blizzard'
   lists 'APT28'; MISP's 'Sofacy' lists 'Fancy Bear');
5. an ATT&CK id in MISP's `name-attribution` ('G0007:<uuid>').

Two nodes that share only an alias are not joined, and a join that would put
two different ATT&CK groups into one actor is refused: umbrella names
(MISP's 'Lazarus Group' attributes both G0032 and G0082) must not swallow the
groups ATT&CK keeps apart. A name that several actors claim resolves to the
actor for which it is a primary name, then to the one that more sources name.

The canonical id of an actor is its ATT&CK intrusion set when there is one,
else the node of the most authoritative source, else the smallest id: the same
input always gives the same answer. Names compare case-, accent- and
punctuation-insensitively ('Fancy-Bear' = 'fancy bear').

The logic here is pure: `AliasIndex.build` takes records. The store functions at
the end keep the records in the store's metadata (`kb.actor_records`), refreshed
by the knowledge-pack loaders, so `resolve_actor` is one metadata read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from threatmesh.kb.vocab import name_key
from threatmesh.store.protocol import Store

META_RECORDS = "kb.actor_records"
ACTOR_TYPES = ("intrusion-set", "threat-actor")
ALIAS_LINKS = frozenset({"same-as", "similar"})
_ATTACK_GROUP = re.compile(r"^G\d{4}$")
_UUID_SUFFIX = re.compile(r":[0-9a-fA-F-]{36}$")
# Lower is more authoritative when choosing an actor's canonical node.
SOURCE_RANK = {"mitre-attack": 0, "misp-galaxy:threat-actor": 1, "misp-galaxy:mitre-intrusion-set": 2,
               "misp-galaxy:microsoft-activity-group": 3, "misp-galaxy:tidal-groups": 4}


@dataclass(frozen=True, slots=True)
class ActorRecord:
    """What the alias graph needs of one intrusion set or threat actor."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    source: str = "stix"
    attack_id: str = ""  # the ATT&CK group this node is (strong)
    attributed_attack_ids: tuple[str, ...] = ()  # ATT&CK groups a galaxy merely attributes names to (weak)
    galaxy_uuid: str = ""
    links: tuple[str, ...] = ()  # uuids of clusters this one is the same as / similar to
    revoked_by: tuple[str, ...] = ()  # set on a revoked node: uuids of the nodes that replace it

    @property
    def rank(self) -> tuple[int, int, str]:
        return (0 if self.source == "mitre-attack" else 1, SOURCE_RANK.get(self.source, 9), self.id)

    def as_list(self) -> list[Any]:
        return [self.id, self.name, list(self.aliases), self.source, self.attack_id,
                list(self.attributed_attack_ids), self.galaxy_uuid, list(self.links), list(self.revoked_by)]

    @classmethod
    def from_list(cls, row: list[Any]) -> ActorRecord:
        return cls(row[0], row[1], tuple(row[2]), row[3], row[4], tuple(row[5]), row[6], tuple(row[7]),
                   tuple(row[8]))

    @property
    def revoked(self) -> bool:
        return bool(self.revoked_by)


def record_of(obj: Mapping[str, Any], revoked_by: tuple[str, ...] = ()) -> ActorRecord | None:
    """The record of an intrusion set or threat actor (None for other types and deprecated ones).

    A revoked object needs `revoked_by` (the ids or uuids replacing it), else it is None too.
    """
    if obj.get("type") not in ACTOR_TYPES or not isinstance(obj.get("name"), str) or not obj["name"].strip():
        return None
    if obj.get("x_mitre_deprecated") or (obj.get("revoked") and not revoked_by):
        return None
    aliases = tuple(a for a in obj.get("aliases") or [] if isinstance(a, str) and a.strip())
    galaxy = obj.get("x_misp_galaxy") if isinstance(obj.get("x_misp_galaxy"), Mapping) else None
    attack_id = ""
    for ref in obj.get("external_references") or []:
        if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack" \
                and _ATTACK_GROUP.match(str(ref.get("external_id", ""))):
            attack_id = str(ref["external_id"])
    attributed: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    galaxy_uuid = ""
    if galaxy is not None:
        source = f"misp-galaxy:{galaxy.get('type', '')}"
        meta = galaxy.get("meta") if isinstance(galaxy.get("meta"), Mapping) else {}
        tidal_id = str(meta.get("group_attack_id", ""))  # type: ignore[union-attr]
        if not attack_id and _ATTACK_GROUP.match(tidal_id):
            attack_id = tidal_id
        attributed = tuple(sorted({_UUID_SUFFIX.sub("", str(n)).strip()
                                   for n in meta.get("name-attribution") or []  # type: ignore[union-attr]
                                   if _ATTACK_GROUP.match(_UUID_SUFFIX.sub("", str(n)).strip())}))
        galaxy_uuid = str(galaxy.get("uuid") or "")
        links = tuple(sorted({str(r.get("dest-uuid")) for r in galaxy.get("related") or []
                              if isinstance(r, Mapping) and r.get("type") in ALIAS_LINKS}))
        revoked_by = revoked_by or tuple(sorted({str(r.get("dest-uuid")) for r in galaxy.get("related") or []
                                                 if isinstance(r, Mapping) and r.get("type") == "revoked-by"}))
    elif attack_id:
        source = "mitre-attack"
    else:
        source = "stix"
    return ActorRecord(obj["id"], obj["name"].strip(), aliases, source, attack_id, attributed, galaxy_uuid, links,
                       tuple(r.partition("--")[2] or r for r in revoked_by))


@dataclass(frozen=True, slots=True)
class Actor:
    """One resolved actor: its canonical id and every node that denotes it."""

    id: str
    name: str
    members: tuple[ActorRecord, ...]

    @property
    def attack_id(self) -> str:
        return next((m.attack_id for m in self.members if m.attack_id), "")

    def names(self) -> dict[str, list[str]]:
        """{name as spelled: [sources that use it]}, one spelling per folded name, canonical name first."""
        spellings: dict[str, dict[str, int]] = defaultdict(dict)  # key -> spelling -> uses (in rank order)
        sources: dict[str, set[str]] = defaultdict(set)
        for member in self.members:
            for spelling in dict.fromkeys((member.name, *member.aliases)):
                key = name_key(spelling)
                if key:
                    spellings[key][spelling] = spellings[key].get(spelling, 0) + 1
                    sources[key].add(member.source)
        # the spelling most sources use ('Fancy Bear' over 'FANCY BEAR'); ties to the most authoritative
        chosen = {key: max(uses, key=lambda sp: uses[sp]) for key, uses in spellings.items()}
        ordered = sorted(chosen, key=lambda key: (key != name_key(self.name), chosen[key].lower()))
        return {chosen[key]: sorted(sources[key]) for key in ordered}


@dataclass
class AliasIndex:
    actors: dict[str, Actor] = field(default_factory=dict)  # canonical id -> actor
    canonical_of: dict[str, str] = field(default_factory=dict)  # any member id -> canonical id
    by_name: dict[str, str] = field(default_factory=dict)  # name_key -> canonical id
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # joins refused: (id, id, why)

    @classmethod
    def build(cls, records: Iterable[ActorRecord]) -> AliasIndex:
        everything = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
        nodes = _renamed([r for r in everything if not r.revoked], [r for r in everything if r.revoked])
        index = cls()
        groups = _UnionFind(nodes, index.refused)
        by_attack: dict[str, list[str]] = defaultdict(list)
        by_primary: dict[str, list[str]] = defaultdict(list)
        by_uuid: dict[str, list[str]] = defaultdict(list)
        for node in nodes:
            if node.attack_id:
                by_attack[node.attack_id].append(node.id)
            by_primary[name_key(node.name)].append(node.id)
            for key in {node.galaxy_uuid, node.id.partition("--")[2]} - {""}:
                by_uuid[key].append(node.id)
        for ids in by_attack.values():
            groups.join_all(ids, "same ATT&CK id")
        for key, ids in sorted(by_primary.items()):
            if key:
                groups.join_all(ids, "same name")
        for node in nodes:
            for target in node.links:
                for other in by_uuid.get(target, ()):
                    groups.join(node.id, other, "galaxy link")
        for node in nodes:
            for alias in node.aliases:
                for other in by_primary.get(name_key(alias), ()):
                    groups.join(node.id, other, "name among aliases")
        for node in nodes:
            for attack_id in node.attributed_attack_ids:
                for other in by_attack.get(attack_id, ()):
                    groups.join(node.id, other, "attributed ATT&CK id")
        members: dict[str, list[ActorRecord]] = defaultdict(list)
        for node in nodes:
            members[groups.find(node.id)].append(node)
        for group in members.values():
            head = min(group, key=lambda r: r.rank)
            actor = Actor(head.id, head.name, tuple(sorted(group, key=lambda r: r.rank)))
            index.actors[head.id] = actor
            for member in group:
                index.canonical_of[member.id] = head.id
        index._index_names(nodes)
        return index

    def _index_names(self, nodes: list[ActorRecord]) -> None:
        scores: dict[str, dict[str, tuple[int, int]]] = defaultdict(lambda: defaultdict(lambda: (0, 0)))
        for node in nodes:
            canonical = self.canonical_of[node.id]
            for spelling, primary in [(node.name, 1), *((a, 0) for a in node.aliases)]:
                key = name_key(spelling)
                if key:
                    is_primary, count = scores[key][canonical]
                    scores[key][canonical] = (max(is_primary, primary), count + 1)
        for key, candidates in scores.items():
            self.by_name[key] = max(candidates, key=lambda c: (*candidates[c], -self.actors[c].members[0].rank[0],
                                                               _reverse(c)))

    def resolve(self, name: str) -> str | None:
        """The canonical id of the actor a name denotes (an actor id is accepted too); None when unknown."""
        text = name.strip()
        if text in self.canonical_of:
            return self.canonical_of[text]
        return self.by_name.get(name_key(text)) if text else None

    def actor(self, name_or_id: str) -> Actor | None:
        canonical = self.resolve(name_or_id)
        return self.actors.get(canonical) if canonical else None

    def aliases(self, name_or_id: str) -> set[str]:
        actor = self.actor(name_or_id)
        return set(actor.names()) if actor else set()


def _renamed(nodes: list[ActorRecord], revoked: list[ActorRecord]) -> list[ActorRecord]:
    """Nodes whose ATT&CK id MITRE revoked (G0118 UNC2452 -> G0016 APT29) carry the replacing group's id."""
    from dataclasses import replace

    by_uuid = {key: n for n in nodes for key in {n.galaxy_uuid, n.id.partition("--")[2]} - {""}}
    renames: dict[str, str] = {}
    for old in revoked:
        new = next((by_uuid[u].attack_id for u in old.revoked_by if u in by_uuid and by_uuid[u].attack_id), "")
        if old.attack_id and new and new != old.attack_id:
            renames[old.attack_id] = new
    return [replace(n, attack_id=renames.get(n.attack_id, n.attack_id),
                    attributed_attack_ids=tuple(renames.get(a, a) for a in n.attributed_attack_ids))
            for n in nodes]


def _reverse(text: str) -> tuple[int, ...]:
    """Sort key that makes `max` pick the smallest string, so ties go to the smallest id."""
    return tuple(-ord(c) for c in text)


class _UnionFind:
    def __init__(self, nodes: list[ActorRecord], refused: list[tuple[str, str, str]]) -> None:
        self.parent = {n.id: n.id for n in nodes}
        self.attack = {n.id: {n.attack_id} - {""} for n in nodes}
        self.refused = refused

    def find(self, node: str) -> str:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def join(self, a: str, b: str, why: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if len(self.attack[ra] | self.attack[rb]) > 1:
            self.refused.append((a, b, f"{why}: would merge ATT&CK groups "
                                       f"{', '.join(sorted(self.attack[ra] | self.attack[rb]))}"))
            return
        ra, rb = sorted((ra, rb))
        self.parent[rb] = ra
        self.attack[ra] |= self.attack.pop(rb)

    def join_all(self, ids: list[str], why: str) -> None:
        for other in ids[1:]:
            self.join(ids[0], other, why)


# -- kept in the store -------------------------------------------------------------------


def collect_records(store: Store) -> list[ActorRecord]:
    """Records of every latest intrusion set and threat actor in the store."""
    revoked: list[dict[str, Any]] = []
    replaced_by: dict[str, list[str]] = defaultdict(list)
    records = []
    for version in store.iter_objects():
        if version.type in ACTOR_TYPES:
            obj = orjson.loads(version.json)
            if obj.get("revoked"):
                revoked.append(obj)
                continue
            record = record_of(obj)
            if record is not None:
                records.append(record)
        elif version.type == "relationship" and b'"revoked-by"' in version.json:
            rel = orjson.loads(version.json)
            if rel.get("relationship_type") == "revoked-by":
                replaced_by[str(rel.get("source_ref"))].append(str(rel.get("target_ref")))
    for obj in revoked:
        record = record_of(obj, tuple(sorted(replaced_by.get(obj["id"], ()))))
        if record is not None:
            records.append(record)
    return records


def refresh_alias_index(store: Store) -> AliasIndex:
    """Re-read the store's actors, keep their records in metadata, and return the index."""
    records = collect_records(store)
    store.set_meta(META_RECORDS, orjson.dumps([r.as_list() for r in records]).decode())
    return AliasIndex.build(records)


def load_alias_index(store: Store) -> AliasIndex:
    """The index as of the last knowledge-pack load (empty before any). Build once, resolve many names."""
    raw = store.get_meta(META_RECORDS)
    return AliasIndex.build(ActorRecord.from_list(row) for row in orjson.loads(raw)) if raw else AliasIndex()


def resolve_actor(store: Store, name: str) -> str | None:
    """The canonical intrusion-set / threat-actor id for a name or alias ('Fancy Bear'); None when unknown."""
    return load_alias_index(store).resolve(name)


def actor_aliases(store: Store, actor_id: str) -> set[str]:
    """Every name of the actor that `actor_id` (any of its nodes) or a name denotes."""
    return load_alias_index(store).aliases(actor_id)
