"""Alert channels: Slack and Discord incoming webhooks, and email.

Each channel sends one :class:`AlertMessage` and raises :class:`AlertDeliveryError` when it
could not; the caller records the outcome per channel. Every network call has an explicit
timeout. This module knows nothing of the rules or the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from lngate.notify.email import Email, EmailError, EmailSender

DISCORD_MAX_CONTENT = 2000


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What a channel sends: a one-line subject and a plain-text body."""

    subject: str
    text: str


class AlertDeliveryError(Exception):
    """A channel could not deliver an alert."""


class AlertChannel(Protocol):
    """Somewhere alerts go."""

    name: str

    async def send(self, message: AlertMessage) -> None:
        """Deliver ``message`` or raise :class:`AlertDeliveryError`."""
        ...


class _JsonWebhook:
    """POST a small JSON body to an incoming-webhook URL."""

    name = "webhook"

    def __init__(self, url: str, session: aiohttp.ClientSession, *, timeout: float = 5.0) -> None:
        self._url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def body(self, message: AlertMessage) -> dict[str, str]:
        raise NotImplementedError

    async def send(self, message: AlertMessage) -> None:
        """POST the message; any non-2xx answer or transport failure raises."""
        try:
            async with self._session.post(self._url, json=self.body(message),
                                          timeout=self._timeout, allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    detail = (await response.text())[:200]
                    raise AlertDeliveryError(f"{self.name}: HTTP {response.status} {detail}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AlertDeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from exc


class SlackWebhook(_JsonWebhook):
    """A Slack incoming webhook: ``{"text": ...}``."""

    name = "slack"

    def body(self, message: AlertMessage) -> dict[str, str]:
        """Slack's payload."""
        return {"text": f"*{message.subject}*\n{message.text}"}


class DiscordWebhook(_JsonWebhook):
    """A Discord webhook: ``{"content": ...}`` (at most 2,000 characters)."""

    name = "discord"

    def body(self, message: AlertMessage) -> dict[str, str]:
        """Discord's payload."""
        return {"content": f"**{message.subject}**\n{message.text}"[:DISCORD_MAX_CONTENT]}


class EmailAlerts:
    """Alerts by email to one address, through the gateway's email sender (SMTP, Resend or the
    demo folder: :mod:`lngate.notify.email`). Sent at once, not through the outbox, whose rows
    belong to orders; a failure is recorded in the alert's history."""

    name = "email"

    def __init__(self, to: str, sender: EmailSender) -> None:
        self._to = to
        self._sender = sender

    async def send(self, message: AlertMessage) -> None:
        """Send the alert to the configured address."""
        try:
            await self._sender.send(Email(to=self._to, subject=message.subject, text=message.text))
        except EmailError as exc:
            raise AlertDeliveryError(f"email: {exc}") from exc
