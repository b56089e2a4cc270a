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
    # scipy takes most of a second to import: only the commands that test for surges pay it
    from scipy.stats import binomtest, false_discovery_control

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
            result = binomtest(current, current + base, 1.0 / (window + 1), alternative="greater")
            candidates.append((value, key, current, base, float(result.pvalue), per_period[key]))
    adjusted = [float(p) for p in false_discovery_control([c[4] for c in candidates])] if candidates else []
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

