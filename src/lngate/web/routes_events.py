"""``GET /api/invoices/{payment_hash}/events``: an invoice's status as Server-Sent Events.

A checkout page opens it and waits instead of polling. The stream sends the current status at
once (``event: status``, ``data: {"status": "pending"|"settled"|"expired", ...}``), then again on
every change, and ends after a final one. Changes are seen through this process's settlement
notifications and a database re-read every few seconds (settlements by other processes), shared
by every stream of the process (:class:`~lngate.services.stream_watch.StreamWatch`).
Comment lines keep proxies from closing an idle stream; the stream's lifetime is bounded
(``event: timeout``), after which the client reconnects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from lngate.domain import InvoiceState, is_payment_hash
from lngate.services.invoices import find_invoice
from lngate.web.errors import ApiError
from lngate.web.openapi import RATE_LIMITED, errors, event_stream
from lngate.web.schemas import InvoiceEvent
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
_PUBLIC = {InvoiceState.PENDING: "pending", InvoiceState.PAID: "settled",
           InvoiceState.EXPIRED: "expired"}


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get(
    "/api/invoices/{payment_hash}/events", tags=["invoices"],
    summary="Follow an invoice's status (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: event_stream(InvoiceEvent, ["status", "timeout"],
                          "``event: status`` now and on every change; ``event: timeout`` when "
                          "the stream's lifetime ends; ``: keep-alive`` comments in between."),
        **errors({404: "``not_found``: no invoice has this payment hash", 429: RATE_LIMITED}),
    },
)
async def invoice_events(payment_hash: str, request: Request) -> StreamingResponse:
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
    events = gateway.settler.events
    watch = gateway.stream_watch

    async def stream() -> AsyncIterator[bytes]:
        started = time.monotonic()
        last_sent = started
        state = record.state
        yield b"retry: 3000\n\n" + _event("status", {"status": _PUBLIC[state],
                                                      "paymentHash": payment_hash})
        if state is not InvoiceState.PENDING:
            return
        # woken by this process's settlements, the transport's, and the process's shared
        # re-read of every watched invoice (services/stream_watch.py): the stream re-reads its
        # invoice only when woken
        with events.listen(payment_hash) as changed, watch.watch(payment_hash):
            while True:
                remaining = settings.sse_max_seconds - (time.monotonic() - started)
                if remaining <= 0:
                    yield _event("timeout", {"status": _PUBLIC[state]})
                    return
                wait = min(settings.sse_heartbeat_seconds, remaining)
                # a timeout around the wait, not wait_for: wait_for runs the wait in a task of
                # its own each time, one more task alive per open stream
                try:
                    async with asyncio.timeout(wait):
                        await changed.wait()
                except TimeoutError:
                    pass
                woken = changed.is_set()
                changed.clear()
                if await request.is_disconnected():
                    return
                current = await find_invoice(gateway.db, payment_hash) if woken else None
                if current is not None and current.state is not state:
                    state = current.state
                    last_sent = time.monotonic()
                    yield _event("status", {"status": _PUBLIC[state],
                                            "paymentHash": payment_hash})
                    if state is not InvoiceState.PENDING:
                        return
                elif time.monotonic() - last_sent >= settings.sse_heartbeat_seconds:
                    last_sent = time.monotonic()
                    yield b": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
