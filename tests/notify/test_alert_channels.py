"""Alert channels against local receivers: payload shapes, failures and timeouts reported."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from lngate.notify.alerts import (
    AlertDeliveryError,
    AlertMessage,
    DiscordWebhook,
    EmailAlerts,
    SlackWebhook,
)
from lngate.notify.email import SmtpConfig, SmtpEmailSender
from tests.peers.alert_sinks import SmtpSink, WebhookReceiver

MESSAGE = AlertMessage("[lngate ALERT] lnbits: 4 of the last 5 calls failed", "details here")


async def test_slack_and_discord_payloads() -> None:
    """Slack gets {"text"}, Discord gets {"content"}, both carrying subject and body."""
    async with WebhookReceiver() as receiver, aiohttp.ClientSession() as session:
        await SlackWebhook(receiver.url("slack"), session).send(MESSAGE)
        await DiscordWebhook(receiver.url("discord"), session).send(MESSAGE)
    [slack] = receiver.bodies("slack")
    [discord] = receiver.bodies("discord")
    assert set(slack) == {"text"} and MESSAGE.subject in slack["text"]
    assert "details here" in slack["text"]
    assert set(discord) == {"content"} and MESSAGE.subject in discord["content"]


async def test_discord_content_is_capped() -> None:
    """Discord refuses content over 2,000 characters, so it is cut."""
    async with WebhookReceiver(status=204) as receiver, aiohttp.ClientSession() as session:
        await DiscordWebhook(receiver.url("discord"), session).send(
            AlertMessage("s", "x" * 5000))
    assert len(receiver.bodies("discord")[0]["content"]) == 2000


async def test_webhook_error_status_raises() -> None:
    """A non-2xx answer is a delivery failure naming the channel and status."""
    async with WebhookReceiver(status=500) as receiver, aiohttp.ClientSession() as session:
        with pytest.raises(AlertDeliveryError, match="slack: HTTP 500"):
            await SlackWebhook(receiver.url("slack"), session).send(MESSAGE)


async def test_unreachable_or_hung_webhook_raises_within_its_timeout() -> None:
    """A refused connection or a server that never answers fails within the timeout."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AlertDeliveryError, match="slack"):
            await SlackWebhook("http://127.0.0.1:9/hook", session, timeout=1).send(MESSAGE)

        release = asyncio.Event()

        async def hang(_request: web.Request) -> web.Response:
            await release.wait()
            return web.Response()

        app = web.Application()
        app.router.add_post("/hook", hang)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(AlertDeliveryError, match="discord"):
                await DiscordWebhook(f"http://127.0.0.1:{port}/hook", session,
                                     timeout=0.3).send(MESSAGE)
            assert loop.time() - started < 2
        finally:
            release.set()
            await runner.cleanup()


async def test_email_alert_reaches_a_real_smtp_server() -> None:
    """The email channel sends through the gateway's SMTP sender to ALERT_EMAIL."""
    with SmtpSink() as smtp:
        sender = SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=smtp.port,
                                            sender="lngate@localhost", tls="none", timeout=5))
        await EmailAlerts("ops@example.com", sender).send(MESSAGE)
        [mail] = smtp.messages
    assert mail["To"] == "ops@example.com" and mail["Subject"] == MESSAGE.subject
    assert "details here" in mail.get_content()


async def test_email_failure_is_a_delivery_error() -> None:
    """An SMTP server that cannot be reached is reported as a failed delivery."""
    sender = SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=9, sender="lngate@localhost",
                                        tls="none", timeout=1))
    with pytest.raises(AlertDeliveryError, match="email"):
        await EmailAlerts("ops@example.com", sender).send(MESSAGE)
