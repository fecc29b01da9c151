"""An LNbits double: a real HTTP server (``aiohttp.web`` on a free loopback port) in the test's
event loop, answering like LNbits 1.6.2 unless the test scripts another answer.

By default it behaves like a FakeWallet LNbits: ``POST /api/v1/payments`` issues a real, signed
BOLT11 (FakeWallet's node key, ``lnbc``), ``GET /api/v1/payments/{hash}`` reports it pending until
:meth:`LNbitsDouble.mark_paid`, ``GET /api/v1/wallet`` gives the balance in msat, and the keys are
checked the way LNbits checks them (no key: 401; unknown key: 404 "Wallet not found." on create
and wallet, the key-less answer without ``details`` on status).

A test changes an answer per route (``"create"``, ``"status"``, ``"wallet"``) with a
:class:`Reply` (status, JSON or raw body, headers, delay, hang, raw socket bytes) or a function
of the :class:`RecordedRequest` returning one::

    double.script("create", Reply(500, json={"detail": "boom"}))      # next call only
    double.always("status", Reply(200, body=b"<html>"))               # until reset
    double.always("create", lambda req: Reply(201, json=double.issue(req.json, network="tb")))

:meth:`LNbitsDouble.issue` builds LNbits' create answer around a BOLT11 that can be made wrong
on purpose (amount, network, hash, expiry, timestamp, description, signing key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bolt11
from aiohttp import web
from bolt11.models.tags import TagChar, Tags
from coincurve import PrivateKey

FAKE_WALLET_SECRET = "ToTheMoon1"
FAKE_NODE_PRIVATE_KEY = hashlib.pbkdf2_hmac(
    "sha256", FAKE_WALLET_SECRET.encode(), b"FakeWallet", 2048, 32
).hex()
"""The key LNbits' FakeWallet signs with by default (so the same payee as the real peer)."""
FAKE_NODE_PUBKEY = PrivateKey.from_hex(FAKE_NODE_PRIVATE_KEY).public_key.format().hex()

_NOTHING: Any = object()
ROUTES = ("create", "status", "wallet")


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``json`` (any JSON value) or ``body`` (raw bytes/text) is sent with
    ``status`` and ``headers`` after ``delay`` seconds; ``hang`` never answers; ``raw`` is written
    on the socket as the whole response (status line included), then the connection closes
    (with ``hang`` too: ``raw`` is written, then nothing more, e.g. a body that never ends)."""

    status: int = 200
    json: Any = _NOTHING
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    raw: bytes | None = None
    linger: float = 0.0
    """With ``raw``: seconds the connection stays open, unread, before it is closed (what
    LNbits does after a 500: the client reuses the connection, then it closes)."""
    content_type: str = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    """What the double received."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    """The parsed JSON body, ``None`` when there is none or it is not JSON."""
    payment_hash: str | None = None


Responder = Reply | Callable[[RecordedRequest], Reply]


def make_bolt11(
    *,
    amount_msat: int | None,
    payment_hash: str,
    memo: str | None = None,
    description_hash: str | None = None,
    expiry: int = 3600,
    timestamp: int | None = None,
    network: str = "bc",
    private_key: str = FAKE_NODE_PRIVATE_KEY,
) -> str:
    """A signed BOLT11 with exactly these fields (``network`` is the prefix: bc, tb, bcrt...)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, payment_hash)
    tags.add(TagChar.payment_secret, os.urandom(32).hex())
    if description_hash is not None:
        tags.add(TagChar.description_hash, description_hash)
    else:
        tags.add(TagChar.description, memo or "")
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, 18)
    invoice = bolt11.Bolt11(
        currency=network,
        date=int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp,
        tags=tags,
        amount_msat=bolt11.MilliSatoshi(amount_msat) if amount_msat else None,
    )
    return bolt11.encode(invoice, private_key)


class LNbitsDouble:
    """A scriptable LNbits on ``127.0.0.1``; use ``async with LNbitsDouble() as double``."""

    def __init__(
        self,
        *,
        invoice_key: str | None = None,
        admin_key: str | None = None,
        balance_msat: int = 21_000_000,
        wallet_id: str | None = None,
    ) -> None:
        self.invoice_key = invoice_key or "inkey-" + os.urandom(12).hex()
        self.admin_key = admin_key or "adminkey-" + os.urandom(12).hex()
        self.wallet_id = wallet_id or os.urandom(16).hex()
        self.balance_msat = balance_msat
        self.requests: list[RecordedRequest] = []
        self.invoices: dict[str, dict[str, Any]] = {}
        """Invoices issued by the default create answer: payment_hash -> LNbits Payment JSON."""
        self._once: dict[str, deque[Responder]] = {route: deque() for route in ROUTES}
        self._always: dict[str, Responder | None] = dict.fromkeys(ROUTES)
        self._hanging: set[asyncio.Future[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> LNbitsDouble:
        app = web.Application()
        app.router.add_post("/api/v1/payments", self._handle_create)
        app.router.add_get("/api/v1/payments/{payment_hash}", self._handle_status)
        app.router.add_get("/api/v1/wallet", self._handle_wallet)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for waiter in self._hanging:
            waiter.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LNbitsDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------------------- scripting

    def script(self, route: str, *replies: Responder) -> None:
        """Answer the next calls of ``route`` with ``replies``, one each, in order."""
        self._once[self._route(route)].extend(replies)

    def always(self, route: str, reply: Responder | None) -> None:
        """Answer every later call of ``route`` with ``reply`` (``None``: back to LNbits-like)."""
        self._always[self._route(route)] = reply

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    def mark_paid(self, payment_hash: str, *, at: datetime | str | None = None) -> None:
        """Settle an issued invoice, as an internal payment on LNbits would.

        LNbits stamps ``updated_at`` with the time it marks the invoice paid; ``at`` replaces
        that time (a datetime, or any raw value to send as is, e.g. a malformed one).
        """
        payment = self.invoices[payment_hash]
        payment["status"] = "success"
        when = datetime.now(UTC) if at is None else at
        payment["updated_at"] = when.isoformat() if isinstance(when, datetime) else when
        self.balance_msat += payment["amount"]

    def mark_failed(self, payment_hash: str) -> None:
        """Fail an issued invoice, as LNbits does lazily once it has expired."""
        self.invoices[payment_hash]["status"] = "failed"

    def issue(
        self,
        request: Any,
        *,
        amount_msat: int | None = None,
        memo: str | None = None,
        description_hash: str | None = None,
        payment_hash: str | None = None,
        bolt11_payment_hash: str | None = None,
        expiry: int | None = None,
        timestamp: int | None = None,
        network: str = "bc",
        private_key: str = FAKE_NODE_PRIVATE_KEY,
    ) -> dict[str, Any]:
        """Store and return LNbits' create answer for ``request`` (the create JSON body).

        Every field defaults to what the request asked for; an override makes the invoice
        differ from it. ``payment_hash`` is what the JSON reports, ``bolt11_payment_hash`` what
        the BOLT11 carries (defaults to the same).
        """
        request = request if isinstance(request, dict) else {}
        preimage = os.urandom(32)
        payment_hash = payment_hash or hashlib.sha256(preimage).hexdigest()
        sats = request.get("amount", 0)
        amount_msat = int(sats) * 1000 if amount_msat is None else amount_msat
        memo = request.get("memo", "") if memo is None else memo
        expiry = int(request.get("expiry") or 3600) if expiry is None else expiry
        invoice = make_bolt11(
            amount_msat=amount_msat,
            payment_hash=bolt11_payment_hash or payment_hash,
            memo=memo,
            description_hash=description_hash,
            expiry=expiry,
            timestamp=timestamp,
            network=network,
            private_key=private_key,
        )
        now = datetime.now(UTC)
        payment = {
            "checking_id": payment_hash,
            "payment_hash": payment_hash,
            "wallet_id": self.wallet_id,
            "amount": amount_msat,
            "fee": 0,
            "bolt11": invoice,
            "payment_request": invoice,
            "fiat_provider": None,
            "status": "pending",
            "memo": memo,
            # LNbits writes the create answer's expiry without a timezone
            "expiry": (now + timedelta(seconds=expiry)).replace(tzinfo=None).isoformat(),
            "webhook": request.get("webhook"),
            "webhook_status": None,
            "preimage": preimage.hex(),
            "tag": None,
            "extension": None,
            "time": now.isoformat(),
            "created_at": now.isoformat(),
            "updated_at": now.isoformat(),
            "labels": [],
            "extra": request.get("extra") or {},
            "external_id": None,
        }
        self.invoices[payment_hash] = payment
        return dict(payment)

    def status_body(self, payment_hash: str) -> dict[str, Any]:
        """LNbits' answer to the owning wallet for an issued invoice."""
        payment = dict(self.invoices[payment_hash])
        if payment["status"] == "success":
            return {"paid": True, "preimage": payment["preimage"], "details": payment}
        if payment["status"] == "failed":
            return {"paid": False, "status": "failed", "details": payment}
        return {"paid": False, "status": "pending", "preimage": None, "details": payment}

    # ----------------------------------------------------------------------------- handlers

    async def _handle_create(self, request: web.Request) -> web.StreamResponse:
        return await self._answer("create", request, self._default_create)

    async def _handle_status(self, request: web.Request) -> web.StreamResponse:
        return await self._answer("status", request, self._default_status)

    async def _handle_wallet(self, request: web.Request) -> web.StreamResponse:
        return await self._answer("wallet", request, self._default_wallet)

    def _default_create(self, req: RecordedRequest) -> Reply:
        denied = self._check_key(req, admin_only=False)
        if denied:
            return denied
        body = req.json if isinstance(req.json, dict) else {}
        if body.get("out", True):
            return Reply(403, json={"detail": "Invoice (or Admin) key required."})
        if "amount" not in body:
            return Reply(500, body="Unexpected error! ID: double", content_type="text/plain")
        return Reply(201, json=self.issue(body))

    def _default_status(self, req: RecordedRequest) -> Reply:
        payment_hash = req.payment_hash or ""
        if payment_hash not in self.invoices:
            return Reply(404, json={"detail": "Payment does not exist."})
        body = self.status_body(payment_hash)
        if req.headers.get("X-Api-Key") not in (self.invoice_key, self.admin_key):
            body.pop("details")  # LNbits' answer to a key that is not the owner's
        return Reply(200, json=body)

    def _default_wallet(self, req: RecordedRequest) -> Reply:
        denied = self._check_key(req, admin_only=False)
        if denied:
            return denied
        body: dict[str, Any] = {"name": "merchant", "balance": self.balance_msat}
        if req.headers.get("X-Api-Key") == self.admin_key:
            body["id"] = self.wallet_id
        return Reply(200, json=body)

    def _check_key(self, req: RecordedRequest, *, admin_only: bool) -> Reply | None:
        key = req.headers.get("X-Api-Key")
        if not key:
            return Reply(401, json={"detail": "No Api Key provided."})
        allowed = (self.admin_key,) if admin_only else (self.invoice_key, self.admin_key)
        if key not in allowed:
            return Reply(404, json={"detail": "Wallet not found."})
        return None

    async def _answer(
        self, route: str, request: web.Request, default: Callable[[RecordedRequest], Reply]
    ) -> web.StreamResponse:
        raw_body = await request.read()
        try:
            parsed = json.loads(raw_body) if raw_body else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            route=route,
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=raw_body,
            json=parsed,
            payment_hash=request.match_info.get("payment_hash"),
        )
        self.requests.append(recorded)
        if self._once[route]:
            responder: Responder = self._once[route].popleft()
        else:
            responder = self._always[route] or default
        reply = responder(recorded) if callable(responder) else responder
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            transport = request.transport
            assert transport is not None
            transport.write(reply.raw)
            if reply.hang:  # e.g. headers sent, body never completed
                await self._hang()
            await asyncio.sleep(reply.linger)
            transport.close()
            # the connection is gone; aiohttp finds nothing to write the response to
            raise asyncio.CancelledError
        if reply.hang:
            await self._hang()
        if reply.json is not _NOTHING:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        body = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
        return web.Response(
            status=reply.status, body=body, headers=reply.headers, content_type=reply.content_type
        )

    async def _hang(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hanging.add(waiter)
        try:
            await waiter
        finally:
            self._hanging.discard(waiter)

    @staticmethod
    def _route(route: str) -> str:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        return route
