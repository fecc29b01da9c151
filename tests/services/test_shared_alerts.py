"""Alerts with several instances on one PostgreSQL: the leader's rules see every instance's calls,
and an incident is announced once, and resolved once, even across a change of leader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lngate.bootstrap import Gateway, Overrides
from lngate.errors import NoProviderAvailable
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.store import Database
from lngate.store.tables import alert_history
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.instances import RecordingChannel, eventually, instance_settings, running_instance

pytestmark = pytest.mark.postgres

REQUEST = InvoiceRequest(amount_sat=21, description="shared alerts", expiry=600)
SETTINGS = {
    "alert_cooldown_seconds": 0,
    "breaker_failure_threshold": 1000,  # every create reaches LNbits: the rules count calls
    "health_check_interval": 3600,  # no probe during the test but the first
}


@pytest.fixture
async def double() -> AsyncIterator[LNbitsDouble]:
    async with LNbitsDouble() as lnbits:
        yield lnbits


async def start(stack: AsyncExitStack, url: str, tmp: Path, double: LNbitsDouble,
                channel: RecordingChannel) -> Gateway:
    """One more instance, with its own LNbits client to the shared double."""
    provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=1.0),
                              make_session(1.0))
    gateway = await stack.enter_async_context(running_instance(
        instance_settings(url, tmp, **SETTINGS),
        Overrides(providers=[provider], alert_channels=[channel],
                  leadership_retry_interval=0.2)))
    gateway.payee_keys.pin(provider.name, FAKE_NODE_PUBKEY)
    return gateway


async def alerts(url: str) -> list[tuple[str, str, str]]:
    db = Database.from_url(url)
    try:
        async with db.connect() as conn:
            rows = await conn.execute(select(alert_history.c.rule, alert_history.c.provider,
                                             alert_history.c.kind).order_by(alert_history.c.id))
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await db.aclose()


async def fail_creates(gateways: list[Gateway], per_gateway: int) -> None:
    """Failing creates on each gateway in turn, each one's calls stored before the next's (as
    instances' calls made seconds apart would be; each recorder otherwise flushes every
    0.5 s, so a later instance's failures could be stored after an earlier one's successes)."""
    for gateway in gateways:
        for _ in range(per_gateway):
            with pytest.raises(NoProviderAvailable):
                await create_invoice(REQUEST, gateway.invoices)
        await gateway.recorder.flush()


async def succeed_creates(gateways: list[Gateway], per_gateway: int) -> None:
    """Successful creates on each gateway in turn, stored in that order (see above)."""
    for gateway in gateways:
        for _ in range(per_gateway):
            await create_invoice(REQUEST, gateway.invoices)
        await gateway.recorder.flush()


async def test_a_provider_failing_on_three_instances_is_one_incident(
    shared_postgres_url: str, tmp_path: Path, double: LNbitsDouble,
) -> None:
    """LNbits failing on all three instances fires one alert (each instance alone saw enough
    failures to fire); recovering resolves it once; each is announced once on the channels."""
    channels = [RecordingChannel() for _ in range(3)]
    async with AsyncExitStack() as stack:
        gateways = [await start(stack, shared_postgres_url, tmp_path, double, c)
                    for c in channels]
        assert [g.leadership.is_leader for g in gateways] == [True, False, False]
        double.always("create", Reply(503, json={"detail": "down"}))
        await fail_creates(gateways, 3)  # 6 failed calls each (one retry per create)
        await eventually(lambda: alerts(shared_postgres_url))
        double.always("create", None)
        await succeed_creates(gateways, 2)
        await eventually(lambda: _kinds(alerts(shared_postgres_url), ["fired", "resolved"]))
        await asyncio.sleep(2)  # time for any duplicate to show up
        history = await alerts(shared_postgres_url)
    assert history == [("failures", "lnbits", "fired"), ("failures", "lnbits", "resolved")]
    sent = [m.subject for c in channels for m in c.messages]
    assert len(sent) == 2 and "ALERT" in sent[0] and "RESOLVED" in sent[1]
    assert channels[0].messages and not channels[1].messages and not channels[2].messages


async def test_the_next_leader_resolves_the_incident_the_last_one_announced(
    shared_postgres_url: str, tmp_path: Path, double: LNbitsDouble,
) -> None:
    """When the leader goes away during an incident, the new leader takes it up from the
    database: it does not announce it again, and announces its end once."""
    channel = RecordingChannel()
    async with AsyncExitStack() as stack:
        leader_stack = await stack.enter_async_context(AsyncExitStack())
        first = await start(leader_stack, shared_postgres_url, tmp_path, double, channel)
        second = await start(stack, shared_postgres_url, tmp_path, double, channel)
        double.always("create", Reply(503, json={"detail": "down"}))
        await fail_creates([first, second], 2)
        await eventually(lambda: alerts(shared_postgres_url))
        await leader_stack.aclose()  # the leader's process ends
        await eventually(lambda: second.leadership.is_leader, timeout=5)
        await fail_creates([second], 2)  # still failing: no second "fired"
        double.always("create", None)
        await succeed_creates([second], 2)
        await eventually(lambda: _kinds(alerts(shared_postgres_url), ["fired", "resolved"]))
        await asyncio.sleep(1.5)
        history = await alerts(shared_postgres_url)
    assert [kind for _, _, kind in history] == ["fired", "resolved"]
    assert [m.subject.split("]")[0] for m in channel.messages] == ["[lngate ALERT",
                                                                  "[lngate RESOLVED"]


async def _kinds(rows: Any, expected: list[str]) -> bool:
    return [kind for _, _, kind in await rows] == expected
