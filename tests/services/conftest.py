"""A payments kit for service-level tests: real database (SQLite and PostgreSQL), real providers
(the test provider, or LNbits through the double), the real router and settler, a settable clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lngate.domain import Network, Product
from lngate.providers.base import Provider
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.providers.testprovider import TestProvider
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.router import Router
from lngate.services.events import InvoiceEvents
from lngate.services.invoices import InvoiceContext
from lngate.services.orders import (
    Address,
    Catalog,
    CreatedOrder,
    Customer,
    OrderContext,
    OrderRequest,
    create_order,
)
from lngate.services.payee_keys import PayeeKeys
from lngate.services.settlement import Settler
from lngate.store import Database
from lngate.store.invoices import get_invoice
from lngate.store.orders import get_order
from lngate.store.outbox import rows_for_order
from lngate.store.tables import shipments, subscriptions
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble


class SettableClock:
    """A wall clock that starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


ADDRESS = Address(line1="12 rue des Lilas", city="Lyon", postal_code="69001", country="France")


def request_for(product: Product, **overrides: Any) -> OrderRequest:
    """A valid order request for ``product``."""
    customer = Customer(email="alice@example.com", name="Alice",
                        address=ADDRESS if product is Product.DAZBOX else None)
    values: dict[str, Any] = {"product": product, "customer": customer}
    if product is Product.DAZPAY:
        values["amount_sat"] = 2100
    values.update(overrides)
    return OrderRequest(**values)


@dataclass
class Kit:
    """Everything settlement needs, wired like bootstrap does."""

    db: Database
    provider: Provider
    router: Router
    clock: SettableClock
    settler: Settler
    orders: OrderContext
    settled_hashes: list[str] = field(default_factory=list)

    async def order(self, product: Product = Product.DAZBOX, **overrides: Any) -> CreatedOrder:
        return await create_order(request_for(product, **overrides), self.orders)

    async def snapshot(self, order_id: str) -> dict[str, Any]:
        """The order, its invoice, shipment, subscriptions and outbox rows, for comparisons."""
        async with self.db.connect() as conn:
            order = await get_order(conn, order_id)
            assert order is not None
            invoice = await get_invoice(conn, order.payment_hash)
            ships = [dict(r._mapping) for r in await conn.execute(
                select(shipments).where(shipments.c.order_id == order_id))]
            subs = [dict(r._mapping) for r in await conn.execute(select(subscriptions))]
            outbox = await rows_for_order(conn, order_id)
        return {"order": order, "invoice": invoice, "shipments": ships,
                "subscriptions": subs, "outbox": outbox}


def make_kit(db: Database, provider: Provider, clock: SettableClock,
             *, catalog: Catalog | None = None, pin: str | None = None) -> Kit:
    payee_keys = PayeeKeys()
    if pin:
        payee_keys.pin(provider.name, pin)
    router = Router([provider], breakers={}, timeouts=AttemptTimeoutPolicy(),
                    clock=time.monotonic, lookup_timeout=2.0)
    invoices = InvoiceContext(db=db, router=router, network=Network.BITCOIN,
                              payee_keys=payee_keys, wall_clock=clock)
    settled: list[str] = []
    return Kit(db=db, provider=provider, router=router, clock=clock,
               settler=Settler(db=db, router=router, clock=clock, events=InvoiceEvents(),
                               after_settle=settled.append),
               orders=OrderContext(invoices=invoices, catalog=catalog or Catalog(), expiry=600),
               settled_hashes=settled)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
async def kit(db: Database, clock: SettableClock) -> Kit:
    """A kit on the test provider, on SQLite and on PostgreSQL."""
    provider = TestProvider(network=Network.BITCOIN, clock=clock)
    return make_kit(db, provider, clock, pin=provider.node_pubkey)


@pytest.fixture
async def lnbits_double() -> AsyncIterator[LNbitsDouble]:
    async with LNbitsDouble() as double:
        yield double


@pytest.fixture
async def lnbits_kit(db: Database, clock: SettableClock,
                     lnbits_double: LNbitsDouble) -> AsyncIterator[Kit]:
    """A kit on LNbits (the double), on SQLite and on PostgreSQL."""
    provider = LNbitsProvider(LNbitsConfig(lnbits_double.url, lnbits_double.invoice_key,
                                           timeout=2.0), make_session(2.0))
    try:
        yield make_kit(db, provider, clock, pin=FAKE_NODE_PUBKEY)
    finally:
        await provider.aclose()

