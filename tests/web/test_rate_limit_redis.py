"""With REDIS_URL, the per-IP rate limit is shared by every gateway instance (real Redis)."""

from __future__ import annotations

import coredis
import pytest


@pytest.fixture
async def empty_redis(redis_url: str) -> str:
    """The tests' Redis database (tests/peers/services.py), emptied."""
    client = coredis.Redis.from_url(redis_url)
    await client.flushdb()
    return redis_url


async def test_two_instances_share_one_limit(gateway_factory, empty_redis: str) -> None:  # type: ignore[no-untyped-def]
    """Hits on two gateways with the same Redis count against one limit per client IP."""
    body = {"amount": 5, "description": "x"}
    async with gateway_factory(rate_limit="3/minute", redis_url=empty_redis) as first, \
            gateway_factory(rate_limit="3/minute", redis_url=empty_redis) as second:
        statuses = [(await first.post("/api/create-invoice", json=body)).status_code,
                    (await second.post("/api/create-invoice", json=body)).status_code,
                    (await first.post("/api/create-invoice", json=body)).status_code,
                    (await second.post("/api/create-invoice", json=body)).status_code]
    assert statuses == [200, 200, 200, 429]
