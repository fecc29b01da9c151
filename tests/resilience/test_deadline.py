import asyncio

import pytest

from lngate.errors import ProviderUnavailable
from lngate.resilience.deadline import (
    AttemptTimeoutPolicy,
    Deadline,
    LatencyWindow,
    bounded,
    is_timeout,
    percentile,
)
from tests.resilience import FakeClock


def test_percentile_is_nearest_rank():
    """p50 and p95 use the nearest-rank method."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([0.3], 95) == 0.3


def test_latency_window_keeps_the_last_n_per_provider():
    """Each provider keeps only its last ``size`` latencies."""
    window = LatencyWindow(size=3)
    for v in (10.0, 1.0, 2.0, 3.0):
        window.add("lnbits", v)
    window.add("nwc", 7.0)
    assert window.count("lnbits") == 3
    assert window.p95("lnbits") == 3.0
    assert window.percentile("nwc", 50) == 7.0
    assert window.p95("test") is None


def test_timeout_is_default_with_too_few_samples():
    """Until min_samples latencies are known, the timeout is the default."""
    policy = AttemptTimeoutPolicy(min_samples=5)
    for _ in range(4):
        policy.observe("lnbits", 0.1)
    assert policy.timeout_for("lnbits") == 1.5


def test_timeout_is_p95_times_k_clamped():
    """The timeout is p95 × k, clamped between floor and ceiling."""
    policy = AttemptTimeoutPolicy(k=3.0, floor=0.25, ceiling=2.0)
    for _ in range(10):
        policy.observe("mid", 0.2)
        policy.observe("fast", 0.01)
        policy.observe("slow", 1.0)
    assert policy.timeout_for("mid") == pytest.approx(0.6)
    assert policy.timeout_for("fast") == 0.25
    assert policy.timeout_for("slow") == 2.0


def test_policy_refuses_inconsistent_bounds():
    """floor <= default <= ceiling is required."""
    with pytest.raises(ValueError):
        AttemptTimeoutPolicy(floor=1.0, default=0.5)


def test_deadline_remaining_follows_the_clock():
    """remaining() decreases with the clock and never goes below zero."""
    clock = FakeClock()
    deadline = Deadline.after(3.0, clock=clock)
    clock.advance(1.0)
    assert deadline.remaining() == 2.0
    assert not deadline.expired()
    clock.advance(5.0)
    assert deadline.remaining() == 0.0
    assert deadline.expired()


async def test_bounded_turns_a_hang_into_provider_unavailable():
    """A call running past its timeout is cancelled and reported as a timeout."""
    cancelled = asyncio.Event()

    async def hang():
        try:
            await asyncio.sleep(10)
        finally:
            cancelled.set()

    with pytest.raises(ProviderUnavailable, match="timed out after 0.02 s") as info:
        await bounded(hang, 0.02, provider="lnbits")
    assert is_timeout(info.value)
    assert info.value.provider == "lnbits"
    assert cancelled.is_set()


async def test_bounded_passes_other_errors_through():
    """Errors other than the timeout are raised unchanged and are not timeouts."""

    async def down():
        raise ProviderUnavailable("connection refused")

    with pytest.raises(ProviderUnavailable, match="refused") as info:
        await bounded(down, 1.0)
    assert not is_timeout(info.value)
