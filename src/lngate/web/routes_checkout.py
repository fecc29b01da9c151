"""The hosted checkout page: ``GET /pay/{payment_hash}`` and ``GET /pay/order/{order_id}``.

The page shows the amount, the description, the invoice as a QR code (an SVG drawn here, so it
shows without JavaScript), the ``lightning:`` link and the BOLT11 text. ``static/checkout.js``
then adds the live status (the invoice's Server-Sent Events), the countdown, the copy button
and WebLN. An order's invoice that expired unpaid can be replaced: ``POST
/pay/{payment_hash}/renew`` issues a new one for the same order and redirects to its page.
Unknown or malformed addresses get an HTML 404 page, never a 500.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lngate.domain import is_payment_hash, msat_to_sat
from lngate.errors import NoProviderAvailable
from lngate.services.checkout import (
    Checkout,
    RenewalRefusal,
    RenewalRefused,
    find_checkout,
    renew_order_invoice,
)
from lngate.web.errors import ApiError, no_provider_error
from lngate.web.pages import error_page, rate_limited_page, render_page, with_language
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")


def checkout_url(public_url: str, payment_hash: str) -> str:
    """The absolute address of an invoice's checkout page."""
    return f"{public_url}/pay/{payment_hash}"


def qr_svg(bolt11: str) -> Markup:
    """The ``lightning:`` URI of ``bolt11`` as an inline SVG QR code (scales with its box).

    Upper case, which BOLT11 allows, fits QR's alphanumeric mode: a smaller, easier code.
    """
    import segno  # with the first checkout page: a worker serving only the API never loads it

    code = segno.make_qr(f"lightning:{bolt11}".upper(), error="m")
    return Markup(code.svg_inline(scale=1, border=4, dark="#000", light="#fff", omitsize=True,
                                  svgclass="qr-code", lineclass=None))


def countdown(seconds: int) -> str:
    """``3599`` -> ``59:59``; ``3600`` -> ``1:00:00`` (what the page shows before its script runs)."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _page(request: Request, checkout: Checkout) -> HTMLResponse:
    invoice = checkout.invoice
    # rounded up: the page's countdown must not reach zero before the invoice has expired
    seconds_left = math.ceil(
        (invoice.expires_at - gateway_of(request).settler.clock()).total_seconds())
    lang = request.query_params.get("lang")
    return render_page(
        request, "checkout.html",
        payment_hash=invoice.payment_hash, bolt11=invoice.bolt11,
        description=invoice.description, amount_sat=msat_to_sat(invoice.amount_msat),
        is_test=invoice.is_test, state=checkout.state.value, expires_at=_iso(invoice.expires_at),
        seconds_left=max(seconds_left, 0), countdown=countdown(seconds_left),
        qr_svg=qr_svg(invoice.bolt11),
        renew_action=(with_language(f"/pay/{invoice.payment_hash}/renew", lang)
                      if checkout.order is not None else None),
        refresh_url=with_language(request.url.path, lang),
    )


def _invoice_not_found(request: Request) -> HTMLResponse:
    return error_page(request, 404, "error.invoice_not_found", "error.invoice_not_found_text")


@router.get("/pay/order/{order_id}", include_in_schema=False)
async def order_checkout_page(order_id: str, request: Request) -> Response:
    """The checkout page of an order's current invoice (a stable address for the shop)."""
    try:
        await enforce_rate_limit(request, "checkout")
    except ApiError as exc:
        return rate_limited_page(request, exc)
    gateway = gateway_of(request)
    checkout = None
    if _ORDER_ID.fullmatch(order_id):
        checkout = await find_checkout(gateway.db, gateway.settler, order_id=order_id)
    if checkout is None:
        return error_page(request, 404, "error.order_not_found", "error.order_not_found_text")
    return _page(request, checkout)


@router.get("/pay/{payment_hash}", include_in_schema=False)
async def checkout_page(payment_hash: str, request: Request) -> Response:
    """The checkout page of an invoice."""
    try:
        await enforce_rate_limit(request, "checkout")
    except ApiError as exc:
        return rate_limited_page(request, exc)
    gateway = gateway_of(request)
    checkout = None
    if is_payment_hash(payment_hash):
        checkout = await find_checkout(gateway.db, gateway.settler, payment_hash=payment_hash)
    if checkout is None:
        return _invoice_not_found(request)
    return _page(request, checkout)


@router.post("/pay/{payment_hash}/renew", include_in_schema=False)
async def renew_invoice(payment_hash: str, request: Request) -> Response:
    """A new invoice for the order of an expired invoice; 303 to its page.

    An invoice that is paid, still payable or already replaced is not renewed: the answer
    redirects to its own page, which shows why.
    """
    try:
        await enforce_rate_limit(request, "checkout-renew")
    except ApiError as exc:
        return rate_limited_page(request, exc)
    if not is_payment_hash(payment_hash):
        return _invoice_not_found(request)
    gateway = gateway_of(request)
    lang = request.query_params.get("lang")
    try:
        renewed = await renew_order_invoice(payment_hash, ctx=gateway.orders,
                                            settler=gateway.settler)
    except RenewalRefused as exc:
        if exc.reason is RenewalRefusal.NOT_AN_ORDER:
            checkout = await find_checkout(gateway.db, gateway.settler, payment_hash=payment_hash)
            if checkout is None:
                return _invoice_not_found(request)
        return RedirectResponse(with_language(f"/pay/{payment_hash.lower()}", lang), 303)
    except NoProviderAvailable as exc:
        logged = no_provider_error(exc)  # logs each provider's reason
        return error_page(request, 503, "error.unavailable", "error.unavailable_text",
                          headers=logged.headers)
    return RedirectResponse(with_language(f"/pay/{renewed.invoice.payment_hash}", lang), 303)


@router.get("/pay/{anything:path}", include_in_schema=False)
async def unknown_checkout_page(request: Request) -> Response:
    """Any other address under ``/pay/``: the HTML 404 page."""
    return _invoice_not_found(request)
