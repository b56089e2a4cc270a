"""The Store contract: every backend in conftest.BACKENDS must pass all of it."""

from __future__ import annotations

import itertools
from typing import Any, Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threatmesh.errors import Conflict, NotFound, StoreError
from threatmesh.stix.model import StixObject
from threatmesh.store.protocol import (
    Account,
    Collection,
    ObjectQuery,
    PutOutcome,
    Store,
    StoredVersion,
)

Make = Callable[..., StixObject]

NEW, UPDATED, OLDER, UNCHANGED = (
    PutOutcome.NEW,
    PutOutcome.UPDATED,
    PutOutcome.OLDER,
    PutOutcome.UNCHANGED,
)


def ts(n: int) -> str:
    return f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z"


def ind(n: int) -> str:
    return f"indicator--00000000-0000-4000-8000-{n:012d}"


def mal(n: int) -> str:
    return f"malware--00000000-0000-4000-8000-{n:012d}"


def dom(n: int) -> str:
    return f"domain-name--00000000-0000-4000-8000-{n:012d}"


def outcomes(results: list[Any]) -> list[PutOutcome]:
    return [r.outcome for r in results]


def keys(items: Any) -> list[tuple[str, str]]:
    return [(v.id, v.version) for v in items]


def all_in(store: Store, collection_id: str) -> list[StoredVersion]:
    return list(store.query(ObjectQuery(collection_id, versions=("all",))).items)


# -- put outcomes ---------------------------------------------------------------


def test_new_updated_older_unchanged(store: Store, c1: str, make: Make) -> None:
    r = store.put_objects([make(ind(1), ts(5))], collection_id=c1, source="test")
    assert outcomes(r) == [NEW]
    assert (r[0].id, r[0].version, r[0].content_differs) == (ind(1), ts(5), False)
    r = store.put_objects(
        [make(ind(1), ts(7)), make(ind(1), ts(3)), make(ind(1), ts(5)), make(ind(1), ts(7))],
        collection_id=c1,
        source="test",
    )
    assert outcomes(r) == [UPDATED, OLDER, UNCHANGED, UNCHANGED]
    assert [v.version for v in store.get_versions(ind(1))] == [ts(3), ts(5), ts(7)]


def test_results_follow_input_order_and_empty_batch(store: Store, c1: str, make: Make) -> None:
    assert store.put_objects([], collection_id=c1, source="test") == []
    batch = [make(ind(n), ts(n)) for n in (3, 1, 2)]
    r = store.put_objects(batch, collection_id=c1, source="test")
    assert [x.id for x in r] == [ind(3), ind(1), ind(2)]


def test_same_version_different_content_keeps_first(store: Store, c1: str, make: Make) -> None:
    first = make(ind(1), ts(1), data={"name": "first"})
    second = make(ind(1), ts(1), data={"name": "second"})
    store.put_objects([first], collection_id=c1, source="a")
    (r,) = store.put_objects([second], collection_id=c1, source="b")
    assert (r.outcome, r.content_differs) == (UNCHANGED, True)
    (stored,) = store.get_versions(ind(1))
    assert orjson.loads(stored.json)["name"] == "first"
    assert stored.source == "a"
    # Same content: no difference reported, even with keys in another order.
    reordered = make(ind(1), ts(1), data={"name": "first"})
    body = dict(reversed(list(reordered.data.items())))
    reordered = StixObject(**{**_fields(reordered), "json": orjson.dumps(body), "data": body})
    (r,) = store.put_objects([reordered], collection_id=c1, source="c")
    assert (r.outcome, r.content_differs) == (UNCHANGED, False)


def _fields(obj: StixObject) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_same_version_twice_in_one_batch(store: Store, c1: str, make: Make) -> None:
    r = store.put_objects(
        [make(ind(1), ts(1), data={"name": "a"}), make(ind(1), ts(1), data={"name": "b"})],
        collection_id=c1,
        source="test",
    )
    assert [(x.outcome, x.content_differs) for x in r] == [(NEW, False), (UNCHANGED, True)]
    assert orjson.loads(store.get_versions(ind(1))[0].json)["name"] == "a"


def test_unversioned_sco_is_replaced_in_place(store: Store, c1: str, make: Make) -> None:
    d1 = make(dom(1), data={"value": "evil.example"}, observables=(("domain-name", "evil.example"),))
    d2 = make(dom(1), data={"value": "evil.example", "x_seen": 2}, observables=(("domain-name", "evil.example"),))
    assert outcomes(store.put_objects([d1], collection_id=c1, source="a")) == [NEW]
    assert outcomes(store.put_objects([d1], collection_id=c1, source="a")) == [UNCHANGED]
    before = all_in(store, c1)[0].date_added
    assert outcomes(store.put_objects([d2], collection_id=c1, source="b")) == [UPDATED]
    (only,) = store.get_versions(dom(1))
    assert only.version == ""
    assert orjson.loads(only.json)["x_seen"] == 2
    assert only.is_latest
    assert store.stats().versions == 1
    # Pollers of the collection see the new content after what they last saw.
    assert all_in(store, c1)[0].date_added > before
    assert keys(store.find_observable("domain-name", "evil.example")) == [(dom(1), "")]


def test_unversioned_sco_changed_twice_in_one_batch(store: Store, c1: str, make: Make) -> None:
    r = store.put_objects(
        [make(dom(1), data={"value": "a.example"}), make(dom(1), data={"value": "b.example"})],
        collection_id=c1,
        source="test",
    )
    assert outcomes(r) == [NEW, UPDATED]
    assert orjson.loads(store.get_versions(dom(1))[0].json)["value"] == "b.example"
    assert store.check_integrity() == []


def test_latest_tracking(store: Store, c1: str, make: Make) -> None:
    assert store.get_latest(ind(1)) is None
    store.put_objects([make(ind(1), ts(2))], collection_id=c1, source="t")
    store.put_objects([make(ind(1), ts(1))], collection_id=c1, source="t")
    assert store.get_latest(ind(1)).version == ts(2)  # type: ignore[union-attr]
    store.put_objects([make(ind(1), ts(4)), make(ind(1), ts(3))], collection_id=c1, source="t")
    latest = store.get_latest(ind(1))
    assert latest is not None and latest.version == ts(4) and latest.is_latest
    flags = [(v.version, v.is_latest) for v in store.get_versions(ind(1))]
    assert flags == [(ts(1), False), (ts(2), False), (ts(3), False), (ts(4), True)]
    assert store.get_versions(ind(99)) == []


def test_stored_fields(store: Store, c1: str, make: Make) -> None:
    obj = make(ind(1), ts(1), revoked=True)
    obj = StixObject(**{**_fields(obj), "upgraded_from": "2.0"})
    store.put_objects([obj], collection_id=c1, source="peer:x")
    v = store.get_latest(ind(1))
    assert v is not None
    assert (v.type, v.spec_version, v.source, v.revoked, v.upgraded_from) == (
        "indicator", "2.1", "peer:x", True, "2.0",
    )
    assert v.json == obj.json


@pytest.mark.parametrize(
    ("own", "batch", "expected"),
    [
        (None, None, None),
        ("green", None, "green"),
        (None, "amber", "amber"),
        ("red", "clear", "red"),
        ("clear", "amber+strict", "amber+strict"),
    ],
)
def test_effective_tlp_is_the_stricter(
    store: Store, c1: str, make: Make, own: str | None, batch: str | None, expected: str | None
) -> None:
    store.put_objects([make(ind(1), ts(1), tlp=own)], collection_id=c1, source="t", tlp=batch)
    assert store.get_versions(ind(1))[0].tlp == expected


def test_put_into_unknown_collection(store: Store, make: Make) -> None:
    with pytest.raises(NotFound):
        store.put_objects([make(ind(1))], collection_id="nope", source="t")
    assert store.get_latest(ind(1)) is None


# -- date_added and membership --------------------------------------------------


def test_date_added_strictly_increasing_everywhere(store: Store, c1: str, c2: str, make: Make) -> None:
    store.put_objects([make(ind(n), ts(1)) for n in range(50)], collection_id=c1, source="t")
    store.put_objects([make(ind(n), ts(1)) for n in range(50, 80)], collection_id=c2, source="t")
    store.put_objects([make(ind(n), ts(2)) for n in range(0, 80, 3)], collection_id=c1, source="t")
    store.put_objects([make(ind(n), ts(1)) for n in range(40)], collection_id=c2, source="t")
    stamps = [v.date_added for c in (c1, c2) for v in all_in(store, c)]
    assert len(stamps) == 50 + 30 + 27 + 40
    assert len(set(stamps)) == len(stamps)  # unique across the whole store
    for c in (c1, c2):
        within = [v.date_added for v in all_in(store, c)]
        assert within == sorted(within)
    # Batch order is storage order.
    first_batch = [v.id for v in all_in(store, c1)][:50]
    assert first_batch == [ind(n) for n in range(50)]
    # A later batch, into any collection, gets later stamps than every earlier one.
    c2_items = all_in(store, c2)
    assert min(v.date_added for v in c2_items[30:]) > max(v.date_added for v in all_in(store, c1))


def test_existing_version_joins_another_collection(store: Store, c1: str, c2: str, make: Make) -> None:
    store.put_objects([make(ind(1), ts(1)), make(ind(2), ts(1))], collection_id=c1, source="t")
    in_c1 = {v.id: v.date_added for v in all_in(store, c1)}
    r = store.put_objects([make(ind(1), ts(1))], collection_id=c2, source="t")
    assert outcomes(r) == [UNCHANGED]
    (joined,) = all_in(store, c2)
    assert joined.id == ind(1)
    assert joined.date_added > max(in_c1.values())
    assert {v.id: v.date_added for v in all_in(store, c1)} == in_c1  # untouched
    assert store.stats().versions == 2
    # Seen again in c2: nothing changes.
    store.put_objects([make(ind(1), ts(1))], collection_id=c2, source="t")
    assert all_in(store, c2) == [joined]
    assert [v.date_added for v in store.get_versions(ind(1), c2)] == [joined.date_added]
    assert store.get_versions(ind(2), c2) == []


# -- query ----------------------------------------------------------------------


@pytest.fixture
def loaded(store: Store, c1: str, c2: str, make: Make) -> Store:
    """c1: ind(1) v1,v2,v3 (v2 arrives last), mal(1) v1, dom(1); c2: ind(1) v2 only.

    Order of arrival in c1: ind1@v1, mal1@v1, ind1@v3, dom1, ind1@v2 (older, late).
    """
    store.put_objects([make(ind(1), ts(1)), make(mal(1), ts(1))], collection_id=c1, source="t")
    store.put_objects([make(ind(1), ts(3)), make(dom(1), data={"value": "x.example"})], collection_id=c1, source="t")
    store.put_objects([make(ind(1), ts(2))], collection_id=c1, source="t")
    store.put_objects([make(ind(1), ts(2))], collection_id=c2, source="t")
    store.put_objects([make(ind(3), ts(1), spec_version="2.0")], collection_id=c2, source="t")
    return store


def q(store: Store, collection_id: str, **kw: Any) -> list[tuple[str, str]]:
    return keys(store.query(ObjectQuery(collection_id, **kw)).items)


def test_query_versions(loaded: Store, c1: str, c2: str) -> None:
    assert q(loaded, c1) == [(mal(1), ts(1)), (ind(1), ts(3)), (dom(1), "")]
    assert q(loaded, c1, versions=("last",)) == q(loaded, c1)
    assert q(loaded, c1, versions=("first",)) == [(ind(1), ts(1)), (mal(1), ts(1)), (dom(1), "")]
    assert q(loaded, c1, versions=("all",)) == [
        (ind(1), ts(1)), (mal(1), ts(1)), (ind(1), ts(3)), (dom(1), ""), (ind(1), ts(2)),
    ]
    assert q(loaded, c1, versions=(ts(2),)) == [(ind(1), ts(2))]
    assert q(loaded, c1, versions=("first", "last")) == [
        (ind(1), ts(1)), (mal(1), ts(1)), (ind(1), ts(3)), (dom(1), ""),
    ]
    assert q(loaded, c1, versions=("first", ts(2))) == [
        (ind(1), ts(1)), (mal(1), ts(1)), (dom(1), ""), (ind(1), ts(2)),
    ]
    assert q(loaded, c1, versions=("all", "last")) == q(loaded, c1, versions=("all",))
    assert q(loaded, c1, versions=(ts(9),)) == []
    # 'last' and 'first' are per collection: c2 holds only ind(1)@v2.
    assert q(loaded, c2, ids=(ind(1),), versions=("last",)) == [(ind(1), ts(2))]
    assert q(loaded, c2, ids=(ind(1),), versions=("first",)) == [(ind(1), ts(2))]


def test_query_ids_types_spec_versions(loaded: Store, c1: str, c2: str) -> None:
    assert q(loaded, c1, ids=(ind(1),)) == [(ind(1), ts(3))]
    assert q(loaded, c1, ids=(ind(1), mal(1), ind(77))) == [(mal(1), ts(1)), (ind(1), ts(3))]
    assert q(loaded, c1, types=("malware", "domain-name")) == [(mal(1), ts(1)), (dom(1), "")]
    assert q(loaded, c1, types=("identity",)) == []
    assert q(loaded, c2, spec_versions=("2.0",)) == [(ind(3), ts(1))]
    assert q(loaded, c2, spec_versions=("2.1",)) == [(ind(1), ts(2))]
    assert q(loaded, c2, spec_versions=("2.0", "2.1")) == [(ind(1), ts(2)), (ind(3), ts(1))]


def test_query_combined_filters(loaded: Store, c1: str) -> None:
    everything = loaded.query(ObjectQuery(c1, versions=("all",))).items
    after = everything[1].date_added
    assert q(loaded, c1, added_after=after, versions=("all",), types=("indicator",)) == [
        (ind(1), ts(3)), (ind(1), ts(2)),
    ]
    assert q(loaded, c1, added_after=after, ids=(ind(1),), versions=("first",)) == []
    assert q(loaded, c1, ids=(ind(1), mal(1)), types=("indicator",), versions=("all",), spec_versions=("2.1",)) == [
        (ind(1), ts(1)), (ind(1), ts(3)), (ind(1), ts(2)),
    ]
    assert q(loaded, c1, ids=(mal(1),), types=("indicator",)) == []


def test_query_added_after_is_exclusive(loaded: Store, c1: str) -> None:
    items = loaded.query(ObjectQuery(c1, versions=("all",))).items
    for i, item in enumerate(items):
        assert keys(loaded.query(ObjectQuery(c1, versions=("all",), added_after=item.date_added)).items) == keys(
            items[i + 1 :]
        )
    assert q(loaded, c1, added_after=items[0].date_added - 1, versions=("all",)) == keys(items)


def test_query_returns_membership_date_added(loaded: Store, c1: str, c2: str) -> None:
    (in_c2,) = loaded.query(ObjectQuery(c2, ids=(ind(1),))).items
    (in_c1,) = loaded.query(ObjectQuery(c1, ids=(ind(1),), versions=(ts(2),))).items
    assert in_c2.date_added > in_c1.date_added


def test_query_unknown_collection(store: Store) -> None:
    with pytest.raises(NotFound):
        store.query(ObjectQuery("nope"))


@pytest.mark.parametrize(
    "kw",
    [{}, {"versions": ("all",)}, {"versions": ("first",)}, {"versions": ("all",), "limit": 2},
     {"versions": ("all",), "limit": 0}, {"types": ("malware",)}, {"ids": (ind(1),), "versions": ("all",)}],
)
def test_query_rows_matches_query(loaded: Store, c1: str, c2: str, kw: dict[str, Any]) -> None:
    for collection in (c1, c2):
        full = loaded.query(ObjectQuery(collection, **kw))
        light = loaded.query_rows(ObjectQuery(collection, **kw))
        assert light.more == full.more
        assert [
            (r.date_added, r.id, r.type, r.version, r.spec_version, r.tlp, r.source, r.json) for r in light.rows
        ] == [
            (v.date_added, v.id, v.type, v.version, v.spec_version, v.tlp, v.source, v.json) for v in full.items
        ]
        assert all(isinstance(r.json, bytes) for r in light.rows)
    after = loaded.query(ObjectQuery(c1, versions=("all",))).items[0].date_added
    assert [r.id for r in loaded.query_rows(ObjectQuery(c1, versions=("all",), added_after=after)).rows] == [
        v.id for v in loaded.query(ObjectQuery(c1, versions=("all",), added_after=after)).items
    ]
    with pytest.raises(NotFound):
        loaded.query_rows(ObjectQuery("nope"))


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 50])
def test_paging_neither_drops_nor_repeats(store: Store, c1: str, make: Make, page_size: int) -> None:
    for batch in range(4):
        store.put_objects([make(ind(n), ts(batch)) for n in range(batch, 12)], collection_id=c1, source="t")
    for versions in (("all",), ("last",), ("first",)):
        expected = keys(store.query(ObjectQuery(c1, versions=versions)).items)
        seen: list[tuple[str, str]] = []
        after: int | None = None
        while True:
            page = store.query(ObjectQuery(c1, versions=versions, added_after=after, limit=page_size))
            assert len(page.items) <= page_size
            seen.extend(keys(page.items))
            if not page.more:
                break
            assert len(page.items) == page_size
            after = page.items[-1].date_added
        assert seen == expected
    assert store.query(ObjectQuery(c1, limit=0)).items == ()
    assert store.query(ObjectQuery(c1, limit=0)).more is True
    full = store.query(ObjectQuery(c1, versions=("all",), limit=10_000))
    assert full.more is False and len(full.items) == 12 + 11 + 10 + 9


def test_iter_objects(loaded: Store, c1: str) -> None:
    latest = list(loaded.iter_objects())
    assert sorted(keys(latest)) == sorted([(ind(1), ts(3)), (mal(1), ts(1)), (dom(1), ""), (ind(3), ts(1))])
    assert len(list(loaded.iter_objects(all_versions=True))) == 6
    assert keys(loaded.iter_objects(c1)) == q(loaded, c1)
    assert keys(loaded.iter_objects(c1, all_versions=True)) == q(loaded, c1, versions=("all",))


def test_iter_objects_streams_large_collections(store: Store, c1: str, make: Make) -> None:
    store.put_objects([make(ind(n), ts(1)) for n in range(1200)], collection_id=c1, source="t")
    stream = store.iter_objects(c1)
    first = next(iter(stream))
    assert first.id == ind(0)
    assert sum(1 for _ in stream) == 1199


# -- search, observables, references --------------------------------------------


def test_search(store: Store, c1: str, make: Make) -> None:
    store.put_objects(
        [
            make(mal(1), ts(1), text=(("name", "Fancy Bear loader"), ("aliases", "APT28"))),
            make(mal(2), ts(1), text=(("name", "Other thing"), ("description", "Related to APT29"))),
            make(ind(1), ts(1), text=(("name", "evil.example domain"),)),
        ],
        collection_id=c1,
        source="t",
    )
    assert [v.id for v in store.search("APT28")] == [mal(1)]
    assert [v.id for v in store.search("apt28")] == [mal(1)]
    assert [v.id for v in store.search("fancy bear")] == [mal(1)]
    assert [v.id for v in store.search("evil.example")] == [ind(1)]
    assert store.search("nothing-like-this") == []
    assert len(store.search("APT28 OR APT29")) == 0  # words are required, not operators
    assert store.search("loader", limit=0) == []


@pytest.mark.parametrize(
    "hostile",
    ['APT28 "', '"', "'", "AND", "OR OR", "NOT", "(", "*", "a*b", "NEAR(a b)", "body:x", "x:y:z",
     "^x", "-", '""""', "; DROP TABLE objects; --", "\x00", "   ", "", "é", "日本"],
)
def test_search_hostile_input_never_fails(store: Store, c1: str, make: Make, hostile: str) -> None:
    store.put_objects([make(mal(1), ts(1), text=(("name", "APT28 x y z"),))], collection_id=c1, source="t")
    result = store.search(hostile)
    assert isinstance(result, list)
    assert [v.id for v in store.search('APT28 "')] == [mal(1)]


def test_search_finds_latest_versions_only(store: Store, c1: str, make: Make) -> None:
    store.put_objects([make(mal(1), ts(1), text=(("name", "oldname"),))], collection_id=c1, source="t")
    store.put_objects([make(mal(1), ts(2), text=(("name", "newname"),))], collection_id=c1, source="t")
    store.put_objects([make(mal(1), ts(0), text=(("name", "ancientname"),))], collection_id=c1, source="t")
    assert store.search("oldname") == [] and store.search("ancientname") == []
    (hit,) = store.search("newname")
    assert (hit.id, hit.version) == (mal(1), ts(2))
    sco = make(dom(1), data={"v": 1}, text=(("value", "first.example"),))
    sco2 = make(dom(1), data={"v": 2}, text=(("value", "second.example"),))
    store.put_objects([sco], collection_id=c1, source="t")
    store.put_objects([sco2], collection_id=c1, source="t")
    assert store.search("first.example") == []
    assert [v.id for v in store.search("second.example")] == [dom(1)]


def test_find_observable(store: Store, c1: str, make: Make) -> None:
    store.put_objects(
        [
            make(ind(1), ts(1), observables=(("domain-name", "evil.example"), ("ipv4-addr", "10.0.0.1"))),
            make(ind(2), ts(1), observables=(("domain-name", "evil.example"),)),
        ],
        collection_id=c1,
        source="t",
    )
    assert sorted(v.id for v in store.find_observable("domain-name", "evil.example")) == [ind(1), ind(2)]
    assert [v.id for v in store.find_observable("ipv4-addr", "10.0.0.1")] == [ind(1)]
    assert store.find_observable("ipv4-addr", "evil.example") == []
    # A newer version without the observable no longer matches.
    store.put_objects([make(ind(1), ts(2), observables=(("ipv4-addr", "10.0.0.2"),))], collection_id=c1, source="t")
    assert [v.id for v in store.find_observable("domain-name", "evil.example")] == [ind(2)]
    assert store.find_observable("ipv4-addr", "10.0.0.1") == []
    (hit,) = store.find_observable("ipv4-addr", "10.0.0.2")
    assert (hit.id, hit.version) == (ind(1), ts(2))


def test_related(store: Store, c1: str, make: Make) -> None:
    rel = "relationship--00000000-0000-4000-8000-000000000001"
    ident = "identity--00000000-0000-4000-8000-000000000001"
    store.put_objects(
        [
            make(mal(1), ts(1), refs=(("created_by_ref", ident),)),
            make(ind(1), ts(1)),
            make(rel, ts(1), refs=(("source_ref", ind(1)), ("target_ref", mal(1)), ("created_by_ref", ident))),
        ],
        collection_id=c1,
        source="t",
    )
    assert store.related(rel) == [("created_by_ref", ident), ("source_ref", ind(1)), ("target_ref", mal(1))]
    assert store.related(mal(1)) == [("created_by_ref", ident), ("target_ref", rel)]
    assert store.related(ident) == [("created_by_ref", mal(1)), ("created_by_ref", rel)]
    assert store.related("campaign--00000000-0000-4000-8000-000000000001") == []
    # Only the latest version's references count.
    store.put_objects([make(rel, ts(2), refs=(("source_ref", ind(1)), ("target_ref", mal(2))))], collection_id=c1, source="t")
    assert store.related(mal(1)) == [("created_by_ref", ident)]
    assert store.related(mal(2)) == [("target_ref", rel)]


# -- stats, accounts, collections, meta -----------------------------------------


def test_stats(store: Store, c1: str, c2: str, make: Make) -> None:
    empty = store.stats()
    assert (empty.objects, empty.versions) == (0, 0)
    assert empty.by_collection == {c1: 0, c2: 0}
    store.put_objects([make(ind(1), ts(1), tlp="green"), make(ind(1), ts(2)), make(mal(1), ts(1), tlp="red")],
                      collection_id=c1, source="t")
    store.put_objects([make(mal(1), ts(1))], collection_id=c2, source="t", tlp="amber")
    s = store.stats()
    assert (s.objects, s.versions) == (2, 3)
    assert s.by_type == {"indicator": 1, "malware": 1}
    assert s.by_tlp == {"unmarked": 1, "red": 1}
    assert s.by_collection == {c1: 2, c2: 1}
    assert s.size_bytes > 0


def test_accounts(store: Store) -> None:
    assert store.list_accounts() == []
    alice = store.add_account(Account(name="alice", key_hash="h1", is_admin=True))
    assert alice.created > 0
    store.add_account(Account(name="bob", key_hash="h2", created=5))
    with pytest.raises(Conflict):
        store.add_account(Account(name="alice", key_hash="h3"))
    with pytest.raises(Conflict):
        store.add_account(Account(name="carol", key_hash="h1"))
    assert store.account_by_key_hash("h1") == alice
    assert store.account_by_key_hash("nope") is None
    assert [a.name for a in store.list_accounts()] == ["alice", "bob"]
    store.revoke_account("bob")
    bob = store.account_by_key_hash("h2")
    assert bob is not None and bob.revoked and bob.created == 5
    with pytest.raises(NotFound):
        store.revoke_account("nobody")


def test_collections(store: Store, c1: str, c2: str) -> None:
    assert store.get_collection(c1).alias == "one"
    assert store.get_collection("one").id == c1
    with pytest.raises(NotFound):
        store.get_collection("two")
    full = Collection(
        id="8f0fa1f4-1d8b-4e36-a2a3-7a0fb8a2f0a1", title="public", api_root="other",
        description="d", alias="pub", public=True, media_types=("a", "b"),
    )
    assert store.add_collection(full) == full
    assert store.get_collection("pub") == full
    for clash in (
        Collection(id=c1, title="same id"),
        Collection(id="11111111-1111-4111-8111-111111111111", title="same alias", alias="one"),
        Collection(id="22222222-2222-4222-8222-222222222222", title="alias is an id", alias=c2),
        Collection(id="one", title="id is an alias"),
    ):
        with pytest.raises(Conflict):
            store.add_collection(clash)
    assert {c.id for c in store.list_collections()} == {c1, c2, full.id}
    assert store.list_collections("other") == [full]
    assert store.list_collections("missing") == []


def test_meta(store: Store) -> None:
    assert store.get_meta("node.id") is None
    store.set_meta("node.id", "a")
    store.set_meta("node.id", "b")
    store.set_meta("x", "")
    assert store.get_meta("node.id") == "b"
    assert store.get_meta("x") == ""


def test_errors_are_store_errors(store: Store) -> None:
    assert issubclass(NotFound, StoreError) and issubclass(Conflict, StoreError)
    store.close()
    with pytest.raises(StoreError):
        store.get_meta("x")


# -- persistence and integrity --------------------------------------------------


def test_reopen_keeps_everything(open_store: Callable[..., Store], make: Make) -> None:
    first = open_store("p")
    c = first.add_collection(Collection(id="33333333-3333-4333-8333-333333333333", title="p", alias="p"))
    first.put_objects([make(ind(1), ts(1)), make(ind(1), ts(2))], collection_id=c.id, source="t", tlp="green")
    first.add_account(Account(name="a", key_hash="k", created=1))
    first.set_meta("k", "v")
    before = all_in(first, c.id)
    first.close()
    again = open_store("p")
    assert all_in(again, c.id) == before
    assert again.get_collection("p") == c
    assert again.account_by_key_hash("k") == Account(name="a", key_hash="k", created=1)
    assert again.get_meta("k") == "v"
    assert again.check_integrity() == []
    # The clock survives too: later writes sort after earlier ones.
    again.put_objects([make(ind(2), ts(1))], collection_id=c.id, source="t")
    assert all_in(again, c.id)[-1].date_added > before[-1].date_added


def test_integrity_after_mixed_work(store: Store, c1: str, c2: str, make: Make) -> None:
    assert store.check_integrity() == []
    for n in range(5):
        store.put_objects(
            [make(ind(k), ts(n), text=(("name", f"name {k} {n}"),), refs=(("x_ref", mal(k)),)) for k in range(20)]
            + [make(dom(n), data={"n": n}, text=(("value", f"d{n}.example"),))],
            collection_id=(c1, c2)[n % 2],
            source="t",
        )
    store.put_objects([make(dom(1), data={"n": 99})], collection_id=c1, source="t")
    assert store.check_integrity() == []


# -- property: query against a reference model ----------------------------------

IDS = [ind(1), ind(2), mal(1), dom(1)]
COLLECTIONS = ("c-a", "c-b")

put_strategy = st.tuples(
    st.sampled_from(range(len(IDS))),
    st.integers(min_value=1, max_value=4),  # version number (ignored for the SCO)
    st.integers(min_value=0, max_value=1),  # content variant
    st.sampled_from(COLLECTIONS),
)
batches_strategy = st.lists(st.lists(put_strategy, min_size=1, max_size=6), min_size=1, max_size=5)
query_strategy = st.fixed_dictionaries(
    {
        "collection": st.sampled_from(COLLECTIONS),
        "after_index": st.none() | st.integers(min_value=0, max_value=30),
        "ids": st.lists(st.sampled_from(IDS), max_size=2, unique=True),
        "types": st.lists(st.sampled_from(["indicator", "malware", "domain-name"]), max_size=2, unique=True),
        "versions": st.lists(
            st.sampled_from(["last", "first", "all", ts(1), ts(2), ts(3), ts(4), ""]), min_size=1, max_size=3, unique=True
        ),
        "spec_versions": st.lists(st.sampled_from(["2.0", "2.1"]), max_size=1),
        "limit": st.none() | st.integers(min_value=1, max_value=5),
    }
)


class ReferenceModel:
    """What a store should hold after a sequence of batches, computed naively."""

    def __init__(self) -> None:
        self.content: dict[tuple[str, str], bytes] = {}
        # per collection: (id, version) in order of (re)stamping
        self.order: dict[str, list[tuple[str, str]]] = {c: [] for c in COLLECTIONS}

    def put(self, obj: StixObject, collection: str) -> None:
        key = (obj.id, obj.version)
        order = self.order[collection]
        if key not in self.content:
            self.content[key] = obj.json
            order.append(key)
        elif obj.version == "" and orjson.loads(self.content[key]) != orjson.loads(obj.json):
            self.content[key] = obj.json
            if key in order:
                order.remove(key)
            order.append(key)
        elif key not in order:
            order.append(key)

    def query(self, collection: str, after: int, qd: dict[str, Any]) -> list[tuple[str, str]]:
        members = self.order[collection]
        out = []
        for position, (object_id, version) in enumerate(members):
            if position < after:
                continue
            if qd["ids"] and object_id not in qd["ids"]:
                continue
            if qd["types"] and object_id.split("--")[0] not in qd["types"]:
                continue
            if qd["spec_versions"] and "2.1" not in qd["spec_versions"]:
                continue
            mine = [v for i, v in members if i == object_id]
            wanted = (
                "all" in qd["versions"]
                or ("last" in qd["versions"] and version == max(mine))
                or ("first" in qd["versions"] and version == min(mine))
                or version in qd["versions"]
            )
            if wanted:
                out.append((object_id, version))
        return out


def _make_put(make: Make, index: int, version_no: int, variant: int) -> StixObject:
    object_id = IDS[index]
    if object_id.startswith("domain-name"):
        return make(object_id, data={"value": "x.example", "x_variant": variant})
    return make(object_id, ts(version_no), data={"x_variant": variant})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches_strategy, queries=st.lists(query_strategy, min_size=1, max_size=4))
def test_query_matches_reference_model(
    open_store: Callable[..., Store], make: Make, batches: list[Any], queries: list[dict[str, Any]]
) -> None:
    store = open_store(f"prop-{next(_example_numbers)}")
    for c in COLLECTIONS:
        store.add_collection(Collection(id=c, title=c))
    model = ReferenceModel()
    for batch in batches:
        # One put_objects call per collection touched by the batch, in first-use order.
        grouped: dict[str, list[StixObject]] = {}
        for index, version_no, variant, collection in batch:
            grouped.setdefault(collection, []).append(_make_put(make, index, version_no, variant))
        for collection, objs in grouped.items():
            store.put_objects(objs, collection_id=collection, source="t")
            for obj in objs:
                model.put(obj, collection)

    for qd in queries:
        c = qd["collection"]
        stamps = [v.date_added for v in store.query(ObjectQuery(c, versions=("all",))).items]
        assert len(stamps) == len(model.order[c])
        after_index = qd["after_index"]
        if after_index is None or not stamps:
            added_after, skip = None, 0
        else:
            position = min(after_index, len(stamps) - 1)
            added_after, skip = stamps[position], position + 1
        expected = model.query(c, skip, qd)
        page = store.query(
            ObjectQuery(
                c,
                added_after=added_after,
                ids=tuple(qd["ids"]),
                types=tuple(qd["types"]),
                versions=tuple(qd["versions"]),
                spec_versions=tuple(qd["spec_versions"]),
                limit=qd["limit"],
            )
        )
        limit = qd["limit"]
        assert keys(page.items) == (expected if limit is None else expected[:limit])
        assert page.more == (limit is not None and len(expected) > limit)
        for item in page.items:
            assert item.json == model.content[(item.id, item.version)]
    assert store.check_integrity() == []


_example_numbers = itertools.count()


# -- TAXII serving: API roots, rights, statuses, audit, delete (issue 3) -----------------


def test_api_roots(store: Store) -> None:
    from threatmesh.store.protocol import ApiRoot

    # The default root exists from the start, and roots named by collections too.
    assert "default" in [r.name for r in store.list_api_roots()]
    root = store.add_api_root(ApiRoot("trusted", "Trusted", "allies only", max_content_length=1000))
    assert store.get_api_root("trusted") == root
    with pytest.raises(Conflict):
        store.add_api_root(ApiRoot("trusted", "again"))
    with pytest.raises(NotFound):
        store.get_api_root("nope")
    store.add_collection(Collection(id="0ba8a0e3-5bf0-4bd7-a5b5-3a0e7c18a1f2", title="x", api_root="implied"))
    names = [r.name for r in store.list_api_roots()]
    assert names == sorted(names) and {"default", "trusted", "implied"} <= set(names)


def test_api_roots_survive_reopen(open_store: Callable[..., Store]) -> None:
    from threatmesh.store.protocol import ApiRoot

    s = open_store("roots")
    s.add_api_root(ApiRoot("kept", "Kept", max_content_length=77))
    s.close()
    assert open_store("roots").get_api_root("kept").max_content_length == 77


def test_grant_and_rights(store: Store, c1: str, c2: str) -> None:
    from threatmesh.store.protocol import Rights

    store.add_account(Account(name="peer", key_hash="sha256:peer"))
    assert store.rights("peer", c1) == Rights()
    store.grant("peer", c1, read=True, write=False)
    store.grant("peer", c2, read=True, write=True)
    assert store.rights("peer", c1) == Rights(read=True, write=False)
    assert store.rights("peer", c2) == Rights(read=True, write=True)
    store.grant("peer", c1, read=False, write=True)  # replaces, does not add
    assert store.rights("peer", c1) == Rights(read=False, write=True)
    store.grant("peer", c2, read=False, write=False)
    assert store.rights("peer", c2) == Rights()
    assert store.rights("stranger", c1) == Rights()
    with pytest.raises(NotFound):
        store.grant("stranger", c1, read=True, write=False)
    with pytest.raises(NotFound):
        store.grant("peer", "2f0e3e0b-31a8-4a2c-9a43-ec3f3c1b1d11", read=True, write=False)


def test_statuses_kept_read_back_and_purged(store: Store) -> None:
    from threatmesh.store.protocol import StatusDetail, TaxiiStatus

    status = TaxiiStatus(
        id="0e1d7e5b-1f5c-4d59-9e6e-0f6b0d2ad0a1", api_root="default", account="peer", complete=True,
        request_timestamp=1_000,
        successes=(StatusDetail(ind(1), ts(1)),),
        failures=(StatusDetail(ind(2), ts(2), "no pattern"), StatusDetail("objects[3]", ts(0), "not JSON")),
    )
    store.put_status(status)
    assert store.get_status(status.id) == status
    later = TaxiiStatus(id="5f0d7e5b-1f5c-4d59-9e6e-0f6b0d2ad0a1", api_root="default", account=None,
                        complete=False, request_timestamp=5_000, pendings=(StatusDetail(ind(3), ts(3)),))
    store.put_status(later)
    assert store.purge_statuses(older_than=2_000) == 1
    with pytest.raises(NotFound):
        store.get_status(status.id)
    assert store.get_status(later.id) == later


def test_audit_log_newest_first_and_filtered(store: Store) -> None:
    store.audit("alice", "GET", "/taxii2/default/collections/", 200, 3)
    store.audit(None, "GET", "/taxii2/", 401, 0)
    store.audit("bob", "POST", "/taxii2/default/collections/x/objects/", 202, 10)
    store.audit("alice", "DELETE", "/taxii2/default/collections/x/objects/y/", 200, 1)
    log = store.audit_log()
    assert [(e.account, e.method, e.status, e.objects) for e in log] == [
        ("alice", "DELETE", 200, 1), ("bob", "POST", 202, 10), (None, "GET", 401, 0), ("alice", "GET", 200, 3)]
    assert [e.method for e in store.audit_log(account="alice")] == ["DELETE", "GET"]
    assert len(store.audit_log(limit=2)) == 2
    assert log[0].time >= log[-1].time > 0
    assert store.audit_log(since=log[0].time) == []


def test_delete_object_versions_from_a_collection(store: Store, c1: str, c2: str, make: Make) -> None:
    store.put_objects([make(ind(1), ts(v)) for v in (1, 2, 3)] + [make(ind(2), ts(1))], collection_id=c1, source="t")
    store.put_objects([make(ind(1), ts(2))], collection_id=c2, source="t")

    def versions_in(collection_id: str, which: str) -> list[str]:
        page = store.query(ObjectQuery(collection_id, ids=(ind(1),), versions=(which,)))
        return [v.version for v in page.items]

    assert store.delete_object(c1, ind(1), ("last",)) == 1
    assert versions_in(c1, "all") == [ts(1), ts(2)]
    assert versions_in(c1, "last") == [ts(2)]  # the markers follow
    assert store.delete_object(c1, ind(1), (ts(9),)) == 0
    assert store.delete_object(c1, ind(1), ("all",), spec_versions=("2.0",)) == 0
    assert store.delete_object(c1, ind(1), ("first",)) == 1
    assert versions_in(c1, "first") == versions_in(c1, "last") == [ts(2)]
    assert store.delete_object(c1, ind(1)) == 1
    assert versions_in(c1, "all") == []
    # Other collections and other ids are untouched; history stays in the store.
    assert versions_in(c2, "all") == [ts(2)]
    assert [v.id for v in all_in(store, c1)] == [ind(2)]
    assert [v.version for v in store.get_versions(ind(1))] == [ts(1), ts(2), ts(3)]
    with pytest.raises(NotFound):
        store.delete_object("2f0e3e0b-31a8-4a2c-9a43-ec3f3c1b1d11", ind(1))


def test_deleted_version_can_join_again(store: Store, c1: str, make: Make) -> None:
    store.put_objects([make(ind(1), ts(1))], collection_id=c1, source="t")
    before = all_in(store, c1)[0].date_added
    store.delete_object(c1, ind(1))
    store.put_objects([make(ind(1), ts(1))], collection_id=c1, source="t")
    again = all_in(store, c1)
    assert [v.version for v in again] == [ts(1)] and again[0].date_added > before
