"""A payments kit for service-level tests: real database (SQLite and PostgreSQL), real providers
(the test provider, or LNbits through the double), and the gateway bootstrap builds around
them (router, settler, orders), with a settable clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lngate.bootstrap import Gateway, Overrides, build_gateway
from lngate.domain import Network, Product
from lngate.notify.email import FolderEmailSender
from lngate.providers.base import Provider
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.providers.testprovider import TestProvider
from lngate.resilience.router import Router
from lngate.services.orders import (
    Address,
    CreatedOrder,
    Customer,
    OrderContext,
    OrderRequest,
    create_order,
)
from lngate.services.settlement import Settler
from lngate.settings import Settings
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
    """Everything settlement needs, as bootstrap builds it around one provider."""

    gateway: Gateway
    provider: Provider
    clock: SettableClock
    settled_hashes: list[str] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.gateway.db

    @property
    def router(self) -> Router:
        return self.gateway.router

    @property
    def settler(self) -> Settler:
        return self.gateway.settler

    @property
    def orders(self) -> OrderContext:
        return self.gateway.orders

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


def kit_settings(db: Database, **overrides: Any) -> Settings:
    """Settings of a kit: ``db``'s URL (the database itself is handed over as it is)."""
    url = db.engine.url.render_as_string(hide_password=False)
    return Settings(_env_file=None, database_url=url, **overrides)  # type: ignore[call-arg]


async def make_kit(db: Database, provider: Provider, clock: SettableClock,
                   *, pin: str | None = None, expiry: int = 600) -> Kit:
    """The gateway bootstrap builds with ``provider`` alone, on ``db``, telling ``clock``'s
    time; ``pin`` is the provider's node key; orders' invoices expire after ``expiry`` s."""
    settled: list[str] = []
    gateway = await build_gateway(kit_settings(db, invoice_expiry_seconds=600), migrate=False,
                                  overrides=Overrides(
        db=db, providers=[provider], clock=clock, after_settle=settled.append,
        email_sender=FolderEmailSender(Path("/nonexistent-kit-mail"), sender="kit@localhost")))
    if pin:
        gateway.payee_keys.pin(provider.name, pin)
    if expiry != 600:  # below the settings' minimum of 60 s: set on the built context
        gateway.orders = dataclasses.replace(gateway.orders, expiry=expiry)
    return Kit(gateway=gateway, provider=provider, clock=clock, settled_hashes=settled)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
async def kit(db: Database, clock: SettableClock) -> Kit:
    """A kit on the test provider, on SQLite and on PostgreSQL."""
    provider = TestProvider(network=Network.BITCOIN, clock=clock)
    return await make_kit(db, provider, clock, pin=provider.node_pubkey)


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
        yield await make_kit(db, provider, clock, pin=FAKE_NODE_PUBKEY)
    finally:
        await provider.aclose()

