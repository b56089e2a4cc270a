"""The surge test's statistics, written out in analytics/surges.py, against scipy's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threatmesh.analytics.surges import benjamini_hochberg, binomial_upper_tail

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy (a test extra) judges the surge statistics")


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 3000), data=st.data())
def test_binomial_upper_tail_equals_scipys_one_sided_binomtest(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    p = data.draw(st.floats(0.001, 0.999))
    expected = scipy_stats.binomtest(k, n, p, alternative="greater").pvalue if k > 0 else 1.0
    assert binomial_upper_tail(k, n, p) == pytest.approx(expected, rel=1e-7, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_benjamini_hochberg_equals_scipys_false_discovery_control(p_values: list[float]) -> None:
    expected = scipy_stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), rel=1e-12, abs=1e-15)
