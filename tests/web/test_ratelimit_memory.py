"""The in-memory rate-limit counters follow the PostgreSQL ones: same sliding window, same
Retry-After, and they forget windows no hit can read."""

from __future__ import annotations

from lngate.web.ratelimit import MemoryCounters, RateLimiter

T0 = 1_800_000_000.0  # the start of a minute (divisible by 60)


def test_the_previous_window_counts_less_as_time_passes() -> None:
    """60 hits in one minute, then a quarter into the next the previous minute still weighs
    45, so 15 more pass; half-way it weighs 30 (as tests/store/test_rate_limits.py)."""
    counters = MemoryCounters()

    def one(now: float, key: str = "203.0.113.7"):  # type: ignore[no-untyped-def]
        return counters.hit("create-invoice", key, limit=60, period=60, now=now)

    assert all(one(T0 + 1).allowed for _ in range(60))
    assert not one(T0 + 59).allowed
    assert sum(one(T0 + 75).allowed for _ in range(20)) == 15
    refused = one(T0 + 75)
    assert not refused.allowed and refused.retry_after == 1
    assert sum(one(T0 + 90).allowed for _ in range(20)) == 15
    assert one(T0 + 90, key="198.51.100.1").allowed  # each key its own counters


def test_retry_after_is_at_most_one_period() -> None:
    """A full window refuses with a Retry-After within the period (1 to 60 s a minute)."""
    counters = MemoryCounters()
    for _ in range(3):
        assert counters.hit("a", "k", limit=3, period=60, now=T0 + 0.5).allowed
    refused = counters.hit("a", "k", limit=3, period=60, now=T0 + 0.5)  # exact: 80 s
    assert not refused.allowed and 1 <= refused.retry_after <= 60


def test_routes_and_periods_count_apart() -> None:
    """A route's hits never count against another route's limit."""
    counters = MemoryCounters()
    assert counters.hit("a", "k", limit=1, period=60, now=T0).allowed
    assert not counters.hit("a", "k", limit=1, period=60, now=T0).allowed
    assert counters.hit("b", "k", limit=1, period=60, now=T0).allowed


def test_windows_no_hit_can_read_are_forgotten() -> None:
    """Two periods after a window ended its counter is gone; the current ones stay."""
    counters = MemoryCounters()
    counters.hit("a", "old", limit=5, period=60, now=T0)
    counters.hit("a", "new", limit=5, period=60, now=T0 + 130)
    counters.hit("a", "new", limit=5, period=60, now=T0 + 200)  # prunes (60 s later)
    assert [key for (_, key, _, _) in counters._hits] == ["new", "new"]


async def test_the_limiter_uses_them_without_redis_or_postgresql() -> None:
    """Without Redis or PostgreSQL the limiter's storage is memory, with these counters."""
    now = [T0]
    limiter = RateLimiter("2/minute", clock=lambda: now[0])
    assert limiter.storage == "memory"
    assert [(await limiter.check("create-invoice", "k")).allowed for _ in range(3)] == \
        [True, True, False]
