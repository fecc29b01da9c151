"""The one percentile definition of lngate: the nearest rank.

For ``n`` raw samples, the ``q``-th percentile (0 < q <= 100) is the sample of rank
``ceil(q / 100 × n)`` (1-based) in ascending order: the smallest sample such that at least
``q`` % of the samples are less than or equal to it. It is always one of the samples (no
interpolation between two), so "p95 = 0.8 s" means a call really took 0.8 s. The router (its
demotion rule and snapshot), the attempt timeouts, the tests and the benchmark scripts use
:func:`percentile`.

The metrics API cannot keep millions of raw durations, so it estimates from logarithmic
buckets (:class:`lngate.services.metrics_queries.CallAggregate.percentile_ms`) with the same
rank: the bucket it picks holds the very sample :func:`percentile` would return, and the
estimate (log-linear interpolation inside that bucket, each of its samples taken at the middle
of its share) lies within the bucket's bounds, so within one bucket width (a factor of
10^(1/20), about 12 %) of the exact nearest-rank value, and within half of it (about 6 %) for a
lone sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(q: float, n: int) -> int:
    """The 1-based rank of the ``q``-th percentile among ``n`` ordered samples (``n`` > 0)."""
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    return max(1, math.ceil(q * n / 100))  # q × n first: exact for whole q, unlike q / 100


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    return sorted(values)[nearest_rank(q, len(values)) - 1]
