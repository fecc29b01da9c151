"""Several gateway instances on one PostgreSQL (each a whole app, lifespan included): a checkout
page on one sees a settlement made by another within a second, the test provider's invoices
are known to all of them and outlive a restart, they are one test node (one key), one
instance leads, the others follow its probes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from lngate.bolt11.decode import decode
from tests.web.payments import order_body
from tests.web.test_events import parse

pytestmark = pytest.mark.postgres


async def settled_elsewhere_within(first: httpx.AsyncClient, second: httpx.AsyncClient,
                                   ) -> tuple[list[str], float]:
    """Stream an invoice's status from ``first`` while ``second`` settles it; the statuses
    streamed and the seconds between the settlement's answer and the stream's end."""
    created = await first.post("/api/orders", json=order_body("dazpay"))
    assert created.status_code == 201, created.text
    payment_hash = created.json()["invoice"]["payment_hash"]
    stream = asyncio.create_task(first.get(f"/api/invoices/{payment_hash}/events"))
    await asyncio.sleep(0.5)  # the stream is open and has sent "pending"
    paid = await second.post(f"/api/demo/pay/{payment_hash}")
    assert paid.status_code == 200 and paid.json()["settlement"] == "settled", paid.text
    paid_at = time.monotonic()
    response = await asyncio.wait_for(stream, 10)
    return [data["status"] for _, data in parse(response.text)], time.monotonic() - paid_at


async def test_a_settlement_on_one_instance_reaches_a_stream_on_another_at_once(
    gateway_factory: Callable[..., Any], shared_postgres_url: str,
) -> None:
    """Settled on B, the invoice's event stream on A says so within a second (NOTIFY at the
    commit), long before A's own 30-second re-read."""
    settings = {"database_url": shared_postgres_url, "sse_recheck_seconds": 30}
    async with gateway_factory(**settings) as first, gateway_factory(**settings) as second:
        statuses, delay = await settled_elsewhere_within(first, second)
    assert statuses == ["pending", "settled"]
    assert delay < 1.0, f"the stream ended {delay:.2f} s after the settlement"


@pytest.mark.redis
async def test_with_redis_the_settlement_travels_by_pub_sub(
    gateway_factory: Callable[..., Any], shared_postgres_url: str, redis_url: str,
) -> None:
    """With REDIS_URL set the announcement goes through Redis, just as fast."""
    settings = {"database_url": shared_postgres_url, "sse_recheck_seconds": 30,
                "redis_url": redis_url}
    async with gateway_factory(**settings) as first, gateway_factory(**settings) as second:
        transport = first.app.state.gateway.events.transport  # type: ignore[attr-defined]
        assert type(transport).__name__ == "RedisTransport"
        statuses, delay = await settled_elsewhere_within(first, second)
    assert statuses == ["pending", "settled"]
    assert delay < 1.0, f"the stream ended {delay:.2f} s after the settlement"


async def test_test_provider_invoices_are_known_to_every_instance_and_after_a_restart(
    gateway_factory: Callable[..., Any], shared_postgres_url: str,
) -> None:
    """An invoice the test provider issued on A is paid through B (the demo wallet), and one
    issued before a restart can still be paid after it."""
    settings = {"database_url": shared_postgres_url}
    async with gateway_factory(**settings) as first, gateway_factory(**settings) as second:
        created = await first.post("/api/create-invoice", json={"amount": 21, "description": "x"})
        payment_hash = created.json()["invoice"]["payment_hash"]
        pending = await second.get("/api/check-invoice", params={"id": payment_hash})
        assert pending.json() == {"status": "pending"}
        paid = await second.post(f"/api/demo/pay/{payment_hash}")
        assert paid.status_code == 200, paid.text
        status = await first.get("/api/check-invoice", params={"id": payment_hash})
        assert status.json() == {"status": "settled"}
        before_restart = await first.post("/api/create-invoice",
                                          json={"amount": 5, "description": "y"})
    async with gateway_factory(**settings) as restarted:
        later_hash = before_restart.json()["invoice"]["payment_hash"]
        paid = await restarted.post(f"/api/demo/pay/{later_hash}")
        assert paid.status_code == 200, paid.text  # settled by it, or by its reconciler
        status = await restarted.get("/api/check-invoice", params={"id": later_hash})
        assert status.json() == {"status": "settled"}


async def test_one_instance_leads_and_the_other_follows_its_probes(
    gateway_factory: Callable[..., Any], shared_postgres_url: str,
) -> None:
    """The first instance leads and runs the work done once; the second runs none of it,
    takes its providers' health from the leader's stored probes, and is ready."""
    settings = {"database_url": shared_postgres_url}
    async with gateway_factory(**settings) as first, gateway_factory(**settings) as second:
        leader = first.app.state.gateway  # type: ignore[attr-defined]
        follower = second.app.state.gateway  # type: ignore[attr-defined]
        assert leader.leadership.is_leader and not follower.leadership.is_leader
        assert set(leader.leadership.running_loops) == {
            "health-probes", "alert-rules", "alert-delivery", "metrics-rollup",
            "metrics-retention", "reconciler"}
        assert follower.leadership.running_loops == ["health-follow"]
        probe = leader.monitoring.health.latest["test"]
        assert follower.monitoring.health.latest["test"] == probe
        assert follower.monitoring.health.rounds == 0  # it probed nothing itself
        ready = await second.get("/readyz")
        assert ready.status_code == 200 and ready.json()["role"] == "follower"
        assert (await first.get("/readyz")).json()["role"] == "leader"
        metrics = (await second.get("/metrics")).text
        assert "lngate_leader 0.0" in metrics
        assert "lngate_leader 1.0" in (await first.get("/metrics")).text


async def test_every_instance_is_one_test_node(
    gateway_factory: Callable[..., Any], shared_postgres_url: str,
) -> None:
    """In demo mode two instances on one database sign with one key, the one the leader's
    probe reports, so the follower applies that probe without a payee_key_mismatch; their
    invoices all name that payee, and a restarted instance keeps it."""
    settings = {"database_url": shared_postgres_url}
    with capture_logs() as logs:
        async with gateway_factory(**settings) as first, gateway_factory(**settings) as second:
            gateways = [c.app.state.gateway for c in (first, second)]  # type: ignore[attr-defined]
            key = gateways[0].test_provider.node_pubkey
            assert gateways[1].test_provider.node_pubkey == key
            assert gateways[1].monitoring.health.latest["test"].node_pubkey == key
            payees = set()
            for client in (first, second):
                created = await client.post("/api/create-invoice",
                                            json={"amount": 21, "description": "one node"})
                assert created.status_code == 200, created.text
                payees.add(decode(created.json()["invoice"]["payment_request"]).payee)
            assert payees == {key}
    assert [e for e in logs if e["event"] == "payee_key_mismatch"] == []
    async with gateway_factory(**settings) as restarted:
        assert restarted.app.state.gateway.test_provider.node_pubkey == key  # type: ignore[attr-defined]
