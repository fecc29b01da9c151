"""``GET /api/invoices/{payment_hash}/events``: an invoice's status as Server-Sent Events.

A checkout page opens it and waits instead of polling. The stream sends the current status at
once (``event: status``, ``data: {"status": "pending"|"settled"|"expired", ...}``), then again on
every change, and ends after a final one. Changes are seen through this process's settlement
notifications and a database re-read every few seconds (settlements by other processes), shared
by every stream of the process (:class:`~lngate.services.stream_watch.StreamWatch`).
Comment lines keep proxies from closing an idle stream; the stream's lifetime is bounded
(``event: timeout``), after which the client reconnects.

A stream stays open for minutes, hundreds at once per process, so what each holds is kept small:
it is served by :class:`~lngate.web.hot_paths.HotPaths` past FastAPI's routing, and answered by
:class:`InvoiceEventStream`, one coroutine writing the events straight to the server plus one
small task waiting for the client to leave, instead of Starlette's ``StreamingResponse`` (a task
group of two tasks around an async generator) inside FastAPI's request handling.
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from lngate.domain import InvoiceState, is_payment_hash
from lngate.services.events import InvoiceEvents
from lngate.services.invoices import find_invoice
from lngate.services.stream_watch import StreamWatch
from lngate.store import Database
from lngate.web.errors import ApiError
from lngate.web.openapi import RATE_LIMITED, errors, event_stream
from lngate.web.schemas import InvoiceEvent
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
EVENTS_PATH = "/api/invoices/{payment_hash}/events"
_PUBLIC = {InvoiceState.PENDING: "pending", InvoiceState.PAID: "settled",
           InvoiceState.EXPIRED: "expired"}
_RETRY = b"retry: 3000\n\n"
_KEEP_ALIVE = b": keep-alive\n\n"


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class InvoiceEventStream(Response):
    """The event stream of one invoice, written to the server as it goes (see the module).

    The bytes are those of a ``StreamingResponse`` of the same events: the same headers, one
    body message per event, an empty last message when the stream ends; nothing more once the
    client has gone.
    """

    media_type = "text/event-stream"

    def __init__(self, *, payment_hash: str, state: InvoiceState, db: Database,
                 events: InvoiceEvents, watch: StreamWatch, max_seconds: float,
                 heartbeat_seconds: float) -> None:
        """Only what the stream needs is kept: it lives as long as the stream."""
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._payment_hash = payment_hash
        self._state = state
        self._db = db
        self._events = events
        self._watch = watch
        self._max_seconds = max_seconds
        self._heartbeat_seconds = heartbeat_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a fresh header list: the CORS middleware appends its headers to the one it is given
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": list(self.raw_headers)})
        await self._chunk(send, _RETRY + _event("status", {
            "status": _PUBLIC[self._state], "paymentHash": self._payment_hash}))
        if self._state is not InvoiceState.PENDING or await self._follow(receive, send):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _chunk(send: Send, body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _follow(self, receive: Receive, send: Send) -> bool:
        """Send the changes of a pending invoice until it is final or the lifetime ends (True),
        or until the client leaves (False)."""
        payment_hash = self._payment_hash
        started = time.monotonic()
        last_sent = started
        state = self._state
        # woken by this process's settlements, the transport's, the process's shared re-read of
        # every watched invoice (services/stream_watch.py), and the client leaving: the stream
        # re-reads its invoice only when woken
        with self._events.listen(payment_hash) as changed, self._watch.watch(payment_hash):
            gone = asyncio.ensure_future(_until_disconnected(receive))
            gone.add_done_callback(lambda _task: changed.set())
            try:
                while True:
                    remaining = self._max_seconds - (time.monotonic() - started)
                    if remaining <= 0:
                        await self._chunk(send, _event("timeout", {"status": _PUBLIC[state]}))
                        return True
                    wait = min(self._heartbeat_seconds, remaining)
                    # a timeout around the wait, not wait_for: wait_for runs the wait in a task
                    # of its own each time, one more task alive per open stream
                    try:
                        async with asyncio.timeout(wait):
                            await changed.wait()
                    except TimeoutError:
                        pass
                    if gone.done():
                        return False
                    woken = changed.is_set()
                    changed.clear()
                    current = await find_invoice(self._db, payment_hash) if woken else None
                    if current is not None and current.state is not state:
                        state = current.state
                        last_sent = time.monotonic()
                        await self._chunk(send, _event("status", {
                            "status": _PUBLIC[state], "paymentHash": payment_hash}))
                        if state is not InvoiceState.PENDING:
                            return True
                    elif time.monotonic() - last_sent >= self._heartbeat_seconds:
                        last_sent = time.monotonic()
                        await self._chunk(send, _KEEP_ALIVE)
            finally:
                gone.cancel()


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@router.get(
    EVENTS_PATH, tags=["invoices"],
    summary="Follow an invoice's status (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: event_stream(InvoiceEvent, ["status", "timeout"],
                          "``event: status`` now and on every change; ``event: timeout`` when "
                          "the stream's lifetime ends; ``: keep-alive`` comments in between."),
        **errors({404: "``not_found``: no invoice has this payment hash", 429: RATE_LIMITED}),
    },
)
async def invoice_events(payment_hash: str, request: Request) -> InvoiceEventStream:
    """Stream the invoice's status until it is settled or expired (or the lifetime ends)."""
    gateway = gateway_of(request)
    await enforce_rate_limit(request, "invoice-events")
    if not is_payment_hash(payment_hash):
        raise ApiError(404, "Facture non trouvée", "not_found")
    payment_hash = payment_hash.lower()
    record = await find_invoice(gateway.db, payment_hash)
    if record is None:
        raise ApiError(404, "Facture non trouvée", "not_found")
    settings = gateway.settings
    return InvoiceEventStream(
        payment_hash=payment_hash, state=record.state, db=gateway.db,
        events=gateway.settler.events, watch=gateway.stream_watch,
        max_seconds=settings.sse_max_seconds, heartbeat_seconds=settings.sse_heartbeat_seconds,
    )
