"""Push doorbells: providers that stream paid invoices (NWC ``payment_received``).

Each hash from the stream is only a reason to call ``settle``, which asks the provider. The
listener re-subscribes when the stream ends or fails; notifications missed meanwhile are caught
by the reconciler.
"""

from __future__ import annotations

import asyncio

import structlog

from lngate.errors import ProviderError
from lngate.providers.base import PaidStream
from lngate.services.reconciler import Settle

log = structlog.get_logger("lngate.doorbells")


async def listen_paid_stream(
    provider: PaidStream, *, name: str, settle: Settle, resubscribe_after: float = 5.0
) -> None:
    """Settle each hash ``provider.paid_invoices()`` yields, forever (a supervised task)."""
    while True:
        try:
            async for payment_hash in provider.paid_invoices():
                try:
                    outcome = await settle(payment_hash, source=f"{name}-notification")
                except Exception:  # one failing settle must not end the subscription
                    log.exception("paid_stream_settle_failed", provider=name,
                                  payment_hash=payment_hash)
                    continue
                log.debug("paid_stream_notification", provider=name, payment_hash=payment_hash,
                         outcome=outcome.value)
            log.warning("paid_stream_ended", provider=name, resubscribe_in_s=resubscribe_after)
        except ProviderError as exc:
            log.warning("paid_stream_unavailable", provider=name, error=str(exc)[:200],
                        resubscribe_in_s=resubscribe_after)
        await asyncio.sleep(resubscribe_after)
