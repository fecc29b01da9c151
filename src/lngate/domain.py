"""Plain values shared by every layer: states, money and what providers return.

Money is always an ``int`` of millisatoshis named ``*_msat``; sats appear only at the edges
(the public API and the LNbits create request), converted with :func:`sat_to_msat` and
:func:`msat_to_sat`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

MSAT_PER_SAT = 1000
_PAYMENT_HASH = re.compile(r"[0-9a-fA-F]{64}")


def is_payment_hash(text: str) -> bool:
    """Whether ``text`` looks like a payment hash (64 hex digits, either case)."""
    return _PAYMENT_HASH.fullmatch(text) is not None


class Network(enum.StrEnum):
    """The Bitcoin network an invoice belongs to; the value is the BOLT11 currency prefix."""

    BITCOIN = "bc"
    TESTNET = "tb"
    SIGNET = "tbs"
    REGTEST = "bcrt"

    @classmethod
    def from_name(cls, name: str) -> Network:
        """``"bitcoin"`` -> ``Network.BITCOIN``; raises ``ValueError`` for an unknown name."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown network {name!r}: expected bitcoin, testnet, signet or regtest"
            ) from None


class InvoiceState(enum.StrEnum):
    """The gateway's own state of an invoice it issued."""

    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"


class PaymentState(enum.StrEnum):
    """What a provider says about an invoice; ``UNKNOWN`` when its answer cannot be read."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


def sat_to_msat(sat: int) -> int:
    """Convert whole sats to millisatoshis."""
    return sat * MSAT_PER_SAT


def msat_to_sat(msat: int) -> int:
    """Convert millisatoshis to whole sats; refuses amounts that are not whole sats."""
    sat, rest = divmod(msat, MSAT_PER_SAT)
    if rest:
        raise ValueError(f"{msat} msat is not a whole number of sats")
    return sat


@dataclass(frozen=True, slots=True)
class ProviderInvoice:
    """An invoice as a provider reports it right after creating it (not yet validated)."""

    bolt11: str
    payment_hash: str
    amount_msat: int
    provider_ref: str
    """The provider's own id for the invoice (LNbits ``checking_id``; the hash elsewhere)."""


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    """A provider's answer to "is this invoice paid?"."""

    state: PaymentState
    amount_msat: int | None = None
    preimage: str | None = None
    paid_at: datetime | None = None
    """When the provider says the invoice was paid (timezone-aware UTC), not when we asked:
    a payment found late must still be judged by its own time. ``None`` when the provider
    gives no usable time; the caller then uses its own clock."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of one health probe of a provider."""

    healthy: bool
    response_time_ms: float
    error: str | None = None
    balance_msat: int | None = None
    node_pubkey: str | None = None


class Product(enum.StrEnum):
    """What the shop sells: hardware, a subscription, a free-amount payment."""

    DAZBOX = "dazbox"
    DAZNODE = "daznode"
    DAZPAY = "dazpay"


class Plan(enum.StrEnum):
    """A DazNode subscription period."""

    MONTHLY = "monthly"
    YEARLY = "yearly"


class OrderStatus(enum.StrEnum):
    """An order's payment status; fulfilment (shipment, subscription) is tracked separately."""

    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    """Cancelled by the shop while unpaid; a payment arriving later is flagged for a refund."""


class ShipmentStatus(enum.StrEnum):
    """Where a DazBox shipment is: waiting to be sent, or sent (with a tracking number)."""

    TO_SHIP = "to_ship"
    SHIPPED = "shipped"


class OrderAttention(enum.StrEnum):
    """Why an order needs the shop's attention (``orders.attention``)."""

    REFUND_DUE = "refund_due"
    """Its invoice was paid after the order was cancelled: the money must be returned."""
