"""``settle``: the one path by which an invoice becomes paid.

Every signal (a status poll, a webhook, an NWC notification, the reconciler) is a doorbell
that calls :func:`settle`; none is proof. ``settle``:

1. asks the issuing provider, which must say paid, for exactly the invoice's amount, with a
   preimage whose SHA-256 is the payment hash when it gives one;
2. in one transaction, moves the invoice from pending (or expired) to paid with a conditional
   ``UPDATE``, and, only when that update changed the row, runs the order's post-payment step and
   queues its emails (:mod:`lngate.services.fulfilment`). A concurrent caller, in this process or
   another, finds zero rows changed and does nothing: exactly once.

A payment confirmed after the invoice's expiry still settles (the money arrived) and is
flagged ``paid_late``. An invoice past its expiry that the provider reports unpaid is marked
expired, with its order.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from lngate.domain import InvoiceState, PaymentState
from lngate.errors import ProviderError
from lngate.resilience.router import Router
from lngate.services.clock import WallClock
from lngate.services.events import InvoiceEvents
from lngate.services.fulfilment import expire_order, fulfil_paid_order
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, get_invoice
from lngate.store.settlement import mark_expired, mark_paid

log = structlog.get_logger("lngate.settlement")

_NOT_PAID_STATES = frozenset({PaymentState.PENDING, PaymentState.FAILED, PaymentState.EXPIRED})


class SettleOutcome(enum.StrEnum):
    """What :func:`settle` did."""

    SETTLED = "settled"
    ALREADY_SETTLED = "already_settled"
    NOT_PAID = "not_paid"
    EXPIRED = "expired"
    UNKNOWN_INVOICE = "unknown_invoice"
    MISMATCH = "mismatch"
    PROVIDER_UNAVAILABLE = "provider_unavailable"


async def settle(
    payment_hash: str,
    *,
    db: Database,
    router: Router,
    clock: WallClock,
    events: InvoiceEvents | None = None,
    source: str = "poll",
    timings: dict[str, float] | None = None,
    record: InvoiceRecord | None = None,
) -> SettleOutcome:
    """Verify with the issuing provider and mark the invoice (and its order) paid exactly once.

    ``source`` names the doorbell for the logs (webhook, reconciler, nwc, check-invoice...);
    ``events`` is told about every state change once it is committed; ``timings``, when given,
    receives ``lookup_ms`` (the provider's answer time). ``record`` is the invoice when the
    caller has just read it (saves a read; the conditional update makes staleness harmless).
    """
    payment_hash = payment_hash.lower()
    if record is None or record.payment_hash != payment_hash:
        async with db.connect() as conn:
            record = await get_invoice(conn, payment_hash)
    if record is None:
        return SettleOutcome.UNKNOWN_INVOICE
    if record.state is InvoiceState.PAID:
        return SettleOutcome.ALREADY_SETTLED
    started = time.perf_counter()
    try:
        status = await router.run_lookup(
            record.provider, lambda provider: provider.invoice_status(payment_hash)
        )
    except ProviderError as exc:
        log.warning("settle_lookup_failed", provider=record.provider, source=source,
                    payment_hash=payment_hash, error_code=exc.code)
        return SettleOutcome.PROVIDER_UNAVAILABLE
    finally:
        if timings is not None:
            timings["lookup_ms"] = (time.perf_counter() - started) * 1000
    now = clock()
    if status is None or status.state in _NOT_PAID_STATES:
        # ``None``: the provider does not know the invoice, so it cannot be paid there.
        if record.state is InvoiceState.PENDING and now >= record.expires_at:
            async with db.transaction() as conn:
                expired = await mark_expired(conn, payment_hash)
                if expired:
                    await expire_order(conn, payment_hash)
            if expired:
                log.info("invoice_expired", payment_hash=payment_hash, provider=record.provider,
                         source=source)
                _publish(events, payment_hash)
            return SettleOutcome.EXPIRED
        return SettleOutcome.NOT_PAID
    if status.state is not PaymentState.PAID:  # UNKNOWN: an answer we cannot read
        return SettleOutcome.NOT_PAID
    if status.amount_msat != record.amount_msat:
        log.error("settle_amount_mismatch", payment_hash=payment_hash, source=source,
                  provider=record.provider, expected_msat=record.amount_msat,
                  reported_msat=status.amount_msat)
        return SettleOutcome.MISMATCH
    if status.preimage and not preimage_matches(status.preimage, payment_hash):
        log.error("settle_preimage_mismatch", payment_hash=payment_hash, source=source,
                  provider=record.provider)
        return SettleOutcome.MISMATCH
    paid_at = status.paid_at or now
    late = paid_at > record.expires_at
    async with db.transaction() as conn:
        won = await mark_paid(conn, payment_hash, paid_at=paid_at, late=late)
        order = (await fulfil_paid_order(conn, payment_hash, paid_at=paid_at, late=late, now=now)
                 if won else None)
    if not won:
        return SettleOutcome.ALREADY_SETTLED
    event = log.warning if late else log.info
    event("invoice_settled", payment_hash=payment_hash, provider=record.provider, source=source,
          amount_msat=record.amount_msat, late=late, order_id=order.id if order else None)
    _publish(events, payment_hash)
    return SettleOutcome.SETTLED


def preimage_matches(preimage_hex: str, payment_hash: str) -> bool:
    """Whether ``sha256(preimage) == payment_hash`` (``False`` for a malformed preimage)."""
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash.lower()
    except ValueError:
        return False


def _publish(events: InvoiceEvents | None, payment_hash: str) -> None:
    if events is not None:
        events.publish(payment_hash)


async def check_invoice(
    payment_hash: str,
    *,
    db: Database,
    router: Router,
    clock: WallClock,
    events: InvoiceEvents | None = None,
    settle_with: Callable[..., Awaitable[SettleOutcome]] | None = None,
) -> InvoiceState | None:
    """The verified state of an invoice, asking its provider while it is pending.

    ``None`` for an unknown invoice. A provider that cannot be reached leaves it pending:
    the answer is never a guess. ``settle_with(payment_hash, source=...)`` replaces
    :func:`settle` (``Settler.settle``).
    """
    async with db.connect() as conn:
        record = await get_invoice(conn, payment_hash.lower())
    if record is None:
        return None
    if record.state is not InvoiceState.PENDING:
        return record.state
    if settle_with is not None:
        outcome = await settle_with(payment_hash, source="check-invoice")
    else:
        outcome = await settle(payment_hash, db=db, router=router, clock=clock, events=events,
                               source="check-invoice")
    if outcome in (SettleOutcome.SETTLED, SettleOutcome.ALREADY_SETTLED):
        return InvoiceState.PAID
    if outcome is SettleOutcome.EXPIRED:
        return InvoiceState.EXPIRED
    return InvoiceState.PENDING


@dataclass(frozen=True, slots=True)
class Settler:
    """``settle`` bound to the gateway's database, router, clock and events (built by bootstrap)."""

    db: Database
    router: Router
    clock: WallClock
    events: InvoiceEvents
    after_settle: Callable[[str], None] | None = None
    """Called with the payment hash after each settlement (wakes the outbox worker)."""

    async def settle(
        self, payment_hash: str, *, source: str, timings: dict[str, float] | None = None,
        record: InvoiceRecord | None = None,
    ) -> SettleOutcome:
        """:func:`settle` with this gateway's collaborators."""
        outcome = await settle(payment_hash, db=self.db, router=self.router, clock=self.clock,
                               events=self.events, source=source, timings=timings,
                               record=record)
        if outcome is SettleOutcome.SETTLED and self.after_settle is not None:
            self.after_settle(payment_hash)
        return outcome

    async def check(self, payment_hash: str) -> InvoiceState | None:
        """:func:`check_invoice` with this gateway's collaborators (and ``after_settle``)."""
        return await check_invoice(payment_hash, db=self.db, router=self.router,
                                   clock=self.clock, events=self.events, settle_with=self.settle)
