"""Delivering the outbox: claim due emails, render, send, record; retry with backoff.

Rows are written by settlement in its transaction, one per ``(order, kind)``; this worker only
delivers them. A claimed row is hidden for a lease, so a process that dies mid-send leaves it
to be sent again after the lease (at least once; each copy carries the same ``Message-ID`` and
Resend ``Idempotency-Key``). A failure is retried after ``backoff * 2**(attempt-1)`` seconds
(capped), up to ``max_attempts``; a permanent refusal (including a message that cannot be
built, such as one whose customer text cannot be encoded) is not retried. Each row's outcome is
its own: one bad message is recorded as failed with its reason and never holds up the others
(the sent ones of a batch are recorded together, once the batch is done or a quarter of the
lease has passed), and a row's ``attempts`` never exceeds ``max_attempts`` (a row whose last attempt never
finished is failed once its attempts are used up, not claimed again).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from lngate.notify.email import Email, EmailError, EmailSender, Send, sending
from lngate.notify.templates import EmailTemplates
from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store.outbox import (
    FAILED,
    SKIPPED,
    OutboxRow,
    abandon_exhausted,
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
    """Claim and deliver every due row, batch after batch, until none is due.

    One row never stops the others: whatever goes wrong with it is recorded on it, and a row
    whose delivery itself crashed (a database error while recording) waits for its lease like
    one whose process died. Only a failure to claim ends the pass early.
    """
    report = DeliveryReport()
    while True:
        now = clock()
        async with db.transaction() as conn:
            abandoned = await abandon_exhausted(conn, now=now, max_attempts=config.max_attempts)
            rows = await claim_due(conn, now=now, lease_until=now + timedelta(seconds=config.lease),
                                   limit=config.batch_size, max_attempts=config.max_attempts)
        if abandoned:
            report.outcomes["failed"] += abandoned
            log.error("email_abandoned", count=abandoned, max_attempts=config.max_attempts,
                      reason="the last attempt never finished")
        sent: list[OutboxRow] = []
        async with sending(sender) as send:  # SMTP: the batch over one connection
            for row in rows:
                try:
                    outcome = await _deliver(row, db=db, sender=sender, send=send,
                                             templates=templates, clock=clock, config=config)
                except Exception as exc:  # recording the outcome failed; the lease brings it back
                    _crashed(row, exc)
                    outcome = "crashed"
                if outcome == "sent":
                    sent.append(row)
                else:
                    report.outcomes[outcome] += 1
                if sent and clock() >= now + timedelta(seconds=config.lease / 4):
                    # a slow batch: record what was sent well before the rows' lease ends
                    report.outcomes.update(await _record_sent(sent, db=db, clock=clock,
                                                              sender=sender))
                    sent = []
        report.outcomes.update(await _record_sent(sent, db=db, clock=clock, sender=sender))
        if len(rows) < config.batch_size:
            return report


def _crashed(row: OutboxRow, exc: Exception) -> None:
    log.error("email_delivery_crashed", outbox_id=row.id, order_id=row.order_id, kind=row.kind,
              attempt=row.attempts, error=type(exc).__name__, detail=str(exc)[:200])


async def _record_sent(sent: list[OutboxRow], *, db: Database, clock: WallClock,
                       sender: EmailSender) -> Counter[str]:
    """Record the rows of a batch whose email was accepted, in one statement (one transaction
    per pass instead of one per email). Should that fail, or the process die before it, the
    rows wait for their lease and are sent again, as any row whose send was never recorded."""
    if not sent:
        return Counter()
    try:
        async with db.transaction() as conn:
            await mark_sent(conn, [row.id for row in sent], clock())
    except Exception as exc:
        for row in sent:
            _crashed(row, exc)
        return Counter(crashed=len(sent))
    for row in sent:
        log.info("email_sent", outbox_id=row.id, order_id=row.order_id, kind=row.kind,
                 attempt=row.attempts, sender=sender.name)
    return Counter(sent=len(sent))


def _email_for(row: OutboxRow, recipient: str, templates: EmailTemplates,
               config: OutboxConfig) -> Email:
    rendered = templates.render(row.kind, row.payload)
    return Email(
        to=recipient, subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=f"<{row.order_id}.{row.kind}@{config.message_id_domain}>",
        idempotency_key=f"lngate-{row.order_id}-{row.kind}",
    )


async def _deliver(
    row: OutboxRow, *, db: Database, sender: EmailSender, send: Send,
    templates: EmailTemplates, clock: WallClock, config: OutboxConfig,
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
        email = _email_for(row, recipient, templates, config)
    except Exception as exc:  # UnknownTemplate, or a template bug: it must not block the queue
        async with db.transaction() as conn:
            await mark_final(conn, row.id, status=FAILED,
                             error=f"render: {type(exc).__name__}: {exc}")
        log.error("email_render_failed", error=type(exc).__name__, **context)
        return "failed"
    try:
        await send(email)
    except EmailError as exc:
        error, permanent = str(exc), exc.permanent
    except Exception as exc:  # a sender's bug: retried like an outage, within max_attempts
        error, permanent = f"{sender.name}: {type(exc).__name__}: {str(exc)[:200]}", False
    else:
        return "sent"  # recorded with the rest of its batch (_record_sent)
    if permanent or row.attempts >= config.max_attempts:
        async with db.transaction() as conn:
            await mark_final(conn, row.id, status=FAILED, error=error)
        log.error("email_failed", error=error, permanent=permanent, **context)
        return "failed"
    delay = retry_delay(row.attempts, config)
    async with db.transaction() as conn:
        await mark_retry(conn, row.id, error=error, at=clock() + timedelta(seconds=delay))
    log.warning("email_retry", error=error, retry_in_s=delay, **context)
    return "retry"
