"""Settlement: the one path by which an invoice becomes paid (:class:`Settler`).

Every signal (a status poll, a webhook, an NWC notification, the reconciler, an admin
simulation) is a doorbell that calls :meth:`Settler.settle`; none is proof. Settling:

1. asks the issuing provider, which must say paid, for exactly the invoice's amount, with a
   preimage whose SHA-256 is the payment hash when it gives one;
2. in one transaction, moves the invoice from pending (or expired) to paid with a conditional
   ``UPDATE``, and, only when that update changed the row, runs the order's post-payment step,
   queues its emails (:mod:`lngate.services.fulfilment`) and announces the change to every
   instance (:mod:`lngate.services.events`). A concurrent caller, in this process or another,
   finds zero rows changed and does nothing: exactly once.

A payment confirmed after the invoice's expiry still settles (the money arrived) and is
flagged ``paid_late`` (judged by the provider's payment time when it gives one). An invoice
past its expiry that the provider reports unpaid is marked expired, with its order.

Outside pure demo mode, a test-provider invoice never fulfils an order: the admin's simulated
payments carry no order, and an order found on a test invoice is refused and expired.

Customers polling ``check-invoice`` cannot turn the gateway into an amplifier against a
provider: :meth:`Settler.check` coalesces concurrent checks of one invoice into one look-up
(single flight) and reuses a "still pending" answer for ``check_reuse_seconds``. Doorbells
never use that shortcut: a webhook or notification always asks the provider at once.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState, PaymentState
from lngate.errors import ProviderError
from lngate.resilience.router import Router
from lngate.services.clock import WallClock
from lngate.services.events import InvoiceEvents
from lngate.services.fulfilment import expire_order, fulfil_paid_order
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, get_invoice
from lngate.store.orders import get_order_by_payment_hash
from lngate.store.settlement import expire_test_invoices, mark_expired, mark_paid

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
    TEST_INVOICE_REFUSED = "test_invoice_refused"


def preimage_matches(preimage_hex: str, payment_hash: str) -> bool:
    """Whether ``sha256(preimage) == payment_hash`` (``False`` for a malformed preimage)."""
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash.lower()
    except ValueError:
        return False


AlsoOnSettle = Callable[[AsyncConnection], Awaitable[None]]
"""More writes for the transaction that settles an invoice (see :meth:`Settler.settle`)."""
_STATE_AFTER = {SettleOutcome.SETTLED: InvoiceState.PAID,
                SettleOutcome.ALREADY_SETTLED: InvoiceState.PAID,
                SettleOutcome.EXPIRED: InvoiceState.EXPIRED,
                SettleOutcome.TEST_INVOICE_REFUSED: InvoiceState.EXPIRED}
MAX_REMEMBERED_CHECKS = 100_000
"""Bound on remembered "still pending" answers (one per invoice polled within the interval)."""


class Settler:
    """Settles invoices with the gateway's database, router, clock and events (bootstrap
    builds one); the only way into settlement."""

    def __init__(
        self,
        *,
        db: Database,
        router: Router,
        clock: WallClock,
        events: InvoiceEvents,
        after_settle: Callable[[str], None] | None = None,
        test_orders_allowed: bool = False,
        check_reuse_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``after_settle(payment_hash)`` runs after each settlement (wakes the outbox worker);
        ``test_orders_allowed`` only in pure demo mode; ``check_reuse_seconds``: how long a
        provider's "not paid yet" answers later checks of the same invoice."""
        self.db, self.router, self.clock, self.events = db, router, clock, events
        self.after_settle = after_settle
        self.test_orders_allowed = test_orders_allowed
        self.check_reuse_seconds = check_reuse_seconds
        self._monotonic = monotonic
        self._inflight: dict[str, asyncio.Task[InvoiceState]] = {}
        self._pending_seen: OrderedDict[str, float] = OrderedDict()

    async def settle(
        self, payment_hash: str, *, source: str, timings: dict[str, float] | None = None,
        record: InvoiceRecord | None = None, also: AlsoOnSettle | None = None,
    ) -> SettleOutcome:
        """Verify with the issuing provider and mark the invoice (and its order) paid, once.

        ``source`` names the doorbell for the logs (webhook, reconciler, nwc, check-invoice...);
        ``timings``, when given, receives ``lookup_ms`` (the provider's answer time) and, when
        it settles, ``transaction_ms`` (the settlement transaction: invoice, order's step,
        outbox) and ``publish_ms`` (telling listeners it changed);
        ``record`` is the invoice when the caller has just read it (saves a read; the
        conditional update makes staleness harmless); ``also(conn)``, when given, runs in
        the settlement's transaction only when this call settles the invoice, so its writes
        commit with it (the webhook stores its event's outcome there: no transaction of its
        own on the doorbell's answer path).
        """
        outcome = await self._settle(payment_hash.lower(), source=source, timings=timings,
                                     record=record, also=also)
        if outcome is SettleOutcome.SETTLED and self.after_settle is not None:
            self.after_settle(payment_hash.lower())
        return outcome

    async def check(self, payment_hash: str) -> InvoiceState | None:
        """The verified state of an invoice, asking its provider while it is pending.

        ``None`` for an unknown invoice. A provider that cannot be reached leaves it pending:
        the answer is never a guess. Concurrent checks of one invoice share one look-up, and a
        "not paid yet" answer stands for ``check_reuse_seconds``.
        """
        payment_hash = payment_hash.lower()
        async with self.db.connect() as conn:
            record = await get_invoice(conn, payment_hash)
        if record is None:
            return None
        if record.state is not InvoiceState.PENDING:
            return record.state
        seen = self._pending_seen.get(payment_hash)
        if seen is not None and self._monotonic() - seen < self.check_reuse_seconds:
            return InvoiceState.PENDING
        task = self._inflight.get(payment_hash)
        if task is None:
            task = asyncio.ensure_future(self._check_at_provider(record))
            self._inflight[payment_hash] = task
            task.add_done_callback(lambda _t: self._inflight.pop(payment_hash, None))
        # shielded: a client that goes away must not cancel the look-up others wait for
        return await asyncio.shield(task)

    async def _check_at_provider(self, record: InvoiceRecord) -> InvoiceState:
        outcome = await self.settle(record.payment_hash, source="check-invoice", record=record)
        state = _STATE_AFTER.get(outcome, InvoiceState.PENDING)
        if state is InvoiceState.PENDING:
            self._remember_pending(record.payment_hash)
        else:
            self._pending_seen.pop(record.payment_hash, None)
        return state

    def _remember_pending(self, payment_hash: str) -> None:
        now = self._monotonic()
        seen = self._pending_seen
        seen.pop(payment_hash, None)
        seen[payment_hash] = now
        # insertion order is time order: drop what is too old, then what is too many
        while seen and (len(seen) > MAX_REMEMBERED_CHECKS
                        or now - next(iter(seen.values())) >= self.check_reuse_seconds):
            seen.popitem(last=False)

    async def _settle(
        self, payment_hash: str, *, source: str, timings: dict[str, float] | None,
        record: InvoiceRecord | None, also: AlsoOnSettle | None,
    ) -> SettleOutcome:
        db = self.db
        if record is None or record.payment_hash != payment_hash:
            async with db.connect() as conn:
                record = await get_invoice(conn, payment_hash)
        if record is None:
            return SettleOutcome.UNKNOWN_INVOICE
        if record.state is InvoiceState.PAID:
            return SettleOutcome.ALREADY_SETTLED
        started = time.perf_counter()
        try:
            status = await self.router.run_lookup(
                record.provider, lambda provider: provider.invoice_status(payment_hash)
            )
        except ProviderError as exc:
            log.warning("settle_lookup_failed", provider=record.provider, source=source,
                        payment_hash=payment_hash, error_code=exc.code, error=exc.message)
            return SettleOutcome.PROVIDER_UNAVAILABLE
        finally:
            if timings is not None:
                timings["lookup_ms"] = (time.perf_counter() - started) * 1000
        now = self.clock()
        if status is None or status.state in _NOT_PAID_STATES:
            # ``None``: the provider does not know the invoice, so it cannot be paid there.
            if record.state is InvoiceState.PENDING and now >= record.expires_at:
                if await self._expire(payment_hash):
                    log.info("invoice_expired", payment_hash=payment_hash,
                             provider=record.provider, source=source)
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
        if record.is_test and not self.test_orders_allowed and await self._has_order(payment_hash):
            log.error("settle_test_invoice_refused", payment_hash=payment_hash, source=source,
                      reason="a test invoice never pays an order outside demo mode")
            await self._expire(payment_hash)
            return SettleOutcome.TEST_INVOICE_REFUSED
        # the provider's payment time, but never in our future (a provider clock running ahead)
        paid_at = min(status.paid_at, now) if status.paid_at else now
        late = paid_at > record.expires_at
        started = time.perf_counter()
        async with db.transaction() as conn:
            won = await mark_paid(conn, payment_hash, paid_at=paid_at, late=late)
            order = None
            if won:
                order = await fulfil_paid_order(conn, payment_hash, paid_at=paid_at, late=late,
                                                now=now)
                await self.events.announce(conn, payment_hash)
                if also is not None:
                    await also(conn)
        committed = time.perf_counter()
        if timings is not None:
            timings["transaction_ms"] = (committed - started) * 1000
        if not won:
            return SettleOutcome.ALREADY_SETTLED
        event = log.warning if late else log.info
        event("invoice_settled", payment_hash=payment_hash, provider=record.provider,
              source=source, amount_msat=record.amount_msat, late=late,
              order_id=order.id if order else None)
        await self.events.committed(payment_hash)
        if timings is not None:
            timings["publish_ms"] = (time.perf_counter() - committed) * 1000
        return SettleOutcome.SETTLED

    async def close_test_invoices(self, *, created_before: datetime) -> int:
        """Expire, with their orders, the pending test invoices left from a demo (outside demo
        mode nothing can pay them); how many. Logged once, so they are not re-checked and
        warned about at every reconciler pass."""
        async with self.db.transaction() as conn:
            closed = await expire_test_invoices(conn, created_before=created_before)
            for payment_hash in closed:
                await expire_order(conn, payment_hash)
                await self.events.announce(conn, payment_hash)
        if closed:
            log.warning("test_invoices_closed", count=len(closed),
                        reason="left from demo mode; no real provider can pay them")
            for payment_hash in closed:
                await self.events.committed(payment_hash)
        return len(closed)

    async def _has_order(self, payment_hash: str) -> bool:
        async with self.db.connect() as conn:
            return await get_order_by_payment_hash(conn, payment_hash) is not None

    async def _expire(self, payment_hash: str) -> bool:
        """Pending -> expired, with its order; tells listeners. ``False`` if it was not pending."""
        async with self.db.transaction() as conn:
            expired = await mark_expired(conn, payment_hash)
            if expired:
                await expire_order(conn, payment_hash)
                await self.events.announce(conn, payment_hash)
        if expired:
            await self.events.committed(payment_hash)
        return expired
