"""One name per actor: intrusion sets and threat actors merged through their aliases.

The same group arrives under many names from many sources ('APT28', 'APT 28',
'Fancy Bear', 'Sofacy'), often as separate objects. Counting by actor means
counting them as one. Objects are merged when they share a name or alias after
folding case, spaces and punctuation (union-find over the names, so A~B and
B~C put A, B and C together). An outside resolver (the knowledge base's alias
tables) may map any name to a canonical one first; its answer wins.

The canonical name of a merged group is the one its objects use as `name`
most often (ties: the shortest, then alphabetical), so that it reads like
what analysts call the group rather than an arbitrary alias.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def fold_name(name: str) -> str:
    """'APT 28' and 'apt-28' -> 'apt28'."""
    return _NOT_ALNUM.sub("", name.lower())


@dataclass(slots=True)
class ActorIndex:
    canonical_by_id: dict[str, str] = field(default_factory=dict)  # actor object id -> canonical name
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> every name seen
    ids: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> object ids
    _by_folded: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_objects(
        cls, objects: Iterable[dict[str, Any]], *, resolve: Callable[[str], str | None] | None = None
    ) -> ActorIndex:
        objects = [o for o in objects if isinstance(o.get("name"), str) and o["name"].strip()]
        parent: dict[str, str] = {}

        def find(key: str) -> str:
            root = key
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[key] != root:  # path compression keeps later finds short
                parent[key], key = root, parent[key]
            return root

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        names_of: dict[str, list[str]] = {}
        for obj in objects:
            names = [obj["name"]]
            for prop in ("aliases", "x_mitre_aliases"):
                value = obj.get(prop)
                if isinstance(value, list):
                    names.extend(v for v in value if isinstance(v, str) and v.strip())
            if resolve is not None:
                names.extend(r for r in (resolve(n) for n in list(names)) if r)
            names_of[obj["id"]] = names
            node = "id:" + obj["id"]
            find(node)
            for name in names:
                folded = fold_name(name)
                if folded:
                    union(node, "name:" + folded)

        groups: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            groups.setdefault(find("id:" + obj["id"]), []).append(obj)
        index = cls()
        for members in groups.values():
            primary = Counter(o["name"].strip() for o in members)
            preferred = None
            if resolve is not None:
                # The resolver's canonical name wins when it has one for this group.
                answers = [resolve(o["name"]) for o in members]
                preferred = next((a for a in answers if a), None)
            canonical = preferred or min(primary, key=lambda n: (-primary[n], len(n), n))
            seen: dict[str, str] = {}
            for obj in members:
                for name in names_of[obj["id"]]:
                    seen.setdefault(fold_name(name), name.strip())
                index.canonical_by_id[obj["id"]] = canonical
            index.aliases[canonical] = tuple(sorted(set(seen.values()) - {canonical}, key=str.lower))
            index.ids[canonical] = tuple(sorted(o["id"] for o in members))
            for folded in seen:
                index._by_folded[folded] = canonical
        return index

    def canonical(self, name: str) -> str | None:
        """The canonical name for any known name or alias; None when unknown."""
        return self._by_folded.get(fold_name(name))

    @classmethod
    def from_groups(cls, members: Iterable[tuple[str, str, tuple[str, ...]]]) -> ActorIndex:
        """An index rebuilt from (actor object id, canonical name, aliases of the group) rows, as a
        fact table keeps them; the same index `from_objects` built over those objects."""
        index = cls()
        grouped: dict[str, list[str]] = {}
        for actor_id, canonical, aliases in members:
            index.canonical_by_id[actor_id] = canonical
            index.aliases[canonical] = aliases
            grouped.setdefault(canonical, []).append(actor_id)
            for name in (canonical, *aliases):
                index._by_folded[fold_name(name)] = canonical
        index.ids = {canonical: tuple(sorted(ids)) for canonical, ids in grouped.items()}
        return index
