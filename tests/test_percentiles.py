"""One percentile definition: nearest rank on raw samples, and the bucketed estimate of the
metrics API lands in the bucket of that very sample."""

from __future__ import annotations

import random

import pytest

from lngate.percentiles import nearest_rank, percentile
from lngate.services.metrics_queries import CallAggregate
from lngate.store.monitoring import bucket_upper_ms, latency_bucket


def test_percentile_is_the_sample_of_nearest_rank() -> None:
    """The q-th percentile is the smallest sample with at least q % of samples at or below it."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 7) == 7.0  # q / 100 × n would round 7.000000000000001 up to 8
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.3], 95) == 0.3


def test_rank_is_exact_for_whole_percentages() -> None:
    """The rank is ceil(q × n / 100), computed without a float rounding up past an integer."""
    for n in range(1, 300):
        for q in range(1, 101):
            assert nearest_rank(q, n) == max(1, -(-q * n // 100))


def test_bad_arguments_are_refused() -> None:
    """No samples, or q outside (0, 100], is an error, not a made-up number."""
    with pytest.raises(ValueError):
        percentile([], 50)
    for q in (0, -1, 100.5):
        with pytest.raises(ValueError):
            nearest_rank(q, 10)


@pytest.mark.parametrize("seed", range(20))
def test_bucketed_estimate_lies_in_the_bucket_of_the_exact_percentile(seed: int) -> None:
    """From latency buckets, p50/p95/p99 fall inside the bucket that holds the exact
    nearest-rank sample, so within one bucket width (12 %) of it."""
    rng = random.Random(seed)
    durations = [rng.lognormvariate(0, 1.2) * 80 for _ in range(rng.randint(1, 3000))]
    aggregate = CallAggregate()
    for duration in durations:
        aggregate.buckets[latency_bucket(duration)] += 1
    for q in (50, 95, 99):
        exact = percentile(durations, q)
        bucket = latency_bucket(exact)
        estimate = aggregate.percentile_ms(q)
        assert estimate is not None
        lower = bucket_upper_ms(bucket - 1) if bucket else 0.0
        assert round(lower, 2) <= estimate <= round(bucket_upper_ms(bucket), 2) + 0.01
        assert estimate == pytest.approx(exact, rel=0.13)
