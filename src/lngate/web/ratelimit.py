"""Per-client rate limits with the ``limits`` library (memory, or Redis when configured)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may proceed, and when to retry if not."""

    allowed: bool
    retry_after: int = 0


class RateLimiter:
    """A sliding-window-counter limit per key (the client IP), e.g. ``60/minute``.

    The sliding window counter keeps two counters per key; the exact moving window keeps one
    timestamp per hit (memory and time grow with the limit) and cost a quarter of the
    gateway's CPU per invoice in the capacity benchmark.
    """

    def __init__(self, limit: str, *, per_route: Mapping[str, str] | None = None,
                 redis_url: str | None = None) -> None:
        """``limit`` applies to every route not named in ``per_route``."""
        self.item: RateLimitItem = parse(limit)
        self._items = {route: parse(value) for route, value in (per_route or {}).items()}
        uri = "async+" + redis_url if redis_url else "async+memory://"
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri))

    async def check(self, route: str, key: str) -> RateDecision:
        """Count one hit for ``key`` on ``route``; refuse it past the route's limit."""
        item = self._items.get(route, self.item)
        if await self._limiter.hit(item, route, key):
            return RateDecision(True)
        stats = await self._limiter.get_window_stats(item, route, key)
        return RateDecision(False, max(1, math.ceil(stats.reset_time - time.time())))
