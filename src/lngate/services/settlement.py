"""``settle``: the one path by which an invoice becomes paid.

Every signal (a status poll, a webhook, an NWC notification, the reconciler) is a doorbell
that calls :func:`settle`; none is proof. ``settle`` asks the issuing provider, checks the
amount and the preimage, then moves the invoice from pending to paid with one conditional
``UPDATE``: a second caller finds zero rows changed and does nothing.
"""

from __future__ import annotations

import enum
import hashlib
import structlog

from lngate.domain import InvoiceState, PaymentState
from lngate.errors import ProviderError
from lngate.resilience.router import Router
from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store.invoices import get_invoice, transition

log = structlog.get_logger("lngate.settlement")


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
) -> SettleOutcome:
    """Verify with the issuing provider and mark the invoice paid exactly once."""
    payment_hash = payment_hash.lower()
    async with db.connect() as conn:
        record = await get_invoice(conn, payment_hash)
    if record is None:
        return SettleOutcome.UNKNOWN_INVOICE
    if record.state is InvoiceState.PAID:
        return SettleOutcome.ALREADY_SETTLED
    try:
        status = await router.run_lookup(
            record.provider, lambda provider: provider.invoice_status(payment_hash)
        )
    except ProviderError as exc:
        log.warning("settle_lookup_failed", provider=record.provider,
                    payment_hash=payment_hash, error_code=exc.code)
        return SettleOutcome.PROVIDER_UNAVAILABLE
    now = clock()
    if status is None or status.state is not PaymentState.PAID:
        if record.state is InvoiceState.PENDING and now >= record.expires_at:
            async with db.transaction() as conn:
                await transition(conn, payment_hash, from_state=InvoiceState.PENDING,
                                 to_state=InvoiceState.EXPIRED)
            return SettleOutcome.EXPIRED
        return SettleOutcome.NOT_PAID
    if status.amount_msat is not None and status.amount_msat != record.amount_msat:
        log.error("settle_amount_mismatch", payment_hash=payment_hash,
                  expected_msat=record.amount_msat, reported_msat=status.amount_msat)
        return SettleOutcome.MISMATCH
    if status.preimage and not _preimage_matches(status.preimage, payment_hash):
        log.error("settle_preimage_mismatch", payment_hash=payment_hash)
        return SettleOutcome.MISMATCH
    async with db.transaction() as conn:
        # A payment seen after expiry still settles (the money arrived); it is logged as late.
        changed = await transition(conn, payment_hash, from_state=record.state,
                                   to_state=InvoiceState.PAID, paid_at=status.paid_at or now)
    if not changed:
        return SettleOutcome.ALREADY_SETTLED
    log.info("invoice_settled", payment_hash=payment_hash, provider=record.provider,
             amount_msat=record.amount_msat, late=now > record.expires_at)
    return SettleOutcome.SETTLED


def _preimage_matches(preimage_hex: str, payment_hash: str) -> bool:
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash
    except ValueError:
        return False


async def check_invoice(
    payment_hash: str,
    *,
    db: Database,
    router: Router,
    clock: WallClock,
) -> InvoiceState | None:
    """The verified state of an invoice, asking its provider while it is pending.

    ``None`` for an unknown invoice. A provider that cannot be reached leaves it pending:
    the answer is never a guess.
    """
    async with db.connect() as conn:
        record = await get_invoice(conn, payment_hash.lower())
    if record is None:
        return None
    if record.state is not InvoiceState.PENDING:
        return record.state
    outcome = await settle(payment_hash, db=db, router=router, clock=clock)
    if outcome in (SettleOutcome.SETTLED, SettleOutcome.ALREADY_SETTLED):
        return InvoiceState.PAID
    if outcome is SettleOutcome.EXPIRED:
        return InvoiceState.EXPIRED
    return InvoiceState.PENDING
