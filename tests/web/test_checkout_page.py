"""The hosted checkout page over HTTP (no browser): what the server renders, its headers, its
errors, the new-invoice form and ``checkoutUrl``. The browser's side is in
``test_checkout_browser.py``."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
import segno

from lngate.bootstrap import Gateway
from tests.web.checkout_kit import (
    qr_modules,
    short_lived_invoice,
    short_lived_order,
    until_expired,
)
from tests.web.payments import order_body

INVOICE = {"amount": 21000, "description": "DazBox <b>commande</b> #42"}


def gateway(client: httpx.AsyncClient) -> Gateway:
    return client.app.state.gateway  # type: ignore[attr-defined, no-any-return]


async def create(client: httpx.AsyncClient, body: dict[str, Any] = INVOICE) -> dict[str, Any]:
    response = await client.post("/api/create-invoice", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def visible_panels(page: str) -> list[str]:
    """The state panels (pending, paid, expired) the page shows before any script runs."""
    return [state for state, attrs in re.findall(r'data-when="(\w+)"([^>]*)>', page)
            if "hidden" not in attrs]


async def test_page_shows_amount_description_qr_and_link_without_script(
    client: httpx.AsyncClient,
) -> None:
    """Everything needed to pay is in the HTML itself: amount, description (escaped), QR SVG,
    the lightning: link and the BOLT11 text; scripts only come from files."""
    body = await create(client)
    bolt11 = body["invoice"]["payment_request"]
    response = await client.get(f"/pay/{body['invoice']['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<html lang="fr">' in page
    assert "21\u202f000 sats" in page
    assert "DazBox &lt;b&gt;commande&lt;/b&gt; #42" in page and "<b>commande" not in page
    assert '<svg viewBox="0 0 ' in page and 'class="qr-code"' in page
    assert f'href="lightning:{bolt11}"' in page
    assert f">{bolt11}</textarea>" in page
    assert visible_panels(page) == ["pending"]
    assert "TEST" in page and 'class="test-banner"' in page
    assert re.findall(r"<script\b[^>]*>", page) == [
        f'<script src="/static/checkout.js?v={script_version(page)}" defer>']
    assert " style=" not in page and "<style" not in page  # the CSP allows no inline style


def script_version(page: str) -> str:
    found = re.search(r"/static/checkout\.js\?v=([0-9a-f]+)", page)
    assert found is not None
    return found.group(1)


async def test_the_qr_code_is_the_invoice(client: httpx.AsyncClient) -> None:
    """The QR code drawn is that of ``LIGHTNING:<BOLT11>`` (upper case: alphanumeric mode)."""
    body = await create(client)
    page = (await client.get(f"/pay/{body['invoice']['id']}")).text
    svg = re.search(r"<svg viewBox[^>]*class=\"qr-code\">.*?</svg>", page, re.S)
    assert svg is not None
    expected = segno.make_qr("LIGHTNING:" + body["invoice"]["payment_request"].upper(),
                             error="m")
    assert expected.mode == "alphanumeric"
    dark = {(r, c) for r, row in enumerate(expected.matrix) for c, bit in enumerate(row) if bit}
    assert qr_modules(svg.group(0)) == dark


async def test_security_headers_on_pages_and_error_pages(client: httpx.AsyncClient) -> None:
    """Checkout and error pages carry a strict CSP (no inline script, no framing), nosniff, a
    referrer policy, and are not cached."""
    body = await create(client)
    for path in (f"/pay/{body['invoice']['id']}", "/pay/nope"):
        headers = (await client.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
        assert headers["vary"] == "Accept-Language"


@pytest.mark.parametrize(("path", "title"), [
    ("/pay/zz", "Facture introuvable"),
    ("/pay/" + "ab" * 32, "Facture introuvable"),
    ("/pay/" + "AB" * 32, "Facture introuvable"),
    ("/pay/" + "z" * 5000, "Facture introuvable"),
    ("/pay/a/b/c", "Facture introuvable"),
    ("/pay/%2e%2e%2fetc%2fpasswd", "Facture introuvable"),
    ("/pay/' OR 1=1 --", "Facture introuvable"),
    ("/pay/order/short", "Commande introuvable"),
    ("/pay/order/" + "A" * 22, "Commande introuvable"),
    ("/pay/order/" + "A" * 200, "Commande introuvable"),
])
async def test_unknown_or_malformed_addresses_get_an_html_404(
    client: httpx.AsyncClient, path: str, title: str,
) -> None:
    """Any address under /pay/ that names no invoice or order is a 404 page, never a 500."""
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in response.text


async def test_english_by_query_or_accept_language(client: httpx.AsyncClient) -> None:
    """?lang=en or an English Accept-Language gives the English page; links keep the choice."""
    body = await create(client)
    path = f"/pay/{body['invoice']['id']}"
    for response in (await client.get(path, params={"lang": "en"}),
                     await client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})):
        page = response.text
        assert '<html lang="en">' in page and "<h1>Lightning payment</h1>" in page
        assert "21,000 sats" in page and "Scan this QR code" in page
        assert f'href="{path}?lang=fr"' in page and ">Français</a>" in page
    french = (await client.get(path, headers={"Accept-Language": "de-DE"})).text
    assert "<h1>Paiement Lightning</h1>" in french and f'href="{path}?lang=en"' in french


async def test_paid_invoice_page_shows_paid(client: httpx.AsyncClient) -> None:
    """Once paid, a (re)loaded page shows the paid state and no QR code to pay again."""
    body = await create(client)
    assert (await client.post(f"/api/demo/pay/{body['invoice']['id']}")).status_code == 200
    page = (await client.get(f"/pay/{body['invoice']['id']}")).text
    assert visible_panels(page) == ["paid"] and "Paiement reçu" in page


async def test_expired_bare_invoice_just_says_so(client: httpx.AsyncClient) -> None:
    """A bare invoice past its expiry reads expired, with no new-invoice form."""
    invoice = await short_lived_invoice(gateway(client))
    await until_expired(invoice)
    page = (await client.get(f"/pay/{invoice.payment_hash}")).text
    assert visible_panels(page) == ["expired"]
    assert "Facture expirée" in page and "<form" not in page
    check = await client.get("/api/check-invoice", params={"id": invoice.payment_hash})
    assert check.json() == {"status": "expired"}


async def test_expired_order_gets_a_new_invoice_through_the_form(
    client: httpx.AsyncClient,
) -> None:
    """An expired order's page offers a form; posting it creates a new invoice for the same
    order and redirects (303) to it; the old page then offers nothing."""
    created = await short_lived_order(gateway(client))
    old_hash, order_id = created.invoice.payment_hash, created.order.id
    await until_expired(created.invoice)
    page = (await client.get(f"/pay/order/{order_id}", params={"lang": "en"})).text
    assert visible_panels(page) == ["expired"]
    action = f"/pay/{old_hash}/renew?lang=en"
    assert f'<form method="post" action="{html.escape(action)}">' in page

    renewed = await client.post(action)
    assert renewed.status_code == 303
    new_path, _, query = renewed.headers["location"].partition("?")
    new_hash = new_path.removeprefix("/pay/")
    assert new_hash != old_hash and query == "lang=en"
    order = (await client.get(f"/api/orders/{order_id}")).json()["order"]
    assert order["status"] == "pending" and order["paymentHash"] == new_hash
    new_page = (await client.get(new_path)).text
    assert visible_panels(new_page) == ["pending"] and "2\u202f100 sats" in new_page
    assert f'action="/pay/{new_hash}/renew"' in new_page  # offered again if this one expires
    assert f"/pay/{new_hash}" in (await client.get(f"/pay/order/{order_id}")).text
    old_page = (await client.get(f"/pay/{old_hash}")).text
    assert visible_panels(old_page) == ["expired"] and "<form" not in old_page


async def test_renewal_is_refused_for_what_cannot_be_renewed(client: httpx.AsyncClient) -> None:
    """A payable order or a bare invoice is not renewed (303 back to its page, no invoice
    issued); an unknown or malformed hash is a 404 page."""
    order = (await client.post("/api/orders", json=order_body("dazpay"))).json()
    bare = await create(client)
    for payment_hash in (order["invoice"]["id"], bare["invoice"]["id"]):
        response = await client.post(f"/pay/{payment_hash}/renew")
        assert response.status_code == 303
        assert response.headers["location"] == f"/pay/{payment_hash}"
    current = (await client.get(f"/api/orders/{order['order']['id']}")).json()["order"]
    assert current["paymentHash"] == order["invoice"]["id"]
    for path in ("/pay/" + "ab" * 32 + "/renew", "/pay/nope/renew"):
        response = await client.post(path)
        assert response.status_code == 404 and "<h1>Facture introuvable</h1>" in response.text


async def test_checkout_url_beside_create_answers(gateway_factory: Any) -> None:
    """create-invoice and create-order answers carry the page's absolute address (PUBLIC_URL)."""
    async with gateway_factory(public_url="https://pay.example.com/") as client:
        invoice = await create(client)
        assert invoice["checkoutUrl"] == f"https://pay.example.com/pay/{invoice['invoice']['id']}"
        order = (await client.post("/api/orders", json=order_body("dazpay"))).json()
        assert order["checkoutUrl"] == f"https://pay.example.com/pay/{order['invoice']['id']}"


async def test_pages_are_rate_limited_with_an_html_answer(gateway_factory: Any) -> None:
    """Past the per-IP limit, the page answers 429 in HTML, with Retry-After."""
    async with gateway_factory(rate_limit="2/minute") as client:
        answers = [await client.get("/pay/" + "ab" * 32) for _ in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[2].headers["content-type"].startswith("text/html")
        assert "Trop de requêtes" in answers[2].text and "retry-after" in answers[2].headers


async def test_static_files_are_served_from_a_fixed_list(client: httpx.AsyncClient) -> None:
    """Scripts and styles are served with their type and nosniff; nothing else is."""
    script = await client.get("/static/checkout.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    style = await client.get("/static/lngate.css")
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    for path in ("/static/nope.js", "/static/..%2fpages.py", "/static/%2e%2e/app.py"):
        assert (await client.get(path)).status_code == 404
