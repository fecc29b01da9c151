"""The real LNbits stopped past the (shortened) threshold: alert to Slack and SMTP, then resolved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from lngate.store.tables import alert_history
from tests.peers.alert_sinks import SmtpSink, WebhookReceiver, wait_for
from tests.peers.lnbits_peer import LNbitsPeer

pytestmark = pytest.mark.lnbits


async def test_lnbits_outage_alerts_and_resolution_reach_slack_discord_and_email(
    gateway_factory: Callable[..., Any], lnbits_peer: LNbitsPeer
) -> None:
    """Stopping LNbits for longer than ALERT_UNAVAILABLE_SECONDS sends one alert on every
    channel; starting it again sends one resolution; both are in the alert history."""
    async with WebhookReceiver() as hooks:
        with SmtpSink() as smtp:
            settings = {
                "lnbits_endpoint": lnbits_peer.url,
                "lnbits_invoice_key": lnbits_peer.merchant_inkey,
                "lightning_test_mode": False,
                "health_check_interval": 0.3,
                "health_check_timeout": 0.5,
                "alert_unavailable_seconds": 1.5,
                "alert_cooldown_seconds": 0,
                "alert_slack_webhook_url": hooks.url("slack"),
                "alert_discord_webhook_url": hooks.url("discord"),
                "alert_email": "ops@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "email_from": "lngate@localhost",
            }
            async with gateway_factory(**settings) as http:
                monitoring = http.app.state.gateway.monitoring  # type: ignore[attr-defined]
                await wait_for(lambda: monitoring.health.latest.get("lnbits") is not None
                               and monitoring.health.latest["lnbits"].healthy, 10,
                               "a healthy probe of LNbits")
                assert hooks.received == [] and smtp.messages == []
                await asyncio.to_thread(lnbits_peer.stop)
                try:
                    await wait_for(lambda: len(hooks.bodies("slack")) >= 1
                                   and len(smtp.messages) >= 1
                                   and len(hooks.bodies("discord")) >= 1, 30,
                                   "the unavailability alert on Slack, Discord and email")
                    assert (await http.get("/readyz")).status_code == 503
                    await asyncio.sleep(1.0)  # more failing probes: still one alert
                    assert len(hooks.bodies("slack")) == 1 and len(smtp.messages) == 1
                finally:
                    if not lnbits_peer.is_running:
                        await asyncio.to_thread(lnbits_peer.start)
                await wait_for(lambda: len(hooks.bodies("slack")) >= 2
                               and len(smtp.messages) >= 2
                               and len(hooks.bodies("discord")) >= 2, 30,
                               "the resolution on Slack, Discord and email")
                assert (await http.get("/readyz")).status_code == 200
                db = http.app.state.gateway.db  # type: ignore[attr-defined]
                await wait_for(lambda: monitoring.dispatcher.pending == 0, 5, "delivery")
                async with db.connect() as conn:
                    rows = (await conn.execute(
                        select(alert_history.c.rule, alert_history.c.provider,
                               alert_history.c.kind, alert_history.c.deliveries)
                        .order_by(alert_history.c.id))).all()

    fired, resolved = hooks.bodies("slack")
    assert "ALERT" in fired["text"] and "lnbits" in fired["text"] and "unavailable" in fired["text"]
    assert "RESOLVED" in resolved["text"] and "available again" in resolved["text"]
    assert "ALERT" in hooks.bodies("discord")[0]["content"]
    alert_mail, resolved_mail = smtp.messages[:2]
    assert alert_mail["To"] == "ops@example.com"
    assert alert_mail["Subject"].startswith("[lngate ALERT] lnbits: unavailable for")
    assert resolved_mail["Subject"].startswith("[lngate RESOLVED] lnbits: available again")
    unavailable = [r for r in rows if r.rule == "unavailable"]
    assert [(r.provider, r.kind) for r in unavailable] == [("lnbits", "fired"),
                                                          ("lnbits", "resolved")]
    for row in unavailable:
        assert row.deliveries == {"email": "ok", "slack": "ok", "discord": "ok"}
    assert lnbits_peer.is_running
