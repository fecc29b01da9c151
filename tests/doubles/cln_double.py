"""A Core Lightning double: the clnrest plugin as a real HTTP server on a loopback port.

Follows, field for field, Core Lightning's Rust ``clnrest`` plugin and JSON-RPC schemas:

- clnrest (``plugins/rest-plugin/src/{handlers,shared}.rs``, ElementsProject/lightning master
  ``090f4b0e``, newest tag v26.06.6; the same mapping since ``1fc7b139``): every RPC method at
  ``POST /v1/<method>``, the rune in the ``Rune`` header (read without regard to case),
  parameters as a JSON object whose ``null`` members are dropped, success **201** with the
  RPC result as the body; any other HTTP method on ``/v1/...`` is 405, a path without
  ``v1/`` is 404, an unsupported ``Content-Type`` or ``Accept`` is 406, a body that is not
  JSON is 500. Errors are the RPC error object ``{"code", "message", "data"}``: 403 for a
  missing rune (1501), 401 for a rune that is not ours (1501) or does not permit the call
  (1502, ``Not permitted: method is not equal to <m>``, the ccan/rune wording), 404 for an
  unknown method (-32601), 500 for any other RPC error.
- JSON-RPC (``doc/schemas/{invoice,listinvoices,waitanyinvoice,getinfo,listfunds}.json``,
  ``common/json_param.c``, ``common/json_command.c``, ``lightningd/invoice.c``): ``invoice``
  (``amount_msat``, ``label``, ``description`` required; ``expiry`` 604800 by default;
  duplicate label 900), ``listinvoices`` (by one of ``label``, ``invstring``,
  ``payment_hash``, ``offer_id``; an unknown hash is an empty list), ``waitanyinvoice``
  (``lastpay_index``, ``timeout``; 904 ``Timed out while waiting for invoice to be paid``),
  ``getinfo`` and ``listfunds``. Amounts are integers of msat; hashes lowercase hex.

Invoices are real BOLT11 strings signed with the double's own node key
(:func:`lngate.bolt11.encode.encode`), kept in memory; :meth:`ClnDouble.mark_paid` pays one as a
payer's node would (pay index, preimage, time), which wakes ``waitanyinvoice``.

TLS (``ClnDouble(tls=True)``): like clnrest's ``certs.rs``, a CA (``ca.pem``, ``cln Root REST
CA``) and a server certificate it signs (``server.pem``, ``cln rest server``, names ``cln``,
``localhost`` and the listening IP), ECDSA P-256, made with the ``openssl`` command line.

Runes: ``double.rune`` permits every method; :meth:`ClnDouble.make_rune` makes one restricted to
some methods. Failures are scripted per RPC method (:mod:`tests.doubles.scripting`);
:meth:`ClnDouble.drop_waiters` closes the connections of pending ``waitanyinvoice`` calls.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from coincurve import PrivateKey

from lngate.bolt11.encode import encode
from lngate.domain import Network
from tests.doubles.scripting import Script

METHODS = ("invoice", "listinvoices", "waitanyinvoice", "getinfo", "listfunds")
DEFAULT_EXPIRY = 604800
_INVOICE_PARAMS = frozenset(
    {"amount_msat", "label", "description", "expiry", "fallbacks", "preimage",
     "exposeprivatechannels", "cltv", "deschashonly"}
)
_LISTINVOICES_PARAMS = frozenset(
    {"label", "invstring", "payment_hash", "offer_id", "index", "start", "limit"}
)
_WAIT_PARAMS = frozenset({"lastpay_index", "timeout"})
_UNKNOWN_PARAMETER = (
    "unknown parameter: {}, this may be caused by a failure to autodetect key=value-style "
    "parameters. Please try using the -k flag and explicit key=value pairs of parameters."
)


@dataclass(frozen=True)
class ClnCerts:
    """clnrest's certificate files."""

    ca_path: Path
    server_path: Path
    server_key_path: Path
    server_fingerprint: str
    """SHA-256 of ``server.pem`` (DER), lowercase hex."""


def make_cln_certs(directory: Path) -> ClnCerts:
    """A CA and a server certificate signed by it, as clnrest generates them."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    server, server_key = directory / "server.pem", directory / "server-key.pem"
    csr, ext = directory / "server.csr", directory / "server.ext"
    openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
            "-subj", "/CN=cln Root REST CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", str(server_key), "-out", str(csr),
            "-subj", "/CN=cln rest server")
    ext.write_text("subjectAltName=DNS:cln,DNS:localhost,IP:127.0.0.1\n"
                   "keyUsage=digitalSignature,keyEncipherment,keyAgreement\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(server), "-days", "2", "-extfile", str(ext))
    der = ssl.PEM_cert_to_DER_cert(server.read_text())
    return ClnCerts(ca, server, server_key, hashlib.sha256(der).hexdigest())


class RpcError(Exception):
    """An RPC failure, sent by clnrest as ``status`` with the flat error object."""

    def __init__(self, code: int | None, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def reply(self) -> web.Response:
        return web.json_response(
            {"code": self.code, "message": self.message, "data": None}, status=self.status
        )


def bad_param(name: str, why: str) -> RpcError:
    """What ``command_fail_badparam`` answers outside developer mode."""
    return RpcError(-32602, f"{name}: {why}: invalid token (see logs for details)")


@dataclass
class ClnInvoice:
    """One invoice as lightningd keeps it."""

    label: str
    bolt11: str
    payment_hash: str
    payment_secret: str
    preimage: str
    description: str
    amount_msat: int | None
    expires_at: int
    created_index: int
    updated_index: int | None = None
    pay_index: int | None = None
    amount_received_msat: int | None = None
    paid_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self, now: float) -> str:
        if self.pay_index is not None:
            return "paid"
        return "expired" if now >= self.expires_at else "unpaid"

    def entry(self, now: float) -> dict[str, Any]:
        """The object listinvoices and waitanyinvoice return (optional fields only when set)."""
        entry: dict[str, Any] = {
            "label": self.label,
            "bolt11": self.bolt11,
            "payment_hash": self.payment_hash,
            "status": self.status(now),
            "description": self.description,
            "expires_at": self.expires_at,
            "created_index": self.created_index,
        }
        if self.amount_msat is not None:
            entry["amount_msat"] = self.amount_msat
        if self.updated_index is not None:
            entry["updated_index"] = self.updated_index
        if self.pay_index is not None:
            entry.update(
                pay_index=self.pay_index,
                amount_received_msat=self.amount_received_msat,
                paid_at=self.paid_at,
                payment_preimage=self.preimage,
            )
        entry.update(self.extra)
        return entry


class ClnDouble:
    """A scriptable clnrest on ``127.0.0.1``; use ``async with ClnDouble() as double``."""

    def __init__(
        self,
        *,
        network: str = "regtest",
        private_key: PrivateKey | None = None,
        channels_msat: tuple[int, ...] = (50_000_000, 25_000_000),
        tls: bool = False,
    ) -> None:
        self.tls = tls
        self.certs: ClnCerts | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.network = network
        self.currency = Network.from_name(network).value
        self.key = private_key or PrivateKey()
        self.node_id = self.key.public_key.format(compressed=True).hex()
        self.channels_msat = list(channels_msat)
        self.runes: dict[str, frozenset[str] | None] = {}
        self.rune = self.make_rune(None)
        self.invoices: dict[str, ClnInvoice] = {}
        """payment_hash -> invoice."""
        self.sync_warning: str | None = None
        """Set to make getinfo carry ``warning_bitcoind_sync``, as while bitcoind syncs."""
        self.clock = time.time
        self.script = Script(METHODS)
        self._created = 0
        self._updated = 0
        self._paid = 0
        self._payments = asyncio.Condition()
        self._waiting: dict[int, web.Request] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> ClnDouble:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        context = None
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="cln-double-")
            self.certs = await asyncio.to_thread(make_cln_certs, Path(self._tmp.name))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certs.server_path, self.certs.server_key_path)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.script.release()
        self.drop_waiters()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> ClnDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------------------- the node

    def make_rune(self, methods: set[str] | None) -> str:
        """A rune this node accepts: for every method (``None``) or only for ``methods``."""
        rune = base64.urlsafe_b64encode(os.urandom(33)).decode().rstrip("=")
        self.runes[rune] = None if methods is None else frozenset(methods)
        return rune

    def mark_paid(
        self, payment_hash: str, *, amount_msat: int | None = None, at: int | None = None
    ) -> ClnInvoice:
        """Pay an invoice as a payer's node would: next pay index, the preimage, the time."""
        invoice = self.invoices[payment_hash]
        if invoice.pay_index is not None:
            raise ValueError("already paid")
        self._paid += 1
        self._updated += 1
        invoice.pay_index = self._paid
        invoice.updated_index = self._updated
        invoice.amount_received_msat = amount_msat or invoice.amount_msat
        invoice.paid_at = int(self.clock()) if at is None else at
        self._wake()
        return invoice

    def drop_waiters(self) -> None:
        """Close the connection of every pending ``waitanyinvoice`` call, mid-wait."""
        for request in list(self._waiting.values()):
            if request.transport is not None:
                request.transport.close()
        self._waiting.clear()
        self._wake()

    def _wake(self) -> None:
        async def notify() -> None:
            async with self._payments:
                self._payments.notify_all()

        try:
            task = asyncio.get_running_loop().create_task(notify())
        except RuntimeError:  # no loop: nobody is waiting
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------------------- HTTP layer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        prefix, sep, method = path.partition("v1/")
        if not sep:
            return RpcError(-32601, "Path not found", 404).reply()
        if prefix:
            return RpcError(-32601, "Path invalid, version missing for CLN methods", 404).reply()
        if request.method != "POST":
            return RpcError(
                -32601, "Path invalid, http_method must be POST for CLN methods", 405
            ).reply()
        raw = await request.read()
        try:
            params = self._params(request, raw)
        except RpcError as exc:
            return exc.reply()
        route = method if method in METHODS else None
        if route is not None:
            reply = self.script.record(route, request, raw, params)
            if reply is not None:
                return await self.script.send(request, reply)
        try:
            self._check_rune(request.headers.get("rune"), method)
            result = await self._call(request, method, params)
        except RpcError as exc:
            return exc.reply()
        accept = request.headers.get("Accept", "application/json")
        if "*/*" not in accept and "application/json" not in accept:
            return RpcError(None, f"Unsupported accept header: {accept}", 406).reply()
        return web.json_response(result, status=201)

    @staticmethod
    def _params(request: web.Request, raw: bytes) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "application/json")
        if "*/*" not in content_type and "application/json" not in content_type:
            raise RpcError(None, f"Unsupported content-type header: {content_type}", 406)
        if not raw:
            return {}
        try:
            params = json.loads(raw)
        except ValueError as exc:
            text = raw.decode("utf-8", "replace")
            raise RpcError(None, f"Could not parse `{text}` JSON request: {exc}") from None
        if not isinstance(params, dict):
            raise RpcError(None, f"Could not parse `{raw.decode()}` JSON request: not a map")
        return {key: value for key, value in params.items() if value is not None}

    def _check_rune(self, rune: str | None, method: str) -> None:
        if rune is None:
            raise RpcError(1501, "Not authorized: Missing rune", 403)
        if rune not in self.runes:
            raise RpcError(1501, "Not authorized: Not derived from master", 401)
        allowed = self.runes[rune]
        if allowed is not None and method not in allowed:
            reasons = " AND ".join(f"method is not equal to {m}" for m in sorted(allowed))
            raise RpcError(1502, f"Not permitted: {reasons}", 401)

    async def _call(self, request: web.Request, method: str, params: dict[str, Any]) -> Any:
        if method == "invoice":
            return self._invoice(params)
        if method == "listinvoices":
            return self._listinvoices(params)
        if method == "waitanyinvoice":
            return await self._waitanyinvoice(request, params)
        if method == "getinfo":
            self._no_params(params)
            return self._getinfo()
        if method == "listfunds":
            return self._listfunds(params)
        raise RpcError(-32601, f"Unknown command '{method}'", 404)

    # ----------------------------------------------------------------------------- RPC methods

    @staticmethod
    def _no_params(params: dict[str, Any], allowed: frozenset[str] = frozenset()) -> None:
        for name in params:
            if name not in allowed:
                raise RpcError(-32602, _UNKNOWN_PARAMETER.format(name))

    @staticmethod
    def _u64(params: dict[str, Any], name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_param(name, "should be an unsigned 64 bit integer")
        return value

    def _invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        self._no_params(params, _INVOICE_PARAMS)
        for name in ("amount_msat", "label", "description"):
            if name not in params:
                raise RpcError(-32602, f"missing required parameter: {name}")
        amount = params["amount_msat"]
        if amount == "any":
            amount_msat = None
        elif isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
            amount_msat = amount
        elif isinstance(amount, str) and amount.endswith("msat") and amount[:-4].isdigit():
            amount_msat = int(amount[:-4])
        else:
            raise bad_param("amount_msat", "should be positive msat or 'any'")
        label = params["label"]
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise bad_param("label", "should be a string or number")
        label = str(label)
        description = params["description"]
        if not isinstance(description, str):
            raise bad_param("description", "should be a string (without \\u)")
        expiry = self._u64(params, "expiry")
        expiry = DEFAULT_EXPIRY if expiry is None else expiry
        if any(invoice.label == label for invoice in self.invoices.values()):
            raise RpcError(900, f"Duplicate label '{label}'")
        preimage = params.get("preimage") or os.urandom(32).hex()
        payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
        if payment_hash in self.invoices:
            raise RpcError(901, "preimage already used")
        secret = os.urandom(32).hex()
        now = int(self.clock())
        bolt11 = encode(
            self.key,
            currency=self.currency,
            amount_msat=amount_msat,
            timestamp=now,
            payment_hash=payment_hash,
            payment_secret=secret,
            description=description,
            expiry=expiry,
        )
        self._created += 1
        self.invoices[payment_hash] = ClnInvoice(
            label=label,
            bolt11=bolt11,
            payment_hash=payment_hash,
            payment_secret=secret,
            preimage=preimage,
            description=description,
            amount_msat=amount_msat,
            expires_at=now + expiry,
            created_index=self._created,
        )
        return {
            "payment_hash": payment_hash,
            "expires_at": now + expiry,
            "bolt11": bolt11,
            "payment_secret": secret,
            "created_index": self._created,
        }

    def _listinvoices(self, params: dict[str, Any]) -> dict[str, Any]:
        self._no_params(params, _LISTINVOICES_PARAMS)
        keys = [k for k in ("label", "invstring", "payment_hash", "offer_id") if k in params]
        if len(keys) > 1:
            raise RpcError(
                -32602,
                "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}",
            )
        now = self.clock()
        invoices = sorted(self.invoices.values(), key=lambda i: i.created_index)
        if "payment_hash" in params:
            wanted = params["payment_hash"]
            if not isinstance(wanted, str) or len(wanted) != 64:
                raise bad_param("payment_hash", "should be a 32 byte hex value")
            try:
                bytes.fromhex(wanted)
            except ValueError:
                raise bad_param("payment_hash", "should be a 32 byte hex value") from None
            invoices = [i for i in invoices if i.payment_hash == wanted.lower()]
        elif "label" in params:
            invoices = [i for i in invoices if i.label == str(params["label"])]
        elif "invstring" in params:
            invoices = [i for i in invoices if i.bolt11 == params["invstring"]]
        elif "offer_id" in params:
            invoices = []
        return {"invoices": [invoice.entry(now) for invoice in invoices]}

    async def _waitanyinvoice(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._no_params(params, _WAIT_PARAMS)
        last = self._u64(params, "lastpay_index") or 0
        timeout = self._u64(params, "timeout")
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        self._waiting[id(request)] = request
        try:
            async with self._payments:
                while True:
                    if request.transport is None or request.transport.is_closing():
                        raise asyncio.CancelledError  # dropped by drop_waiters
                    paid = sorted(
                        (i for i in self.invoices.values()
                         if i.pay_index is not None and i.pay_index > last),
                        key=lambda i: i.pay_index or 0,
                    )
                    if paid:
                        return paid[0].entry(self.clock())
                    remaining = (
                        None if deadline is None
                        else deadline - asyncio.get_running_loop().time()
                    )
                    if remaining is not None and remaining <= 0:
                        raise RpcError(904, "Timed out while waiting for invoice to be paid")
                    try:
                        await asyncio.wait_for(self._payments.wait(), remaining)
                    except TimeoutError:
                        continue
        finally:
            self._waiting.pop(id(request), None)

    def _getinfo(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.node_id,
            "alias": "SILENTARTIST",
            "color": self.node_id[2:8],
            "num_peers": len(self.channels_msat),
            "num_pending_channels": 0,
            "num_active_channels": len(self.channels_msat),
            "num_inactive_channels": 0,
            "address": [],
            "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": 19846}],
            "version": "v25.09",
            "blockheight": 110,
            "network": self.network,
            "fees_collected_msat": 0,
            "lightning-dir": f"/tmp/.lightning/{self.network}",
            "our_features": {
                "init": "08a0000a8a5961", "node": "88a0000a8a5961", "channel": "",
                "invoice": "02000002024100",
            },
        }
        if self.sync_warning:
            info["warning_bitcoind_sync"] = self.sync_warning
        return info

    def _listfunds(self, params: dict[str, Any]) -> dict[str, Any]:
        self._no_params(params, frozenset({"spent"}))
        channels = []
        for number, ours in enumerate(self.channels_msat):
            txid = hashlib.sha256(f"{self.node_id}{number}".encode()).hexdigest()
            channels.append({
                "peer_id": PrivateKey().public_key.format().hex(),
                "connected": True,
                "state": "CHANNELD_NORMAL",
                "channel_id": hashlib.sha256(txid.encode()).hexdigest(),
                "short_channel_id": f"103x{number + 1}x0",
                "our_amount_msat": ours,
                "amount_msat": ours * 2,
                "funding_txid": txid,
                "funding_output": 0,
            })
        return {"outputs": [], "channels": channels}
