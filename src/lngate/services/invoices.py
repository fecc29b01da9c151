"""Create an invoice through the providers, validated and stored; look one up."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.bolt11 import InvoiceExpectation, validate_invoice
from lngate.domain import InvoiceState, Network, ProviderInvoice, sat_to_msat
from lngate.errors import InvalidInvoice
from lngate.providers.base import Provider
from lngate.resilience.router import Router
from lngate.services.clock import WallClock
from lngate.services.payee_keys import PayeeKeys
from lngate.store import Database
from lngate.store.invoice_writer import InvoiceWriter
from lngate.store.invoices import (
    DuplicateInvoice,
    InvoiceRecord,
    get_by_idempotency_key,
    get_invoice,
    insert_invoice,
)

log = structlog.get_logger("lngate.invoices")


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    """A validated request for a new invoice."""

    amount_sat: int
    description: str
    expiry: int
    metadata: dict[str, Any] | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """A digest of the body, to tell a replay from a different request with the same key."""
        body = json.dumps(
            [self.amount_sat, self.description, self.expiry, self.metadata],
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        )
        return hashlib.sha256(body.encode()).hexdigest()


class IdempotencyConflict(Exception):
    """The ``Idempotency-Key`` was already used with a different body."""


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """The outcome of a create: the stored invoice, and whether it is a replay."""

    invoice: InvoiceRecord
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class InvoiceContext:
    """What creating an invoice needs besides the request (built once by bootstrap)."""

    db: Database
    router: Router
    network: Network
    payee_keys: PayeeKeys
    test_providers: frozenset[str] = frozenset()
    wall_clock: WallClock = lambda: datetime.now(UTC)
    webhook_url: Callable[[str], str] | None = None
    """Builds the webhook URL for a nonce (services.webhooks); ``None``: no webhooks asked."""
    writer: InvoiceWriter | None = None
    """Group-commits plain creates; ``None``: one transaction per invoice."""


AlsoStore = Callable[[AsyncConnection, "InvoiceRecord"], Awaitable[None]]


async def create_invoice(
    request: InvoiceRequest, ctx: InvoiceContext, *, also_store: AlsoStore | None = None
) -> IssuedInvoice:
    """Issue a validated invoice through the router (failover, breakers), store it, return it.

    ``also_store(conn, record)`` runs in the transaction that stores the invoice (an order
    row, for example). Providers that call webhooks get a webhook URL carrying a fresh nonce,
    stored with the invoice.

    With an idempotency key already used for the same body, returns the stored invoice without
    calling any provider; with a different body, raises :class:`IdempotencyConflict`. When no
    provider can issue a valid invoice, raises ``NoProviderAvailable`` with each reason.
    """
    fingerprint = request.fingerprint()
    if request.idempotency_key:
        replay = await _replay(ctx.db, request.idempotency_key, fingerprint)
        if replay is not None:
            return replay

    amount_msat = sat_to_msat(request.amount_sat)
    nonce = secrets.token_urlsafe(16) if ctx.webhook_url is not None else None

    async def attempt(provider: Provider, _timeout: float) -> tuple[ProviderInvoice, datetime]:
        webhook_url = None
        if nonce is not None and ctx.webhook_url is not None and provider.capabilities.webhook:
            webhook_url = ctx.webhook_url(nonce)
        issued = await provider.create_invoice(
            amount_msat=amount_msat, memo=request.description, expiry=request.expiry,
            webhook_url=webhook_url,
        )
        return issued, await _check(issued, provider.name, amount_msat, request, ctx)

    routed = await ctx.router.run_create(attempt)
    issued, expires_at = routed.value
    record = InvoiceRecord(
        payment_hash=issued.payment_hash.lower(),
        provider=routed.provider,
        provider_ref=issued.provider_ref,
        bolt11=issued.bolt11,
        amount_msat=amount_msat,
        description=request.description,
        metadata=request.metadata,
        state=InvoiceState.PENDING,
        is_test=routed.provider in ctx.test_providers,
        created_at=ctx.wall_clock(),
        expires_at=expires_at,
        idempotency_key=request.idempotency_key,
        request_fingerprint=fingerprint,
        webhook_nonce=nonce,
    )
    try:
        if also_store is None and ctx.writer is not None:
            await ctx.writer.insert(record)
        else:
            async with ctx.db.transaction() as conn:
                await insert_invoice(conn, record)
                if also_store is not None:
                    await also_store(conn, record)
    except DuplicateInvoice:
        if request.idempotency_key:
            # A concurrent request with the same key won the race; ours stays unpaid and expires.
            log.warning("idempotency_race", provider=routed.provider,
                        orphan_payment_hash=record.payment_hash)
            replay = await _replay(ctx.db, request.idempotency_key, fingerprint)
            if replay is not None:
                return replay
        raise
    log.info("invoice_created", provider=routed.provider, payment_hash=record.payment_hash,
             amount_msat=amount_msat)
    return IssuedInvoice(record)


async def find_invoice(db: Database, payment_hash: str) -> InvoiceRecord | None:
    """The stored invoice with this payment hash, or ``None``."""
    async with db.connect() as conn:
        return await get_invoice(conn, payment_hash.lower())


async def _replay(db: Database, key: str, fingerprint: str) -> IssuedInvoice | None:
    async with db.connect() as conn:
        existing = await get_by_idempotency_key(conn, key)
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return IssuedInvoice(existing, replayed=True)


async def _check(
    issued: ProviderInvoice, provider: str, amount_msat: int, request: InvoiceRequest,
    ctx: InvoiceContext,
) -> datetime:
    """Validate what a provider returned; the invoice's expiry time on success."""
    if issued.amount_msat != amount_msat:
        raise InvalidInvoice(
            f"provider reported {issued.amount_msat} msat, requested {amount_msat}",
            provider=provider,
        )
    expectation = InvoiceExpectation(
        network=ctx.network,
        amount_msat=amount_msat,
        payment_hash=issued.payment_hash,
        description=request.description,
        expiry=request.expiry,
        payee=await ctx.payee_keys.expected(provider),
        now=ctx.wall_clock(),
    )
    try:
        decoded = validate_invoice(issued.bolt11, expectation)
    except InvalidInvoice as exc:
        exc.provider = provider
        raise
    await ctx.payee_keys.learn(provider, decoded.payee)
    return datetime.fromtimestamp(decoded.timestamp + decoded.expiry, UTC)
