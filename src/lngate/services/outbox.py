"""Delivering the outbox: claim due emails, render, send, record; retry with backoff.

Rows are written by settlement in its transaction, one per ``(order, kind)``; this worker only
delivers them. A claimed row is hidden for a lease, so a process that dies mid-send leaves it
to be sent again after the lease (at least once; each copy carries the same ``Message-ID`` and
Resend ``Idempotency-Key``). A failure is retried after ``backoff * 2**(attempt-1)`` seconds
(capped), up to ``max_attempts``; a permanent refusal is not retried.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from lngate.notify.email import Email, EmailError, EmailSender
from lngate.notify.templates import EmailTemplates
from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store.outbox import (
    FAILED,
    SKIPPED,
    OutboxRow,
    claim_due,
    mark_final,
    mark_retry,
    mark_sent,
)

log = structlog.get_logger("lngate.outbox")


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """Delivery policy."""

    poll_interval: float = 2.0
    max_attempts: int = 8
    backoff: float = 30.0
    max_backoff: float = 3600.0
    lease: float = 120.0
    batch_size: int = 20
    shop_email: str | None = None
    message_id_domain: str = "lngate.local"


@dataclass(slots=True)
class DeliveryReport:
    """What one delivery pass did."""

    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def handled(self) -> int:
        """Rows claimed in the pass."""
        return sum(self.outcomes.values())


def retry_delay(attempt: int, config: OutboxConfig) -> float:
    """Seconds before the next try after failed attempt number ``attempt`` (1-based)."""
    return float(min(config.backoff * 2 ** max(attempt - 1, 0), config.max_backoff))


async def deliver_due(
    *, db: Database, sender: EmailSender, templates: EmailTemplates, clock: WallClock,
    config: OutboxConfig,
) -> DeliveryReport:
    """Claim and deliver every due row, batch after batch, until none is due."""
    report = DeliveryReport()
    while True:
        now = clock()
        async with db.transaction() as conn:
            rows = await claim_due(conn, now=now, lease_until=now + timedelta(seconds=config.lease),
                                   limit=config.batch_size)
        for row in rows:
            report.outcomes[await _deliver(row, db=db, sender=sender, templates=templates,
                                           clock=clock, config=config)] += 1
        if len(rows) < config.batch_size:
            return report


async def _deliver(
    row: OutboxRow, *, db: Database, sender: EmailSender, templates: EmailTemplates,
    clock: WallClock, config: OutboxConfig,
) -> str:
    context = {"outbox_id": row.id, "order_id": row.order_id, "kind": row.kind,
               "attempt": row.attempts, "sender": sender.name}
    recipient = row.recipient or config.shop_email
    if recipient is None:
        async with db.transaction() as conn:
            await mark_final(conn, row.id, status=SKIPPED, error="SHOP_EMAIL is not set")
        log.warning("email_skipped", reason="SHOP_EMAIL is not set", **context)
        return "skipped"
    try:
        rendered = templates.render(row.kind, row.payload)
    except Exception as exc:  # UnknownTemplate, or a template bug: it must not block the queue
        async with db.transaction() as conn:
            await mark_final(conn, row.id, status=FAILED,
                             error=f"render: {type(exc).__name__}: {exc}")
        log.error("email_render_failed", error=type(exc).__name__, **context)
        return "failed"
    email = Email(
        to=recipient, subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=f"<{row.order_id}.{row.kind}@{config.message_id_domain}>",
        idempotency_key=f"lngate-{row.order_id}-{row.kind}",
    )
    try:
        await sender.send(email)
    except EmailError as exc:
        if exc.permanent or row.attempts >= config.max_attempts:
            async with db.transaction() as conn:
                await mark_final(conn, row.id, status=FAILED, error=str(exc))
            log.error("email_failed", error=str(exc), permanent=exc.permanent, **context)
            return "failed"
        delay = retry_delay(row.attempts, config)
        async with db.transaction() as conn:
            await mark_retry(conn, row.id, error=str(exc),
                             at=clock() + timedelta(seconds=delay))
        log.warning("email_retry", error=str(exc), retry_in_s=delay, **context)
        return "retry"
    async with db.transaction() as conn:
        await mark_sent(conn, row.id, clock())
    log.info("email_sent", **context)
    return "sent"


async def run_outbox(
    *, db: Database, sender: EmailSender, templates: EmailTemplates, clock: WallClock,
    config: OutboxConfig, wake: asyncio.Event | None = None,
) -> None:
    """Deliver now, then every ``poll_interval`` seconds or as soon as ``wake`` is set, forever."""
    while True:
        try:
            await deliver_due(db=db, sender=sender, templates=templates, clock=clock,
                              config=config)
        except Exception as exc:  # a database hiccup: try again at the next poll
            log.error("outbox_pass_failed", error=type(exc).__name__, detail=str(exc)[:200])
        if wake is None:
            await asyncio.sleep(config.poll_interval)
            continue
        try:
            await asyncio.wait_for(wake.wait(), config.poll_interval)
        except TimeoutError:
            pass
        wake.clear()
