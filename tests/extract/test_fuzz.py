"""Fuzzing the pure extractors: any text in, hits out, no exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from threatmesh.extract import detect_type, extract

_PIECES = st.sampled_from(["[.]", "(.)", "[dot]", "hxxp", "hXXps", "[:]", "[at]", "[@]", "`+", "+`", "://", "/",
                           ".", "@", ":", "evil", "com", "1", "255", "abc", "T1059", "CVE-2020-", "\n", " ", "\\",
                           "0123456789abcdef" * 2, "::", "%", "(", ")"])
_TEXT = st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=60).map("".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_extract_never_raises_and_positions_hold(text: str) -> None:
    for hit in extract(text):
        assert text[hit.start:hit.end] == hit.found
        assert hit.value


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_detect_type_never_raises(text: str) -> None:
    found = detect_type(text)
    assert found is None or found.value
