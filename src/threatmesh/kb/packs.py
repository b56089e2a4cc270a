"""Loading knowledge packs (ATT&CK, MISP galaxies, CISA KEV) into the node's `kb` collection.

Each loader goes through the ingest pipeline (validation, batching, one report
per file with every rejected record and its location), then refreshes the
actor alias index (`threatmesh.kb.aliases`). The `kb` collection is created on
first use.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from threatmesh.errors import InputError, NotFound
from threatmesh.ingest.pipeline import IngestReport, Progress, SourceReport, ingest_paths, ingest_raw
from threatmesh.kb.aliases import AliasIndex, refresh_alias_index
from threatmesh.kb.galaxy import ACTOR_GALAXIES, galaxy_files, galaxy_type, read_actor_galaxy
from threatmesh.kb.kev import read_kev
from threatmesh.kb.vocab import (CountryVocab, SectorVocab, country_vocab_from_galaxy, read_galaxy_file,
                                 save_vocab, sector_vocab_from_galaxy)
from threatmesh.store.protocol import Collection, Store

KB_ALIAS = "kb"


def kb_collection(store: Store) -> Collection:
    """The node's knowledge-base collection, created on first use."""
    try:
        return store.get_collection(KB_ALIAS)
    except NotFound:
        return store.add_collection(Collection(
            id=str(uuid.uuid4()), title="Knowledge base", alias=KB_ALIAS,
            description="Reference knowledge: ATT&CK, MISP galaxies (actors, sponsors, sectors), CISA KEV."))


@dataclass
class PackResult:
    pack: str
    report: IngestReport
    actors: int = 0  # resolved actors in the alias index after the load
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"pack": self.pack, **self.report.as_dict(), "actors": self.actors, **self.extra}


def _finish(store: Store, pack: str, report: IngestReport, started: float, **extra: object) -> PackResult:
    index: AliasIndex = refresh_alias_index(store)
    report.seconds = time.perf_counter() - started
    return PackResult(pack, report, len(index.actors), dict(extra))


def load_attack(store: Store, path: Path, *, progress: Progress | None = None,
                on_source: Callable[[str], None] | None = None) -> PackResult:
    """An ATT&CK STIX bundle (2.0 or 2.1) into `kb`, as any STIX bundle is ingested."""
    started = time.perf_counter()
    if not path.exists():
        raise InputError("no such file or directory", source=str(path))
    report = ingest_paths([str(path)], store, collection_id=kb_collection(store).id, progress=progress,
                          on_source=on_source)
    return _finish(store, "attack", report, started)


def load_galaxy(store: Store, path: Path, *, progress: Progress | None = None,
                on_source: Callable[[str], None] | None = None) -> PackResult:
    """A MISP galaxy `clusters/` folder (or one cluster file): actor galaxies and the country/sector vocabularies.

    Galaxies of other kinds (malware, tools, ...) are listed as skipped.
    """
    started = time.perf_counter()
    collection = kb_collection(store).id
    report = IngestReport()
    loaded: list[tuple[Path, dict[str, object]]] = []
    for file in galaxy_files(path):
        try:
            data = read_galaxy_file(file)
        except InputError as exc:
            report.sources.append(SourceReport(str(file), error=exc.describe()))
            continue
        if not isinstance(data, dict):
            report.sources.append(SourceReport(str(file), error=f"{file}: not a MISP galaxy cluster file"))
            continue
        loaded.append((file, data))
    countries: CountryVocab | None = None
    sectors: SectorVocab | None = None
    skipped: list[str] = []
    for file, data in loaded:  # vocabularies first: the actors' countries are read with them
        kind = galaxy_type(data)
        try:
            if kind == "country":
                countries = country_vocab_from_galaxy(data, str(file))
            elif kind == "sector":
                sectors = sector_vocab_from_galaxy(data, str(file))
        except InputError as exc:
            report.sources.append(SourceReport(str(file), error=exc.describe()))
    save_vocab(store, countries, sectors)
    for file, data in loaded:
        kind = galaxy_type(data)
        if kind not in ACTOR_GALAXIES:
            if kind not in ("country", "sector"):
                skipped.append(f"{file.name} ({kind or 'no type'})")
            continue
        if on_source:
            on_source(str(file))
        source = SourceReport(str(file))
        report.sources.append(source)
        ingest_raw(read_actor_galaxy(file, data, countries), store, source, collection_id=collection,
                   source=f"file:{file}", progress=progress)
    return _finish(store, "misp-galaxy", report, started,
                   countries=len(countries.countries) if countries else 0,
                   sectors=len(sectors.sectors) if sectors else 0, skipped_galaxies=skipped)


def load_kev(store: Store, path: Path, *, progress: Progress | None = None,
             on_source: Callable[[str], None] | None = None) -> PackResult:
    """The CISA KEV JSON catalog into `kb` (a folder: its known_exploited_vulnerabilities.json)."""
    started = time.perf_counter()
    file = path / "known_exploited_vulnerabilities.json" if path.is_dir() else path
    if not file.exists():
        raise InputError("no such file (expected the KEV JSON catalog)", source=str(file))
    if on_source:
        on_source(str(file))
    report = IngestReport()
    source = SourceReport(str(file))
    report.sources.append(source)
    ingest_raw(read_kev(file), store, source, collection_id=kb_collection(store).id, source=f"file:{file}",
               progress=progress)
    ransomware = 0
    if not source.error:
        ransomware = sum(1 for e in orjson.loads(file.read_bytes()).get("vulnerabilities", [])
                         if isinstance(e, dict) and e.get("knownRansomwareCampaignUse") == "Known")
    report.seconds = time.perf_counter() - started
    return PackResult("kev", report, extra={"known_ransomware_use": ransomware})
