"""How the SQLite analytics tables spell versions and facts as rows (sqlite_facts.py, sqlite_views.py).

Multi-valued fields of a fact are joined with U+001F, which no breakdown value
holds; a fact row is (pk, id, kind, day, name, actor, sponsor, victim_country,
sector, type, tlp, source, confidence, reach, stamp), the columns of
analytics_facts, and the same list serialised is what a kept view holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import orjson

from threatmesh.analytics.facts import Fact
from threatmesh.store.protocol import StoredVersion

SEP = "\x1f"
CHUNK = 400

VERSION_COLUMNS = (
    "o.pk, o.id, o.type, o.version, o.spec_version, o.json, o.date_added, o.tlp, o.source,"
    " o.revoked, o.upgraded_from, o.is_latest"
)
FACT_COLUMNS = ("pk, id, kind, day, name, actor, sponsor, victim_country, sector, type, tlp, source, confidence,"
                " reach, stamp")


def version_of(row: Sequence[Any]) -> tuple[int, StoredVersion]:
    return row[0], StoredVersion(
        id=row[1], type=row[2], version=row[3], spec_version=row[4], json=bytes(row[5]), date_added=row[6],
        tlp=row[7], source=row[8], revoked=bool(row[9]), upgraded_from=row[10], is_latest=bool(row[11]),
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(SEP)) if text else ()


def fact_row(pk: int, fact: Fact, reach: int = -1, stamp: int = 0) -> tuple[Any, ...]:
    return (pk, fact.id, fact.kind, fact.day.isoformat() if fact.day else None, fact.name, SEP.join(fact.actor),
            SEP.join(fact.sponsor), SEP.join(fact.victim_country), SEP.join(fact.sector), SEP.join(fact.type),
            SEP.join(fact.tlp), SEP.join(fact.source), fact.confidence, reach, stamp)


def row_fact(row: Sequence[Any]) -> Fact:
    return Fact(id=row[1], kind=row[2], name=row[4], day=date.fromisoformat(row[3]) if row[3] else None,
                actor=_split(row[5]), sponsor=_split(row[6]), victim_country=_split(row[7]), sector=_split(row[8]),
                type=_split(row[9]), tlp=_split(row[10]), source=_split(row[11]), confidence=row[12])


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def json_list(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()
