"""Where every object must end up, computed from the topology and the sharing rules
alone (TLP 2.0, sharing groups, references), independently of threatmesh's policy code.

An object spreads from the node(s) that hold it first over each link whose rules
allow it: CLEAR everywhere; GREEN over community links; AMBER and AMBER+STRICT
from their origin only, to neighbours cleared for that level; RED nowhere;
unmarked as the default (AMBER). A sharing-group marking restricts every hop to
members; a group's definition goes to members only. An object that references
another one (relationships, sightings) crosses a link only if each referenced
object it points at either crosses the same link or is already on the far side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from threatmesh.share.policy import is_sharing_group_marking, sharing_group_marking_id

TLP_BY_ID = {
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
_REF_KEYS = ("source_ref", "target_ref", "sighting_of_ref")


@dataclass(frozen=True)
class LinkRule:
    role: str
    cleared_for: tuple[str, ...]


def _tlp(obj: dict[str, Any], default: str) -> str:
    levels = [TLP_BY_ID[r] for r in obj.get("object_marking_refs", []) if r in TLP_BY_ID]
    order = ["clear", "green", "amber", "amber+strict", "red"]
    return max(levels, key=order.index) if levels else default


def _refs(obj: dict[str, Any]) -> list[str]:
    found = [obj[k] for k in _REF_KEYS if k in obj]
    found += obj.get("where_sighted_refs", [])
    return found


def expected_holdings(
    seeds: dict[str, list[dict[str, Any]]],
    neighbours: Callable[[str], Iterable[tuple[str, LinkRule]]],
    groups_of: Callable[[str], Iterable[str]],
    *,
    default_tlp: str = "amber",
) -> dict[str, set[tuple[str, str]]]:
    """node -> {(id, modified)} it must hold once the mesh has converged."""
    origins: dict[tuple[str, str], set[str]] = {}
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for node, objs in seeds.items():
        for obj in objs:
            key = (obj["id"], str(obj.get("modified", "")))
            origins.setdefault(key, set()).add(node)
            objects[key] = obj
    holders: dict[tuple[str, str], set[str]] = {}
    by_id = {key[0]: key for key in objects}

    def may_cross(key: tuple[str, str], here: str, there: str, link: LinkRule) -> bool:
        obj = objects[key]
        member_of = set(groups_of(there))
        if obj["type"] == "marking-definition" and is_sharing_group_marking(obj["id"]):
            return obj["id"] in {sharing_group_marking_id(g) for g in member_of}
        groups = [r for r in obj.get("object_marking_refs", []) if is_sharing_group_marking(r)]
        if any(g not in {sharing_group_marking_id(m) for m in member_of} for g in groups):
            return False
        level = _tlp(obj, default_tlp)
        if level == "clear":
            tlp_ok = True
        elif level == "green":
            tlp_ok = link.role == "community"
        elif level in ("amber", "amber+strict"):
            tlp_ok = here in origins[key] and level in link.cleared_for
        else:
            tlp_ok = False
        if not tlp_ok:
            return False
        for ref in _refs(obj):
            target = by_id.get(ref)
            if target is None or here not in holders.get(target, set()):
                continue
            if there in holders[target]:
                continue
            if not may_cross(target, here, there, link):
                return False
        return True

    # Referenced objects first, so that a reference can be judged against where its target went.
    ordered = sorted(objects, key=lambda k: bool(_refs(objects[k])))
    for key in ordered:
        reached = set(origins[key])
        frontier = list(reached)
        while frontier:
            here = frontier.pop()
            for there, link in neighbours(here):
                if there not in reached and may_cross(key, here, there, link):
                    reached.add(there)
                    frontier.append(there)
        holders[key] = reached
    result: dict[str, set[tuple[str, str]]] = {node: set() for node in seeds}
    for key, nodes in holders.items():
        for node in nodes:
            result.setdefault(node, set()).add(key)
    return result
