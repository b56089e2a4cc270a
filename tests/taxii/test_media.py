"""Accept and Content-Type negotiation (TAXII 2.1 §1.6.8, §3.1; RFC 7231 §5.3.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatmesh.taxii.media import (
    MediaRange,
    accepts_taxii,
    content_type_supported,
    parse_accept,
    parse_media_range,
)


@pytest.mark.parametrize(
    "accept",
    [
        "application/taxii+json;version=2.1",
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "application/taxii+json ;  version=2.1",
        'application/taxii+json;version="2.1"',
        "APPLICATION/TAXII+JSON;VERSION=2.1",
        "application/taxii+json;version=2.1;q=0.5",
        "text/html, application/taxii+json;q=0.1",
        "application/taxii+json;version=2.0, application/taxii+json;version=2.1",
        "application/taxii+json;version=2.1,application/stix+json;version=2.1",
        "application/taxii+json;charset=utf-8",
        "*/*",
        "application/*",
        "text/html;q=0.9, */*;q=0.1",
    ],
)
def test_taxii_accept_forms_are_served(accept: str) -> None:
    assert accepts_taxii(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "   ",
        "application/foo",
        "application/json",
        "text/html",
        "application/taxii+json;version=2.0",
        "application/taxii+json;q=0",
        "application/taxii+json;version=2.1;q=0, */*",
        "application/taxii+json;version=2.1;q=0.000",
        "application/taxii+json;charset=latin-1",
        "application/stix+json;version=2.1",
        "text/*",
        "*/*;q=0",
        "application/taxii+json;q=2",  # malformed q: the element is skipped
        "application/taxii+json;version",
        "taxii+json",
    ],
)
def test_other_accept_headers_get_406(accept: str | None) -> None:
    assert not accepts_taxii(accept)


def test_stix_media_type_only_where_allowed() -> None:
    assert accepts_taxii("application/stix+json;version=2.1", allow_stix=True)
    assert accepts_taxii("application/stix+json", allow_stix=True)
    assert not accepts_taxii("application/stix+json;version=2.0", allow_stix=True)
    assert not accepts_taxii("application/stix+json;version=2.1")


def test_most_specific_range_decides() -> None:
    # RFC 7231 §5.3.2: the more specific range wins even when it comes later.
    assert not accepts_taxii("*/*, application/taxii+json;q=0")
    assert not accepts_taxii("application/*, application/taxii+json;version=2.1;q=0")
    assert accepts_taxii("application/taxii+json;q=0, application/taxii+json;version=2.1")


def test_parse_accept_reads_params_and_q() -> None:
    ranges = parse_accept('text/html;level=1;q=0.7;ext=x, application/taxii+json ; version="2.1" ,bogus')
    assert ranges == (
        MediaRange("text", "html", (("level", "1"),), 0.7),
        MediaRange("application", "taxii+json", (("version", "2.1"),), 1.0),
    )


def test_quoted_commas_do_not_split() -> None:
    ranges = parse_accept('a/b;x="1,2";q=0.2, c/d')
    assert [r.param("x") for r in ranges] == ["1,2", None]
    assert ranges[0].q == 0.2


@pytest.mark.parametrize(
    "content_type",
    [
        "application/taxii+json;version=2.1",
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "application/taxii+json;version=2.1;charset=utf-8",
        "Application/TAXII+JSON; charset=UTF-8",
    ],
)
def test_taxii_content_types_are_read(content_type: str) -> None:
    assert content_type_supported(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/taxii+json;version=2.0",
        "application/taxii+json;charset=latin-1",
        "application/stix+json;version=2.1",
        "text/plain",
        "application/*",
        "*/*",
    ],
)
def test_other_content_types_get_415(content_type: str | None) -> None:
    assert not content_type_supported(content_type)


def test_stix_content_type_where_allowed() -> None:
    assert content_type_supported("application/stix+json;version=2.1", allow_stix=True)
    assert not content_type_supported("application/stix+json;version=2.0", allow_stix=True)


# -- property-based -------------------------------------------------------------

_ows = st.sampled_from(["", " ", "  ", "\t"])
_q_positive = st.sampled_from(["", ";q=1", ";q=0.5", ";q=0.001", ";q=1.000", ";q=0.9"])
_other_types = st.sampled_from(
    [
        "text/html",
        "application/json",
        "application/xml",
        "image/png",
        "application/stix+json;version=2.0",
        "application/taxii+json;version=2.0",
        "application/vnd.oasis.taxii+json;version=2.0",
        "text/*",
    ]
)


@st.composite
def _taxii_range(draw: st.DrawFn) -> str:
    main = draw(st.sampled_from(["application/taxii+json", "APPLICATION/taxii+JSON"]))
    version = draw(st.sampled_from(["", "version=2.1", 'version="2.1"', "VERSION=2.1"]))
    ows1, ows2 = draw(_ows), draw(_ows)
    params = f"{ows1};{ows2}{version}" if version else ""
    return main + params + draw(_q_positive)


@given(
    taxii=_taxii_range(),
    others=st.lists(_other_types.map(lambda t: t), max_size=5),
    others_q=st.lists(st.sampled_from(["", ";q=0", ";q=0.8"]), min_size=5, max_size=5),
    position=st.integers(min_value=0, max_value=5),
    sep=st.sampled_from([",", ", ", " ,  "]),
)
def test_any_list_with_a_taxii_range_is_served(
    taxii: str, others: list[str], others_q: list[str], position: int, sep: str
) -> None:
    elements = [o + q for o, q in zip(others, others_q)]
    elements.insert(min(position, len(elements)), taxii)
    assert accepts_taxii(sep.join(elements))


@given(others=st.lists(_other_types, max_size=6), sep=st.sampled_from([",", ", "]))
def test_a_list_without_a_taxii_range_gets_406(others: list[str], sep: str) -> None:
    assert not accepts_taxii(sep.join(others))


@given(st.text(max_size=200))
def test_parsers_never_raise(text: str) -> None:
    parse_accept(text)
    parse_media_range(text)
    accepts_taxii(text, allow_stix=True)
    content_type_supported(text, allow_stix=True)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz*/;=,. +\"0123456789qQ", max_size=60))
def test_result_is_q_decided_reference(text: str) -> None:
    """Reference: TAXII is served iff the most specific matching range has q > 0."""
    ranges = parse_accept(text)
    best: tuple[int, float] | None = None
    for r in ranges:
        if r.type == "*" and not r.params:
            spec = 0
        elif r.type == "application" and r.subtype == "*" and not r.params:
            spec = 1
        elif (r.type, r.subtype) == ("application", "taxii+json") and all(
            (k, v.lower()) in {("version", "2.1"), ("charset", "utf-8")} for k, v in r.params
        ):
            spec = 2 + len(r.params)
        else:
            continue
        if best is None or spec > best[0]:
            best = (spec, r.q)
        elif spec == best[0]:
            best = (spec, max(best[1], r.q))
    expected = best is not None and best[1] > 0 and bool(text.strip())
    assert accepts_taxii(text) == expected
