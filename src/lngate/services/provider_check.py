"""``lngate check``: probe each provider end to end (reach, balance, create, validate, look up)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lngate.bolt11 import InvoiceExpectation, validate_invoice
from lngate.domain import Network
from lngate.errors import LngateError
from lngate.providers.base import Provider
from lngate.services.clock import WallClock
from lngate.services.payee_keys import PayeeKeys

CHECK_AMOUNT_MSAT = 1000
CHECK_MEMO = "lngate check"
CHECK_EXPIRY = 600


@dataclass
class ProviderCheck:
    """The outcome of checking one provider; ``ok`` only when every step passed."""

    provider: str
    reachable: bool = False
    response_ms: float | None = None
    balance_sat: int | None = None
    invoice_valid: bool = False
    lookup_ok: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the provider passed every step."""
        return self.reachable and self.invoice_valid and self.lookup_ok and not self.errors


async def check_provider(
    provider: Provider, *, network: Network, payee_keys: PayeeKeys, clock: WallClock
) -> ProviderCheck:
    """Run every step against ``provider``, collecting failures instead of stopping."""
    result = ProviderCheck(provider.name)
    report = await provider.health()
    result.reachable, result.response_ms = report.healthy, report.response_time_ms
    if report.error:
        result.errors.append(f"health: {report.error}")
    if report.balance_msat is not None:
        result.balance_sat = report.balance_msat // 1000
    if report.node_pubkey:
        payee_keys.report(provider.name, report.node_pubkey)
    try:
        started = time.monotonic()
        issued = await provider.create_invoice(
            amount_msat=CHECK_AMOUNT_MSAT, memo=CHECK_MEMO, expiry=CHECK_EXPIRY
        )
        validate_invoice(issued.bolt11, InvoiceExpectation(
            network=network, amount_msat=CHECK_AMOUNT_MSAT, payment_hash=issued.payment_hash,
            description=CHECK_MEMO, expiry=CHECK_EXPIRY, payee=await payee_keys.expected(provider.name),
            now=clock(),
        ))
        result.invoice_valid = True
        result.response_ms = result.response_ms or (time.monotonic() - started) * 1000
        status = await provider.invoice_status(issued.payment_hash)
        if status is None:
            result.errors.append("lookup: the provider does not know the invoice it just issued")
        else:
            result.lookup_ok = True
    except LngateError as exc:
        result.errors.append(f"{exc.code}: {exc}")
    return result

