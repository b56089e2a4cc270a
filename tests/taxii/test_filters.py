"""TAXII query parameters parsed into ObjectQuery (TAXII 2.1 §3.4, §3.4.1)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatmesh.errors import BadParameter, InputError
from threatmesh.store.protocol import ObjectQuery
from threatmesh.taxii.filters import Endpoint, TaxiiQuery, parse_query

COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
ID1 = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
ID2 = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"


def parse(query: str | list[tuple[str, str]], endpoint: Endpoint = Endpoint.OBJECTS, **kw: object) -> TaxiiQuery:
    if isinstance(query, str):
        pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    else:
        pairs = query
    options: dict[str, object] = {"page_size_default": 100, "page_size_max": 500}
    options.update(kw)
    return parse_query(pairs, endpoint=endpoint, collection_id=COLLECTION, **options)  # type: ignore[arg-type]


def test_no_parameters_gives_the_defaults() -> None:
    parsed = parse("")
    assert parsed == TaxiiQuery(ObjectQuery(collection_id=COLLECTION, versions=("last",), limit=100), None)


def test_every_filter_is_read() -> None:
    parsed = parse(
        f"added_after=2021-06-10T12:00:00.123456Z&limit=7&match[id]={ID2},{ID1}"
        "&match[type]=malware,indicator&match[version]=2020-01-01T00:00:00Z,first"
        "&match[spec_version]=2.1,2.0&next=abc"
    )
    expected_after = int(datetime(2021, 6, 10, 12, 0, 0, 123456, tzinfo=timezone.utc).timestamp() * 1_000_000)
    assert parsed.query == ObjectQuery(
        collection_id=COLLECTION,
        added_after=expected_after,
        ids=(ID1, ID2),
        types=("indicator", "malware"),
        versions=("first", "2020-01-01T00:00:00.000000Z"),
        spec_versions=("2.0", "2.1"),
        limit=7,
    )
    assert parsed.next_token == "abc"


def test_added_after_to_microseconds_truncates_extra_digits() -> None:
    a = parse("added_after=2021-01-01T00:00:00.0000019Z").query.added_after
    b = parse("added_after=2021-01-01T00:00:00.000001Z").query.added_after
    c = parse("added_after=2021-01-01T00:00:00Z").query.added_after
    assert a == b == c + 1  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("1", 1), ("100", 100), ("500", 500), ("501", 500), ("99999999999999999999999", 500)],
)
def test_limit_is_clamped_to_the_server_maximum(raw: str, limit: int) -> None:
    assert parse(f"limit={raw}").query.limit == limit


def test_default_limit_never_exceeds_the_maximum() -> None:
    assert parse("", page_size_default=1000, page_size_max=10).query.limit == 10


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("added_after=yesterday", "added_after"),
        ("added_after=2021-13-01T00:00:00Z", "added_after"),
        ("added_after=2021-01-01", "added_after"),
        ("added_after=2021-01-01T00:00:00+01:00", "added_after"),
        ("added_after=", "added_after"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=+5", "limit"),
        ("match[id]=indicator", "match[id]"),
        ("match[id]=indicator--123", "match[id]"),
        (f"match[id]={ID1},", "match[id]"),
        ("match[type]=Indicator", "match[type]"),
        ("match[type]=ab", "match[type]"),
        ("match[type]=indicator,,malware", "match[type]"),
        ("match[type]=", "match[type]"),
        ("match[version]=latest", "match[version]"),
        ("match[version]=all,last", "match[version]"),
        ("match[version]=first,first", "match[version]"),
        ("match[version]=2020-01-01T00:00:00Z,2020-01-01T00:00:00.000Z", "match[version]"),
        ("match[version]=2020-02-30T00:00:00Z", "match[version]"),
        ("match[spec_version]=2", "match[spec_version]"),
        ("match[spec_version]=2.1,x", "match[spec_version]"),
        ("next=", "next"),
        ("limit=5&limit=6", "limit"),
        ("match[type]=indicator&match[type]=malware", "match[type]"),
        ("added_after=2021-01-01T00:00:00Z&added_after=2021-01-01T00:00:00Z", "added_after"),
    ],
)
def test_malformed_parameters_name_the_parameter(query: str, param: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse(query)
    assert caught.value.param == param
    assert isinstance(caught.value, InputError)
    assert param in str(caught.value)


def test_unknown_and_unsupported_parameters_are_ignored() -> None:
    assert parse("match[colour]=red&foo=bar").query == parse("").query
    # match[type] is not a filter of the versions endpoint, limit is not one of DELETE.
    versions = parse("match[type]=!!&match[version]=bogus", Endpoint.VERSIONS, object_id=ID1)
    assert versions.query.types == () and versions.query.versions == ("all",)
    delete = parse("limit=zero", Endpoint.DELETE, object_id=ID1)
    assert delete.query.limit is None


def test_object_endpoints_fix_the_id_and_their_default_versions() -> None:
    assert parse(f"match[id]={ID2}", Endpoint.OBJECT, object_id=ID1).query.ids == (ID1,)
    assert parse("", Endpoint.OBJECT, object_id=ID1).query.versions == ("last",)
    assert parse("", Endpoint.VERSIONS, object_id=ID1).query.versions == ("all",)
    assert parse("", Endpoint.DELETE, object_id=ID1).query.versions == ("all",)
    assert parse("match[version]=first", Endpoint.DELETE, object_id=ID1).query.versions == ("first",)


def test_version_keywords_and_timestamps_are_canonical() -> None:
    a = parse("match[version]=last,2020-01-01T00:00:00.1Z,first").query.versions
    b = parse("match[version]=first,2020-01-01T00:00:00.100Z,last").query.versions
    assert a == b == ("first", "last", "2020-01-01T00:00:00.100000Z")


def test_whitespace_around_values_is_forgiven_and_duplicates_merge() -> None:
    assert parse("match[type]=indicator, malware,indicator").query.types == ("indicator", "malware")


# -- property-based: parsing round-trips what a client can send -------------------

_types = st.from_regex(r"[a-z][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_uuids = st.uuids().map(str)
_ids = st.builds(lambda t, u: f"{t}--{u}", _types, _uuids)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)


def _stix_ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(
    ids=st.lists(_ids, max_size=4),
    types=st.lists(_types, max_size=4),
    after=st.none() | _times,
    limit=st.none() | st.integers(min_value=1, max_value=10_000),
    keywords=st.sets(st.sampled_from(["first", "last"])),
    stamps=st.sets(_times, max_size=3),
    spec=st.sets(st.sampled_from(["2.0", "2.1"])),
)
def test_what_a_client_sends_is_what_the_query_holds(
    ids: list[str],
    types: list[str],
    after: datetime | None,
    limit: int | None,
    keywords: set[str],
    stamps: set[datetime],
    spec: set[str],
) -> None:
    pairs: list[tuple[str, str]] = []
    if ids:
        pairs.append(("match[id]", ",".join(ids)))
    if types:
        pairs.append(("match[type]", ",".join(types)))
    if after is not None:
        pairs.append(("added_after", _stix_ts(after)))
    if limit is not None:
        pairs.append(("limit", str(limit)))
    version_values = sorted(keywords) + [_stix_ts(s) for s in stamps]
    if version_values:
        pairs.append(("match[version]", ",".join(version_values)))
    if spec:
        pairs.append(("match[spec_version]", ",".join(sorted(spec))))
    query = parse(pairs).query
    assert set(query.ids) == set(ids)
    assert set(query.types) == set(types)
    if after is None:
        assert query.added_after is None
    else:
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        assert query.added_after == (after - epoch) // timedelta(microseconds=1)
    assert query.limit == min(limit or 100, 500)
    assert set(query.versions) == (set(keywords) | {_stix_ts(s) for s in stamps} or {"last"})
    assert set(query.spec_versions) == spec


@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6))
def test_arbitrary_parameters_parse_or_raise_bad_parameter(pairs: list[tuple[str, str]]) -> None:
    for endpoint in Endpoint:
        try:
            parse(pairs, endpoint, object_id=ID1 if endpoint not in (Endpoint.OBJECTS, Endpoint.MANIFEST) else None)
        except BadParameter:
            pass
