"""Country and sector vocabularies, from MISP's `country` and `sector` galaxy clusters.

Countries: ISO 3166-1 alpha-2 code <-> name (plus ISO3, continent, capital),
so the CLI and analytics can turn 'Russian Federation', 'Iran (Islamic
Republic of)' or 'ru' into 'RU' and back. Sectors: the CERT-EU activity
sectors with their synonyms ('Healthcare' -> 'Health').

`country_code` works without a loaded vocabulary (pycountry plus the
demonyms of the incident importer); a loaded one adds the galaxy's spellings.
Loaded vocabularies live in the store's metadata (`kb.vocab.countries`,
`kb.vocab.sectors`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from threatmesh.errors import InputError
from threatmesh.store.protocol import Store

META_COUNTRIES = "kb.vocab.countries"
META_SECTORS = "kb.vocab.sectors"


def name_key(text: str) -> str:
    """Case-, accent-free and punctuation-insensitive key: 'Fancy-Bear' == 'fancy bear' == 'FANCYBEAR'."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


def sector_slug(text: str) -> str:
    """The sector form the incident importer writes: lower-case, dashed ('Private sector' -> 'private-sector')."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    name: str
    iso3: str = ""
    continent: str = ""
    capital: str = ""


@dataclass
class CountryVocab:
    countries: dict[str, Country] = field(default_factory=dict)  # code -> country
    names: dict[str, str] = field(default_factory=dict)  # name_key -> code

    def add(self, country: Country, *spellings: str) -> None:
        self.countries[country.code] = country
        for spelling in (country.name, country.code, country.iso3, *spellings):
            if spelling:
                self.names.setdefault(name_key(spelling), country.code)

    def code(self, text: str) -> str | None:
        """ISO alpha-2 of a name, ISO2 or ISO3 code; None when unknown."""
        return self.names.get(name_key(text)) if text else None

    def name(self, code: str) -> str | None:
        country = self.countries.get(code.upper())
        return country.name if country else None

    def as_json(self) -> bytes:
        return orjson.dumps({"countries": [vars_of(c) for c in self.countries.values()], "names": self.names})

    @classmethod
    def from_json(cls, raw: str | bytes) -> CountryVocab:
        data = orjson.loads(raw)
        return cls({c["code"]: Country(**c) for c in data["countries"]}, dict(data["names"]))


@dataclass(frozen=True, slots=True)
class Sector:
    name: str
    synonyms: tuple[str, ...] = ()
    nace_code: str = ""

    @property
    def slug(self) -> str:
        return sector_slug(self.name)


@dataclass
class SectorVocab:
    sectors: dict[str, Sector] = field(default_factory=dict)  # slug -> sector
    names: dict[str, str] = field(default_factory=dict)  # name_key -> slug

    def add(self, sector: Sector) -> None:
        self.sectors[sector.slug] = sector
        for spelling in (sector.name, *sector.synonyms, *re.split(r"\s*[,/]\s*|\s+-\s+", sector.name)):
            if spelling:
                self.names.setdefault(name_key(spelling), sector.slug)

    def canonical(self, text: str) -> str | None:
        """The vocabulary's sector (its slug) for a name or synonym: 'Healthcare' -> 'health'."""
        return self.names.get(name_key(text)) if text else None

    def as_json(self) -> bytes:
        return orjson.dumps({"sectors": [{"name": s.name, "synonyms": list(s.synonyms), "nace_code": s.nace_code}
                                         for s in self.sectors.values()]})

    @classmethod
    def from_json(cls, raw: str | bytes) -> SectorVocab:
        vocab = cls()
        for s in orjson.loads(raw)["sectors"]:
            vocab.add(Sector(s["name"], tuple(s["synonyms"]), s["nace_code"]))
        return vocab


def vars_of(country: Country) -> dict[str, str]:
    return {"code": country.code, "name": country.name, "iso3": country.iso3, "continent": country.continent,
            "capital": country.capital}


def _values(data: Any, source: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping) or not isinstance(data.get("values"), list):
        raise InputError("not a MISP galaxy cluster file (no `values` list)", source=source)
    return [v for v in data["values"] if isinstance(v, Mapping)]


def country_vocab_from_galaxy(data: Any, source: str) -> CountryVocab:
    """MISP `country.json` (geonames): value = lower-case name, meta ISO / ISO3 / Capital / Continent."""
    vocab = CountryVocab()
    for value in _values(data, source):
        meta: Mapping[str, Any] = value["meta"] if isinstance(value.get("meta"), Mapping) else {}
        code = str(meta.get("ISO", "")).upper()
        if len(code) != 2:
            continue
        label = str(value.get("description") or value.get("value") or code)
        vocab.add(Country(code, label, str(meta.get("ISO3", "")), str(meta.get("Continent", "")),
                          str(meta.get("Capital", ""))), str(value.get("value", "")))
    return vocab


def sector_vocab_from_galaxy(data: Any, source: str) -> SectorVocab:
    vocab = SectorVocab()
    for value in _values(data, source):
        name = value.get("value")
        if not isinstance(name, str) or not name:
            continue
        meta: Mapping[str, Any] = value["meta"] if isinstance(value.get("meta"), Mapping) else {}
        synonyms = tuple(s for s in meta.get("synonyms") or [] if isinstance(s, str))
        vocab.add(Sector(name, synonyms, str(meta.get("NACE_CODE", ""))))
    return vocab


def read_galaxy_file(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", source=str(path)) from exc


def save_vocab(store: Store, countries: CountryVocab | None, sectors: SectorVocab | None) -> None:
    if countries is not None:
        store.set_meta(META_COUNTRIES, countries.as_json().decode())
    if sectors is not None:
        store.set_meta(META_SECTORS, sectors.as_json().decode())


def load_country_vocab(store: Store) -> CountryVocab | None:
    raw = store.get_meta(META_COUNTRIES)
    return CountryVocab.from_json(raw) if raw else None


def load_sector_vocab(store: Store) -> SectorVocab | None:
    raw = store.get_meta(META_SECTORS)
    return SectorVocab.from_json(raw) if raw else None


_PARENTHESISED = re.compile(r"^(?P<head>[^()]+?)\s*\((?P<tail>[^()]+)\)$")


def country_code(text: str, vocab: CountryVocab | None = None) -> str | None:
    """ISO alpha-2 of a country as datasets spell it; None for 'Unknown', organisations and blanks.

    'Iran (Islamic Republic of)' is ISO's 'Iran, Islamic Republic of'; 'US', 'ru' and
    'RUS' are codes; demonyms and short forms come from the incident importer's table.
    """
    from threatmesh.ingest.incidents import country_code as incidents_country_code

    text = " ".join(str(text).split())
    if not text or name_key(text) in ("unknown", "none", "other"):
        return None
    candidates = [text]
    match = _PARENTHESISED.match(text)
    if match:
        candidates.append(f"{match['head']}, {match['tail']}")
    for candidate in candidates:
        if vocab is not None:
            code = vocab.code(candidate)
            if code:
                return code
        if len(candidate) == 2 and candidate.isalpha():
            import pycountry

            found = pycountry.countries.get(alpha_2=candidate.upper())
            if found is not None:
                return str(found.alpha_2)
        code = incidents_country_code(candidate)
        if code:
            return code
    return None


def countries_of(values: Iterable[str], vocab: CountryVocab | None = None) -> tuple[list[str], list[str]]:
    """Split names into (ISO codes, the names that are not countries), both without repeats, in order."""
    codes: list[str] = []
    others: list[str] = []
    for value in values:
        code = country_code(value, vocab)
        if code and code not in codes:
            codes.append(code)
        elif not code and value.strip() and value.strip() not in others:
            others.append(value.strip())
    return codes, others
