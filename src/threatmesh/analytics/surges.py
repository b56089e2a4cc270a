"""Surges: periods in which an actor, sector or country is significantly above its own baseline.

The test: counts of events per period are modelled as Poisson. To ask whether
period t has a higher rate than the `window` periods before it, condition on
the total n = x_t + x_base: under equal rates, x_t ~ Binomial(n, 1 / (window + 1)).
The one-sided exact binomial test of that (the conditional test for comparing
two Poisson rates, Przyborowski & Wilenski 1940) gives the p-value; it needs
no normal approximation, so it stays valid for the small counts that threat
data has, and a baseline of zero is handled without dividing by it.

A period is reported only when it also passes a minimum count (default 5):
with tiny numbers a significant-looking jump is still too few events to brief
on. Many groups x periods are tested at once, so the p-values are also given
adjusted by Benjamini-Hochberg (false discovery rate), and `alpha` applies to
the adjusted value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


from threatmesh.analytics.facts import Fact
from threatmesh.analytics.periods import period_key, period_range, shift

TEST_NAME = "exact conditional test of two Poisson rates (one-sided binomial), Benjamini-Hochberg adjusted"


@dataclass(frozen=True, slots=True)
class Surge:
    value: str  # the actor, sector, country... that surged
    period: str
    count: int
    baseline: float  # mean count per period over the window before
    window: int  # periods in the baseline
    p_value: float
    p_adjusted: float
    ratio: float | None  # count / baseline; None when the baseline is 0
    ids: tuple[str, ...] = ()
    test: str = TEST_NAME


def _log_pmf(i: int, n: int, p: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p))


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the one-sided exact binomial test's p-value.

    Summed from the term at k outwards with the ratio of successive terms, so each
    term costs a multiplication; from the side of the mean that has fewer terms to
    sum (below the mean, as 1 minus the lower tail), so the terms only shrink.
    (Written out rather than imported: scipy.stats takes seconds to import, which
    every brief would pay.)
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if p >= 1.0 else 0.0
    odds = p / (1.0 - p)
    if k > n * p:  # upper tail: terms fall from k upwards
        total, term = 0.0, 1.0
        for i in range(k, n + 1):
            total += term
            term *= (n - i) / (i + 1) * odds
            if term < total * 1e-17:
                break
        return min(1.0, math.exp(_log_pmf(k, n, p)) * total)
    total, term = 0.0, 1.0  # lower tail P(X <= k - 1): terms fall from k - 1 downwards
    for i in range(k - 1, -1, -1):
        total += term
        term *= i / (n - i + 1) / odds
        if term < total * 1e-17:
            break
    return max(0.0, 1.0 - math.exp(_log_pmf(k - 1, n, p)) * total)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # from the largest p-value down: the running minimum of p * m / rank
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted


def surges(
    facts: Sequence[Fact],
    field_name: str,
    period: str = "year",
    *,
    window: int = 3,
    min_count: int = 5,
    alpha: float = 0.05,
) -> list[Surge]:
    """Periods where a value of `field_name` rose significantly above its previous `window` periods."""
    if window < 1:
        raise ValueError("window must be at least 1 period")
    counts: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    keys = set()
    for fact in facts:
        if fact.day is None:
            continue
        key = period_key(fact.day, period)
        keys.add(key)
        for value in set(fact.values(field_name)):
            counts[value][key].append(fact.id)
    if not keys:
        return []
    periods = period_range(min(keys), max(keys), period)
    candidates: list[tuple[str, str, int, int, float, list[str]]] = []
    for value, per_period in counts.items():
        # Only periods with a full window before them inside the data are tested.
        for key in periods[window:]:
            current = len(per_period.get(key, ()))
            if current < min_count:
                continue
            base = sum(len(per_period.get(shift(key, period, -k), ())) for k in range(1, window + 1))
            p_value = binomial_upper_tail(current, current + base, 1.0 / (window + 1))
            candidates.append((value, key, current, base, p_value, per_period[key]))
    adjusted = benjamini_hochberg([c[4] for c in candidates])
    found = []
    for (value, key, current, base, p, ids), p_adj in zip(candidates, adjusted):
        if p_adj <= alpha:
            mean = base / window
            found.append(
                Surge(value, key, current, round(mean, 2), window, p, p_adj,
                      round(current / mean, 2) if mean else None, tuple(ids))
            )
    found.sort(key=lambda s: (s.p_adjusted, s.period, s.value))
    return found

