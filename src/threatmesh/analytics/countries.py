"""Countries as ISO 3166-1 alpha-2 codes, and named groups of them (NATO, EU, Five Eyes).

Threat data names countries every way there is: 'RU', 'RUS', 'Russian
Federation', 'Russia', 'ru'. Analytics counts by one key per country, the
alpha-2 code, so every spelling is folded here, through pycountry (the ISO
tables) plus the short names that intelligence sources use and ISO does not.

The groups are built in and editable: a node may keep a `country-groups.json`
in its home ({"NATO": ["US", ...], "MY-ALLIES": [...]}) that adds groups or
replaces built-in ones, since membership changes (Finland joined NATO in 2023,
Sweden in 2024) and organisations have their own lists.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import pycountry

# Short names that sources use and ISO does not list (ISO says 'Korea, Democratic
# People's Republic of'). CFR's tracker writes 'Korea' for the DPRK sponsor: every
# operation it attributes to 'Korea' is North Korean.
_EXTRA_NAMES: dict[str, str] = {
    "russia": "RU",
    "north korea": "KP",
    "korea": "KP",
    "dprk": "KP",
    "south korea": "KR",
    "iran": "IR",
    "syria": "SY",
    "vietnam": "VN",
    "taiwan": "TW",
    "palestine": "PS",
    "uk": "GB",
    "britain": "GB",
    "great britain": "GB",
    "usa": "US",
    "united states of america": "US",
    "turkey": "TR",
    "laos": "LA",
    "moldova": "MD",
    "venezuela": "VE",
    "bolivia": "BO",
    "tanzania": "TZ",
    "czech republic": "CZ",
    "kosovo": "XK",  # user-assigned code, widely used (EU, World Bank)
}

# Membership as of 2024 (NATO: 32 members with Sweden, March 2024; EU: 27 after Brexit).
BUILTIN_GROUPS: dict[str, frozenset[str]] = {
    "NATO": frozenset(
        "AL BE BG CA HR CZ DK EE FI FR DE GR HU IS IT LV LT LU ME NL MK NO PL PT RO SK SI ES SE TR GB US".split()
    ),
    "EU": frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()),
    "FIVE-EYES": frozenset("AU CA NZ GB US".split()),
}
GROUPS_FILE = "country-groups.json"


def _fold(name: str) -> str:
    return " ".join(name.replace("_", " ").strip().lower().split())


@lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """The alpha-2 code of a country named any usual way; None when it is not a country."""
    folded = _fold(name)
    if not folded:
        return None
    if folded in _EXTRA_NAMES:
        return _EXTRA_NAMES[folded]
    if len(folded) == 2 and folded.isalpha():
        found = pycountry.countries.get(alpha_2=folded.upper())
        return found.alpha_2 if found else (folded.upper() if folded == "xk" else None)
    try:
        return str(pycountry.countries.lookup(folded).alpha_2)
    except LookupError:
        return None


@lru_cache(maxsize=1024)
def country_name(code: str) -> str:
    """A readable name for an alpha-2 code (the common name where ISO's is long)."""
    if code == "XK":
        return "Kosovo"
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    return str(getattr(found, "common_name", None) or found.name)


def load_groups(home: Path | None = None) -> dict[str, frozenset[str]]:
    """The built-in groups, updated from the node's `country-groups.json` when there is one."""
    groups = dict(BUILTIN_GROUPS)
    if home is not None and (home / GROUPS_FILE).exists():
        groups.update(parse_groups(json.loads((home / GROUPS_FILE).read_text("utf-8"))))
    return groups


def parse_groups(data: Mapping[str, object]) -> dict[str, frozenset[str]]:
    """Groups from {"NAME": ["US", "United Kingdom", ...]}; ValueError names what is wrong."""
    parsed: dict[str, frozenset[str]] = {}
    for name, members in data.items():
        if not isinstance(members, list):
            raise ValueError(f"country group {name!r}: expected a list of countries")
        codes = set()
        for member in members:
            code = country_code(str(member))
            if code is None:
                raise ValueError(f"country group {name!r}: {member!r} is not a country")
            codes.add(code)
        parsed[name.upper()] = frozenset(codes)
    return parsed


def expand_countries(spec: str, groups: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """'NATO', 'RU', 'US,GB', 'EU,NO' -> alpha-2 codes; ValueError for an unknown name."""
    codes: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.upper() in groups:
            codes |= groups[part.upper()]
            continue
        code = country_code(part)
        if code is None:
            raise ValueError(f"{part!r} is neither a country nor a group ({', '.join(sorted(groups))})")
        codes.add(code)
    return frozenset(codes)
