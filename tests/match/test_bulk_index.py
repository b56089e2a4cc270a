"""The bulk-loaded index (store.sqlite_match + match.bulk) answers like the index built from each indicator's JSON."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from threatmesh.match.bulk import index_from_rows
from threatmesh.match.columnar import _TAILS, prefilter
from threatmesh.match.hashed import HashedKeys
from threatmesh.match.index import NO_END, IndicatorIndex, build_index, load_index, load_pattern_compiler
from threatmesh.match.keys import GROUP_DOMAIN, GROUP_EMAIL, GROUP_HASH, GROUP_IP, GROUP_URL
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Collection
from threatmesh.store.sqlite import SQLiteStore


def _ind(n: int, pattern: str, modified: str = "2020-01-01T00:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
            "created": "2020-01-01T00:00:00.000Z", "modified": modified, "name": f"ioc {n}",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z", **extra}


PATTERNS = [
    "[ipv4-addr:value = '198.51.100.7']",
    "[ipv4-addr:value = '203.0.113.0/24']",
    "[ipv4-addr:value = '10.1.2.3/8']",  # host bits set: the range is 10.0.0.0/8
    "[ipv4-addr:value = '192.0.2.1/32']",
    "[ipv6-addr:value = '2001:DB8::1']",
    "[ipv6-addr:value = '2001:db8:aa::/48']",
    "[domain-name:value = 'Evil.Example']",
    "[domain-name:value = 'deep.evil.example']",
    "[domain-name:value = 'b\u00fccher.example']",  # IDNA: kept as the normaliser spells it
    "[url:value = 'HTTP://Bad.Example:80/a%7eb?x=1']",
    "[url:value = 'http://bad.example/other']",
    "[file:hashes.MD5 = '" + "AB" * 16 + "']",
    "[file:hashes.'SHA-256' = '" + "cd" * 32 + "']",
    "[file:hashes.SHA256 = '" + "ef" * 32 + "']",
    "[email-addr:value = 'Phish@Evil.Example']",
    "[ipv4-addr:value = '198.51.100.8' OR domain-name:value = 'or.example']",
    "[ipv4-addr:value = '198.51.100.7']",  # a second indicator on the same key
    "[network-traffic:dst_port = 4444]",  # evaluated, not indexed
    "[domain-name:value LIKE '%.like.example']",
    "[mac-addr:value = '00:11:22:33:44:55']",  # an equality on a kind the matcher does not index
    "[file:name = 'x.exe']",
]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "store.db")
    store.add_collection(Collection(id="c1", title="c1"))
    objects = [_ind(i, p) for i, p in enumerate(PATTERNS)]
    objects += [
        _ind(100, "[ipv4-addr:value = '198.51.100.99']", revoked=True),
        _ind(101, "[domain-name:value = 'flagged.example']", x_threatmesh_warninglists=["top sites"]),
        _ind(102, "[domain-name:value = 'valid.example']", valid_until="2021-06-01T12:00:00.5Z"),
        {**_ind(103, "[ipv4-addr:value = '198.51.100.50']"), "pattern_type": "sigma"},
        _ind(104, "[domain-name:value = 'old-version.example']"),
    ]
    store.put_objects([parse_object(o) for o in objects], collection_id="c1", source="test")
    # A new version changes the key and another revokes: only the latest versions may count.
    store.put_objects([
        parse_object(_ind(104, "[domain-name:value = 'new-version.example']", modified="2021-01-01T00:00:00.000Z")),
        parse_object(_ind(0, "[ipv4-addr:value = '198.51.100.7']", modified="2021-01-01T00:00:00.000Z",
                          revoked=True)),
    ], collection_id="c1", source="test")
    return store


def _reference(store: SQLiteStore) -> IndicatorIndex:
    latest = [orjson.loads(v.json) for v in store.iter_objects() if v.type == "indicator" and not v.revoked]
    return build_index(latest, compiler=load_pattern_compiler())


def _by_id(index: IndicatorIndex, group: str, key: str) -> set[str]:
    return {index.indicators[slot].id for slot in index.lookup(group, key)}


def test_bulk_index_answers_like_the_json_index(store: SQLiteStore) -> None:
    bulk = load_index(store)
    reference = _reference(store)
    assert bulk.hashed and not bulk.exact  # the bulk path was taken
    def bare(index: IndicatorIndex) -> list[tuple[str, int, int]]:
        return sorted((i.id, i.valid_from, i.valid_until) for i in index.indicators)

    assert bare(bulk) == bare(reference)
    # Names are read from the store when asked (reports), not with the keys.
    names = bulk.indicators.names_of([i.id for i in reference.indicators])  # type: ignore[attr-defined]
    assert names == {i.id: i.name for i in reference.indicators} and names[reference.indicators[0].id]
    assert len(bulk) == len(reference) == 21
    assert sorted(s.id for s in bulk.skipped) == sorted(s.id for s in reference.skipped)
    assert bulk.warninglisted == 1
    evaluated = {bulk.indicators[slot].id for slot, _ in bulk.evaluated}
    assert evaluated == {reference.indicators[slot].id for slot, _ in reference.evaluated} and len(evaluated) == 3
    probes = [(GROUP_IP, "198.51.100.7"), (GROUP_IP, "203.0.113.77"), (GROUP_IP, "10.200.0.1"),
              (GROUP_IP, "192.0.2.1"), (GROUP_IP, "2001:db8::1"), (GROUP_IP, "2001:db8:aa::5"),
              (GROUP_IP, "198.51.100.8"), (GROUP_IP, "198.51.100.99"), (GROUP_DOMAIN, "a.b.evil.example"),
              (GROUP_DOMAIN, "xn--bcher-kva.example"), (GROUP_DOMAIN, "or.example"),
              (GROUP_DOMAIN, "new-version.example"), (GROUP_DOMAIN, "old-version.example"),
              (GROUP_DOMAIN, "flagged.example"), (GROUP_URL, "http://bad.example/a~b?x=1"),
              (GROUP_URL, "http://bad.example/other"), (GROUP_HASH, "ab" * 16), (GROUP_HASH, "cd" * 32),
              (GROUP_HASH, "ef" * 32), (GROUP_EMAIL, "phish@evil.example")]
    for group, key in probes:
        assert _by_id(bulk, group, key) == _by_id(reference, group, key), (group, key)
    assert _by_id(bulk, GROUP_IP, "198.51.100.7") == {"indicator--00000016-0000-4000-8000-000000000000"}
    assert _by_id(bulk, GROUP_DOMAIN, "old-version.example") == set()
    assert _by_id(bulk, GROUP_DOMAIN, "flagged.example") == set()
    assert len(_by_id(bulk, GROUP_DOMAIN, "a.deep.evil.example")) == 2
    until = next(i for i in bulk.indicators if i.id.startswith("indicator--00000102"))
    assert until.valid_until == 1622548800_500000


def test_warninglisted_ones_come_back_when_asked(store: SQLiteStore) -> None:
    assert _by_id(load_index(store, include_warninglisted=True), GROUP_DOMAIN, "flagged.example") == {
        "indicator--00000101-0000-4000-8000-000000000000"}


def test_match_keys_follow_the_objects_table(store: SQLiteStore) -> None:
    rows = store.indicator_key_rows()
    ids = rows.texts("id")
    assert len(ids) == rows.count == 23  # latest, not revoked, stix: 0..20 and 100..104, less 0, 100 and 103
    assert rows.other_types == [("indicator--00000103-0000-4000-8000-000000000000", "sigma")]
    valid_until = dict(zip(ids, rows.ints("valid_until")))
    assert valid_until["indicator--00000102-0000-4000-8000-000000000000"] == 1622548800_500000
    assert valid_until["indicator--00000101-0000-4000-8000-000000000000"] == -2  # none
    assert "indicator--00000100-0000-4000-8000-000000000000" not in ids
    assert ids.count("indicator--00000104-0000-4000-8000-000000000000") == 1
    flagged = dict(zip(ids, rows.ints("flagged")))
    assert flagged["indicator--00000101-0000-4000-8000-000000000000"] == 1
    assert sum(flagged.values()) == 1
    patterns = dict(zip(ids, rows.texts("pattern")))
    assert patterns["indicator--00000104-0000-4000-8000-000000000000"] == "[domain-name:value = 'new-version.example']"


def test_times_sqlite_does_not_read_come_back_as_text(store: SQLiteStore, tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "store.db")
    conn.execute("UPDATE match_keys SET valid_from = '2020-01-01 00:00:00' WHERE id = ?",
                 ("indicator--00000001-0000-4000-8000-000000000000",))
    conn.commit()
    conn.close()
    rows = store.indicator_key_rows()
    pk = dict(zip(rows.texts("id"), rows.ints("pk")))["indicator--00000001-0000-4000-8000-000000000000"]
    assert rows.odd_times == {pk: ("2020-01-01 00:00:00", None)}
    assert dict(zip(rows.ints("pk"), rows.ints("valid_from")))[pk] == -1
    from threatmesh.stix.timestamps import timestamp_to_micros

    try:
        timestamp_to_micros("2020-01-01 00:00:00")
        readable = True
    except ValueError:
        readable = False
    index = load_index(store)  # the reader judges the text, as build_index would
    skipped = {s.id: s.reason for s in index.skipped}
    assert ("indicator--00000001-0000-4000-8000-000000000000" in skipped) is not readable


def test_a_store_from_before_the_migration_is_backfilled(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    first = SQLiteStore(path)
    first.add_collection(Collection(id="c1", title="c1"))
    first.put_objects([parse_object(_ind(1, "[domain-name:value = 'before.example']"))],
                      collection_id="c1", source="test")
    first.close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER match_keys_rewrite; DROP TRIGGER match_keys_latest;"
                       " DROP TRIGGER match_keys_delete; DROP TABLE match_keys;"
                       " DELETE FROM migrations WHERE name IN ('0006_match_keys', '0008_match_keys_by_writer');")
    conn.close()
    store = SQLiteStore(path)  # applies 0006 again, which fills the table from `objects`
    assert _by_id(load_index(store), GROUP_DOMAIN, "x.before.example") == {
        "indicator--00000001-0000-4000-8000-000000000000"}


def test_a_bad_validity_time_skips_that_indicator_only() -> None:
    class Run:
        kind, count, pk, value = "ipv4-addr", 3, "1,2,3", "198.51.100.1\x00198.51.100.2\x00198.51.100.3"

    class Rows:
        count = 3
        pk = "1,2,3"
        id = "indicator--a\x00indicator--b\x00indicator--c"
        valid_from = "1577836800000000,-1,-1"
        valid_until = "-2,-2,-2"
        pattern = "\x00".join(f"[ipv4-addr:value = '198.51.100.{i}']" for i in (1, 2, 3))
        flagged = "0,0,0"
        observables = [Run()]
        odd_times = {2: ("yesterday", None), 3: ("2020-01-01T01:00:00.25Z", None)}  # 3: read here as well
        other_types: list[tuple[str, str | None]] = []

    index = index_from_rows(Rows())
    assert [i.id for i in index.skipped] == ["indicator--b"] and "bad validity time" in index.skipped[0].reason
    assert [(i.id, i.valid_from, i.valid_until) for i in index.indicators] == [
        ("indicator--a", 1577836800000000, NO_END), ("indicator--c", 1577840400250000, NO_END)]


def test_hashed_keys_are_exact_and_their_prefilter_misses_nothing() -> None:
    rng = random.Random(6)
    keys = [f"k{rng.getrandbits(40):x}.example" for _ in range(5000)]
    table = HashedKeys(keys, np.arange(len(keys), dtype=np.uint32))
    probe = keys[::7] + [f"absent{i}" for i in range(5000)]
    found = set(table.candidates(pl.Series(probe, dtype=pl.String)).tolist())
    assert {i for i, k in enumerate(probe) if not k.startswith("absent")} <= found
    assert len(found) < len(keys[::7]) + 50  # absent values are turned away (a rare hash collision aside)
    assert table.get(keys[10]) == (10,) and table.get("absent") == ()
    table.prefetch(keys[:100] + ["absent"])
    assert table.get(keys[99]) == (99,) and table.get("absent") == ()
    assert table.as_dict()[keys[3]] == (3,)


def test_name_prefilter_passes_every_name_under_an_indicator(store: SQLiteStore) -> None:
    index = load_index(store)
    pre = prefilter(index).result()
    assert set(pre.tails) <= set(_TAILS)
    names = pl.Series(["a.deep.evil.example", "evil.example", "x.or.example", "new-version.example",
                       "unrelated.example", "example"], dtype=pl.String)
    passed: set[int] = set()
    for n, tails in pre.tails.items():
        passed.update(tails.candidates(names.str.tail(n)).tolist())
    assert {0, 1, 2, 3} <= passed and 4 not in passed
