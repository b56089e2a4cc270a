"""Knowledge packs in a store: MISP galaxy actors with sponsors and targets, KEV, vocabularies, the ingest hook."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.conftest import corpus_path
from tests.helpers import indicator, run_cli, write_bundle
from threatmesh.extract.stix import derived_id
from threatmesh.ingest.formats import Rejected
from threatmesh.ingest.pipeline import SourceReport, ingest_raw
from threatmesh.ingest.stix_reader import RawObject
from threatmesh.kb.aliases import actor_aliases, resolve_actor
from threatmesh.kb.kev import read_kev
from threatmesh.kb.packs import kb_collection, load_galaxy
from threatmesh.kb.vocab import country_code, load_country_vocab, load_sector_vocab
from threatmesh.kb.warninglists import FlaggingStore, warninglist_hits
from threatmesh.store.sqlite import SQLiteStore

SOFACY_CLUSTER = "intrusion-set--5b4ee3ea-eee3-4c8e-8323-85ae32658754"  # MISP threat-actor galaxy


@pytest.fixture(scope="module")
def galaxy_store(tmp_path_factory: pytest.TempPathFactory) -> SQLiteStore:
    store = SQLiteStore(tmp_path_factory.mktemp("kb") / "kb.db")
    result = load_galaxy(store, corpus_path("misp", "galaxy", "clusters"))
    assert result.report.rejected == 0 and result.report.failed_sources == 0
    assert result.report.total("new") > 5000
    return store


def _relations(store: SQLiteStore, source: str, kind: str) -> set[str]:
    found = set()
    for version in store.iter_objects():
        if version.type == "relationship":
            rel = orjson.loads(version.json)
            if rel["source_ref"] == source and rel["relationship_type"] == kind:
                found.add(rel["target_ref"])
    return found


def test_galaxy_actor_gets_sponsor_origin_victims_and_sectors(galaxy_store: SQLiteStore) -> None:
    sofacy = orjson.loads(galaxy_store.get_latest(SOFACY_CLUSTER).json)  # type: ignore[union-attr]
    assert {"Fighting Ursa", "Forest Blizzard", "Fancy Bear"} <= set(sofacy["aliases"])
    russia = derived_id("location", "country", "RU")  # the incident importer's id for Russia
    assert _relations(galaxy_store, SOFACY_CLUSTER, "attributed-to") == {russia}
    assert russia in _relations(galaxy_store, SOFACY_CLUSTER, "originates-from")
    targets = _relations(galaxy_store, SOFACY_CLUSTER, "targets")
    assert {derived_id("location", "country", c) for c in ("GE", "FR", "US", "UA")} <= targets
    assert derived_id("identity", "sector", "government") in targets
    wada = [t for t in targets if t.startswith("identity--")
            and orjson.loads(galaxy_store.get_latest(t).json)["name"] == "World Anti-Doping Agency"]  # type: ignore[union-attr]
    assert wada  # a victim that is not a country is an organisation, not dropped


def test_galaxy_aliases_resolve_without_attack_and_reload_is_idempotent(galaxy_store: SQLiteStore) -> None:
    canonical = resolve_actor(galaxy_store, "Fighting Ursa")
    assert canonical is not None
    assert resolve_actor(galaxy_store, "forest blizzard") == resolve_actor(galaxy_store, "SOFACY") == canonical
    assert {"APT28", "Sednit", "Fancy Bear"} <= actor_aliases(galaxy_store, canonical)
    again = load_galaxy(galaxy_store, corpus_path("misp", "galaxy", "clusters"))
    assert again.report.total("new") == again.report.total("updated") == 0


def test_country_and_sector_vocabularies(galaxy_store: SQLiteStore) -> None:
    countries = load_country_vocab(galaxy_store)
    sectors = load_sector_vocab(galaxy_store)
    assert countries is not None and sectors is not None
    assert countries.code("Russia") == countries.code("RUS") == "RU"
    assert countries.name("FR") and countries.code(countries.name("FR") or "") == "FR"
    assert sectors.canonical("Healthcare") == "health" and sectors.canonical("Telecommunications") == "telecoms"
    assert country_code("Iran (Islamic Republic of)") == "IR"
    assert country_code("Korea (Democratic People's Republic of)") == "KP"
    assert country_code("Unknown") is None and country_code("NATO") is None


def test_bad_clusters_are_reported_and_the_rest_load(tmp_path: Path) -> None:
    path = tmp_path / "threat-actor.json"
    path.write_text(json.dumps({"type": "threat-actor", "version": 3, "values": [
        {"value": "Good Actor", "uuid": "0b0a2b7c-0000-4000-8000-000000000001",
         "meta": {"synonyms": ["GA"], "cfr-suspected-state-sponsor": "Atlantis"}},
        "not an object", {"uuid": "0b0a2b7c-0000-4000-8000-000000000002"}, {"value": "x", "uuid": "nope"}]}))
    store = SQLiteStore(tmp_path / "s.db")
    result = load_galaxy(store, path)
    rejections = [r.location for s in result.report.sources for r in s.rejected]
    assert [loc.rsplit(", ", 1)[1] for loc in rejections] == ["values[1]", "values[2]", "values[3]"]
    assert resolve_actor(store, "ga") == "intrusion-set--0b0a2b7c-0000-4000-8000-000000000001"
    assert not _relations(store, "intrusion-set--0b0a2b7c-0000-4000-8000-000000000001", "attributed-to")


def test_kev_catalog() -> None:
    path = corpus_path("kev", "known_exploited_vulnerabilities.json")
    items = list(read_kev(path))
    catalog = orjson.loads(path.read_bytes())["vulnerabilities"]
    objects = [i.data for i in items if isinstance(i, RawObject)]
    assert len(objects) == len(catalog) and not [i for i in items if isinstance(i, Rejected)]
    known = sum(1 for e in catalog if e["knownRansomwareCampaignUse"] == "Known")
    assert sum(1 for o in objects if o["x_threatmesh_known_ransomware_use"] is True) == known > 0
    first = objects[0]
    assert first["id"] == derived_id("vulnerability", catalog[0]["cveID"])  # the id reports derive for a CVE
    assert first["external_references"][0] == {"source_name": "cve", "external_id": catalog[0]["cveID"],
                                               "url": f"https://nvd.nist.gov/vuln/detail/{catalog[0]['cveID']}"}
    assert first["x_threatmesh_vendor"] == catalog[0]["vendorProject"]
    assert first["created"].startswith(catalog[0]["dateAdded"])


def test_kev_bad_entries_are_rejected_with_their_index(tmp_path: Path) -> None:
    path = tmp_path / "kev.json"
    good = {"cveID": "CVE-2024-0001", "dateAdded": "2024-02-01", "knownRansomwareCampaignUse": "Unknown"}
    path.write_text(json.dumps({"dateReleased": "2024-03-01T00:00:00Z", "vulnerabilities": [
        good, {**good, "cveID": "not-a-cve"}, {**good, "dateAdded": "yesterday"}, 7]}))
    items = list(read_kev(path))
    assert [i.location.rsplit(", ", 1)[1] for i in items if isinstance(i, Rejected)] == [
        "vulnerabilities[1]", "vulnerabilities[2]", "vulnerabilities[3]"]
    store = SQLiteStore(tmp_path / "s.db")
    report = SourceReport(str(path))
    ingest_raw(iter(items), store, report, collection_id=kb_collection(store).id, source="test")
    assert report.new == 1 and len(report.rejected) == 3


def test_ingest_hook_flags_only_what_was_added(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    collection = kb_collection(store).id
    objects = [indicator(1, pattern="[ipv4-addr:value = '192.168.1.1']"),
               indicator(2, pattern="[domain-name:value = 'update.evil-host.ru']")]

    def ingest(objs: list[dict[str, object]]) -> dict[str, list[str]]:
        flagging = FlaggingStore(store)
        ingest_raw((RawObject("t", i, o) for i, o in enumerate(objs)), flagging,  # type: ignore[arg-type]
                   SourceReport("t"), collection_id=collection, source="t")
        return flagging.record()

    assert list(ingest(objects)) == [objects[0]["id"]]
    assert ingest(objects) == {}  # nothing new: nothing checked
    assert ingest([indicator(3, pattern="[ipv4-addr:value = '8.8.8.8']")]) == {}
    assert list(warninglist_hits(store)) == [objects[0]["id"]]  # earlier hits are kept


def test_cli_kb_load_and_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "node"
    assert run_cli(capsys, home, "init").code == 0
    run = run_cli(capsys, home, "kb", "load", "misp-galaxy",
                  str(corpus_path("misp", "galaxy", "clusters", "microsoft-activity-group.json")), "--json")
    assert run.code == 0, run.err
    assert run.json()["new"] > 100 and run.json()["actors"] > 100
    run = run_cli(capsys, home, "kb", "aliases", "fancy bear", "--json")
    # Microsoft's galaxy holds the old (STRONTIUM) and new (Forest Blizzard) name as two clusters: one actor
    assert run.code == 0 and {"Forest Blizzard", "STRONTIUM"} <= set(run.json()["aliases"])
    assert "misp-galaxy:microsoft-activity-group" in run.json()["aliases"]["Sofacy"]
    run = run_cli(capsys, home, "kb", "aliases", "Fancy Bear")
    assert run.code == 0 and "Forest Blizzard" in run.out and "STRONTIUM" in run.out
    assert run_cli(capsys, home, "kb", "aliases", "no such actor").code == 1
    bundle = write_bundle(tmp_path / "b.json", [indicator(3, pattern="[ipv4-addr:value = '10.0.0.1']")])
    run = run_cli(capsys, home, "ingest", str(bundle), "--json")
    assert run.code == 0 and list(run.json()["warninglisted"]) == [indicator(3)["id"]]
    run = run_cli(capsys, home, "kb", "load", "kev", str(tmp_path / "missing.json"))
    assert run.code == 1 and "missing.json" in run.err
