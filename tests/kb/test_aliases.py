"""Actor alias resolution: the pure graph on small records, and on the real ATT&CK and MISP galaxy data."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import orjson
import pytest

from tests.conftest import corpus_path
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.kb.aliases import ActorRecord, AliasIndex, record_of
from threatmesh.kb.galaxy import ACTOR_GALAXIES, galaxy_type, read_actor_galaxy

APT28 = "intrusion-set--bef4c620-0787-42a8-a96d-b7eb6e85917c"  # ATT&CK G0007
APT29 = "intrusion-set--899ce53f-13a0-479b-a0e4-67d46e241542"  # ATT&CK G0016


def test_names_compare_without_case_or_punctuation() -> None:
    index = AliasIndex.build([ActorRecord("intrusion-set--a", "Fancy Bear", ("APT-28",))])
    for name in ("fancy bear", "FANCY-BEAR", "FancyBear", "apt 28", "APT28", "intrusion-set--a"):
        assert index.resolve(name) == "intrusion-set--a", name
    assert index.resolve("Cozy Bear") is None
    assert index.resolve("  ") is None


def test_a_join_that_would_merge_two_attack_groups_is_refused() -> None:
    # An umbrella cluster naming two ATT&CK groups must not fuse them.
    records = [ActorRecord("intrusion-set--1", "Lazarus Group", source="mitre-attack", attack_id="G0032"),
               ActorRecord("intrusion-set--2", "APT38", source="mitre-attack", attack_id="G0082"),
               ActorRecord("intrusion-set--3", "Lazarus Group", ("APT38", "Hidden Cobra"),
                           source="misp-galaxy:threat-actor", attributed_attack_ids=("G0032", "G0082"))]
    index = AliasIndex.build(records)
    assert index.resolve("Hidden Cobra") == "intrusion-set--1"
    assert index.resolve("APT38") == "intrusion-set--2"  # its primary name wins over an umbrella's alias
    assert index.refused


def test_sharing_only_an_alias_does_not_join() -> None:
    index = AliasIndex.build([ActorRecord("intrusion-set--1", "Alpha", ("Shared",)),
                              ActorRecord("intrusion-set--2", "Beta", ("Shared",))])
    assert index.resolve("Alpha") != index.resolve("Beta")


def test_the_canonical_id_does_not_depend_on_input_order() -> None:
    records = [ActorRecord("intrusion-set--c", "Sofacy", ("APT28",), source="misp-galaxy:threat-actor"),
               ActorRecord("intrusion-set--b", "Forest Blizzard", ("APT28",),
                           source="misp-galaxy:microsoft-activity-group"),
               ActorRecord("intrusion-set--z", "APT28", ("Sofacy",), source="mitre-attack", attack_id="G0007")]
    answers = set()
    for seed in range(5):
        random.Random(seed).shuffle(records)
        index = AliasIndex.build(records)
        answers.add((index.resolve("Forest Blizzard"), index.resolve("sofacy")))
    assert answers == {("intrusion-set--z", "intrusion-set--z")}


@lru_cache(maxsize=1)
def _real_records() -> tuple[ActorRecord, ...]:
    records = []
    for path in sorted(corpus_path("misp", "galaxy", "clusters").glob("*.json")):
        data = orjson.loads(path.read_bytes())
        if galaxy_type(data) in ACTOR_GALAXIES:
            records += [r for item in read_actor_galaxy(path, data, None) if isinstance(item, RawObject)
                        for r in [record_of(item.data)] if r]
    bundle = orjson.loads(corpus_path("attack", "enterprise-attack-18.1-stix21-converted.json").read_bytes())
    revoked_by: dict[str, list[str]] = {}
    for obj in bundle["objects"]:
        if obj.get("relationship_type") == "revoked-by":
            revoked_by.setdefault(obj["source_ref"], []).append(obj["target_ref"])
    for obj in bundle["objects"]:
        record = record_of(obj, tuple(revoked_by.get(obj["id"], ())))
        if record:
            records.append(record)
    return tuple(records)


@pytest.mark.parametrize("name", ["APT28", "Sofacy", "Fancy Bear", "Sednit", "Fighting Ursa", "Forest Blizzard",
                                  "STRONTIUM", "fancy-bear", "apt 28", "Pawn Storm", "TA422"])
def test_every_name_of_apt28_resolves_to_the_attack_intrusion_set(name: str) -> None:
    assert AliasIndex.build(_real_records()).resolve(name) == APT28


def test_real_actors_stay_apart_and_revoked_attack_groups_follow_their_replacement() -> None:
    index = AliasIndex.build(_real_records())
    assert index.resolve("Cozy Bear") == index.resolve("Midnight Blizzard") == index.resolve("UNC2452") == APT29
    distinct = {index.resolve(n) for n in ("APT28", "APT29", "Lazarus Group", "APT38", "Sandworm Team", "Turla",
                                           "Kimsuky", "OilRig", "APT41")}
    assert len(distinct) == 9 and None not in distinct
    assert index.resolve("Seashell Blizzard") == index.resolve("Sandworm")
    sources = index.actors[APT28].names()
    assert {"mitre-attack", "misp-galaxy:threat-actor"} <= set(sources["APT28"])
    assert "misp-galaxy:microsoft-activity-group" in sources["Forest Blizzard"]
    # no actor swallows the world
    assert max(len(a.members) for a in index.actors.values()) < 20
