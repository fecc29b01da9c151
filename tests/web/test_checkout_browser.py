"""The hosted checkout page in a real browser (Chromium), against a real HTTP server: the page
turns paid live, expires, renews an order's invoice, works without JavaScript, speaks English,
fits a phone, and logs no console error (a CSP violation would be one).

Screenshots for the documentation: ``LNGATE_SCREENSHOTS=docs/img uv run --frozen pytest
tests/web/test_checkout_browser.py -m browser``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.peers.browser import DESKTOP, PHONE, BrowserPeer, WatchedPage, save_screenshot
from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey
from tests.web.checkout_kit import short_lived_order
from tests.web.live import LiveGateway, serve_gateway
from tests.web.payments import WEBHOOK_SECRET

pytestmark = pytest.mark.browser

INVOICE = {"amount": 21000, "description": "DazBox — commande #42"}


async def create_invoice(live: LiveGateway, body: dict[str, Any] = INVOICE) -> dict[str, Any]:
    response = await live.http.post("/api/create-invoice", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def open_checkout(watched: WatchedPage, url: str, *, scripts: bool = True) -> None:
    """Load the page: it must answer 200 with its CSP. With scripts on, mark the document, so a
    reload would show (:func:`assert_turned_without_reload`)."""
    response = await watched.page.goto(url)
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    if scripts:
        await watched.page.evaluate("window.sameDocument = true")


async def until_listening(watched: WatchedPage) -> None:
    """Wait until the page's event stream is open, so what follows is seen live."""
    await expect(watched.page.locator("#checkout")).to_have_attribute("data-stream", "open")


async def assert_turned_without_reload(watched: WatchedPage, url: str) -> None:
    """The page changed state in place: one navigation (the first load), same document."""
    assert watched.navigations == [url]
    assert await watched.page.evaluate("window.sameDocument") is True


async def test_demo_payment_turns_the_page_paid_live(browser: BrowserPeer, tmp_path: Path) -> None:
    """A pending demo invoice shows QR, amount and TEST banner; once paid, the page turns to
    "paid" by itself, without reloading, and logs no console error."""
    async with serve_gateway(tmp_path) as live:
        body = await create_invoice(live)
        url = body["checkoutUrl"]
        async with browser.page(viewport=DESKTOP) as watched:
            page = watched.page
            await open_checkout(watched, url)
            await expect(page.locator("svg.qr-code")).to_be_visible()
            await expect(page.locator("#amount")).to_have_text("21\u202f000 sats")
            await expect(page.locator(".test-banner")).to_be_visible()
            await expect(page.locator("#countdown")).to_contain_text("59:")
            await expect(page.locator("#copy")).to_be_visible()
            await expect(page.locator("#pay-webln")).to_be_hidden()  # no wallet in this browser
            await until_listening(watched)
            await save_screenshot(watched, "checkout-pending-desktop", tmp_path)

            paid = await live.http.post(f"/api/demo/pay/{body['invoice']['id']}")
            assert paid.status_code == 200
            await expect(page.locator("#paid-title")).to_be_visible(timeout=10_000)
            await expect(page.locator("svg.qr-code")).to_be_hidden()
            await assert_turned_without_reload(watched, url)
            await save_screenshot(watched, "checkout-paid-desktop", tmp_path)
            assert watched.console_errors == []


@pytest.mark.lnbits
async def test_lnbits_payment_turns_the_page_paid_live(
    browser: BrowserPeer, lnbits_peer: LNbitsPeer, tmp_path: Path,
) -> None:
    """Paid from the real LNbits payer wallet, the invoice settles (LNbits' webhook reaches the
    live gateway) and the open page turns to "paid" without reloading; no TEST banner."""
    settings = {"lnbits_endpoint": lnbits_peer.url, "lnbits_invoice_key": lnbits_peer.merchant_inkey,
                "lnbits_node_pubkey": fake_wallet_payee_pubkey(), "lightning_test_mode": False,
                "lnbits_webhook_secret": WEBHOOK_SECRET, "reconcile_interval_seconds": 3600}
    async with serve_gateway(tmp_path, **settings) as live:
        body = await create_invoice(live, {"amount": 21, "description": "DazPay #7"})
        assert body["provider"] == "lnbits"
        async with browser.page() as watched:
            await open_checkout(watched, body["checkoutUrl"])
            await expect(watched.page.locator(".test-banner")).to_have_count(0)
            await until_listening(watched)
            await lnbits_peer.apay(body["invoice"]["payment_request"])
            await expect(watched.page.locator("#paid-title")).to_be_visible(timeout=15_000)
            await assert_turned_without_reload(watched, body["checkoutUrl"])
            assert watched.console_errors == []


async def test_expired_order_offers_a_new_invoice_that_pays_it(
    browser: BrowserPeer, tmp_path: Path,
) -> None:
    """On the order's page, the countdown runs out, the page turns "expired" by itself and
    offers a new invoice; clicking it opens the new invoice's page, which pays the order."""
    async with serve_gateway(tmp_path) as live:
        created = await short_lived_order(live.gateway)
        order_id = created.order.id
        async with browser.page() as watched:
            page = watched.page
            await open_checkout(watched, f"{live.url}/pay/order/{order_id}")
            await expect(page.locator("svg.qr-code")).to_be_visible()
            await expect(page.locator("#expired-title")).to_be_visible(timeout=10_000)
            await expect(page.locator("svg.qr-code")).to_be_hidden()
            await page.click("#renew")
            await page.wait_for_url(f"{live.url}/pay/*")
            new_hash = page.url.rsplit("/", 1)[1]
            assert new_hash != created.invoice.payment_hash
            await expect(page.locator("svg.qr-code")).to_be_visible()
            await expect(page.locator("#amount")).to_have_text("2\u202f100 sats")
            await until_listening(watched)
            await live.http.post(f"/api/demo/pay/{new_hash}")
            await expect(page.locator("#paid-title")).to_be_visible(timeout=10_000)
            assert watched.console_errors == []
        order = (await live.http.get(f"/api/orders/{order_id}")).json()["order"]
        assert order["status"] == "paid" and order["paymentHash"] == new_hash


async def test_without_javascript_the_page_still_pays_and_renews(
    browser: BrowserPeer, tmp_path: Path,
) -> None:
    """With scripts off, the QR code, amount, lightning: link and a refresh link show; an
    expired order's form still gets a new invoice."""
    async with serve_gateway(tmp_path) as live:
        body = await create_invoice(live)
        async with browser.page(java_script_enabled=False) as watched:
            page = watched.page
            await open_checkout(watched, body["checkoutUrl"], scripts=False)
            await expect(page.locator("svg.qr-code")).to_be_visible()
            await expect(page.locator("#amount")).to_have_text("21\u202f000 sats")
            await expect(page.locator("#open-wallet")).to_have_attribute(
                "href", "lightning:" + body["invoice"]["payment_request"])
            await expect(page.get_by_role("link", name="Actualiser le statut")).to_be_visible()
            await expect(page.locator("#copy")).to_be_hidden()

            created = await short_lived_order(live.gateway, expiry=1)
            await page.wait_for_timeout(1500)
            await page.goto(f"{live.url}/pay/order/{created.order.id}")
            await expect(page.locator("#expired-title")).to_be_visible()
            await page.click("#renew")
            await page.wait_for_url(f"{live.url}/pay/*")
            assert page.url.rsplit("/", 1)[1] != created.invoice.payment_hash
            await expect(page.locator("svg.qr-code")).to_be_visible()


async def test_english_page(browser: BrowserPeer, tmp_path: Path) -> None:
    """An English browser (Accept-Language) gets the English page, and can switch to French."""
    async with serve_gateway(tmp_path) as live:
        body = await create_invoice(live)
        async with browser.page(locale="en-US") as watched:
            page = watched.page
            await open_checkout(watched, body["checkoutUrl"])
            await expect(page.locator("h1")).to_have_text("Lightning payment")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(page.locator("#amount")).to_have_text("21,000 sats")
            await expect(page.locator("#copy")).to_have_text("Copy the invoice")
            await page.get_by_role("link", name="Français").click()
            await expect(page.locator("h1")).to_have_text("Paiement Lightning")
            assert watched.console_errors == []


async def test_phone_viewport_has_no_horizontal_scroll(
    browser: BrowserPeer, tmp_path: Path,
) -> None:
    """On a 390x844 phone, pending and paid pages fit the width, even with a long unbroken
    description."""
    async with serve_gateway(tmp_path) as live:
        long_word = {"amount": 400_000, "description": "DazBox-" + "x" * 300}
        for body in (await create_invoice(live), await create_invoice(live, long_word)):
            async with browser.page(viewport=PHONE) as watched:
                await open_checkout(watched, body["checkoutUrl"])
                await expect(watched.page.locator("svg.qr-code")).to_be_visible()
                assert await watched.horizontal_overflow() == 0
                qr = await watched.page.locator("svg.qr-code").bounding_box()
                assert qr is not None and qr["width"] >= 250  # large enough to scan
                if body["invoice"]["amount"] == INVOICE["amount"]:
                    await until_listening(watched)
                    await save_screenshot(watched, "checkout-pending-phone", tmp_path)
                    await live.http.post(f"/api/demo/pay/{body['invoice']['id']}")
                    await expect(watched.page.locator("#paid-title")).to_be_visible()
                    assert await watched.horizontal_overflow() == 0
                    await save_screenshot(watched, "checkout-paid-phone", tmp_path)
                assert watched.console_errors == []


async def test_copy_button_copies_the_invoice(browser: BrowserPeer, tmp_path: Path) -> None:
    """The copy button puts the BOLT11 on the clipboard and says so."""
    async with serve_gateway(tmp_path) as live:
        body = await create_invoice(live)
        async with browser.page(permissions=["clipboard-read", "clipboard-write"]) as watched:
            await open_checkout(watched, body["checkoutUrl"])
            await watched.page.click("#copy")
            await expect(watched.page.locator("#copy")).to_have_text("Facture copiée")
            copied = await watched.page.evaluate("navigator.clipboard.readText()")
            assert copied == body["invoice"]["payment_request"]
            assert watched.console_errors == []


async def test_webln_wallet_pays_from_the_page(browser: BrowserPeer, tmp_path: Path) -> None:
    """With a WebLN wallet in the browser, its button shows; clicking it enables the wallet and
    sends the invoice, and the page turns paid once the gateway confirms."""
    async with serve_gateway(tmp_path) as live:
        body = await create_invoice(live)
        payment_hash = body["invoice"]["id"]
        # A stand-in browser wallet: records what it was asked, then pays as the demo wallet.
        wallet = """
            window.weblnCalls = [];
            window.webln = {
              enable: async () => { window.weblnCalls.push("enable"); },
              sendPayment: async (invoice) => {
                window.weblnCalls.push(invoice);
                await fetch("/api/demo/pay/" + %s, {method: "POST"});
                return {preimage: ""};
              },
            };
        """ % json.dumps(payment_hash)
        async with browser.page(init_script=wallet) as watched:
            page = watched.page
            await open_checkout(watched, body["checkoutUrl"])
            await until_listening(watched)
            await page.click("#pay-webln")
            await expect(page.locator("#paid-title")).to_be_visible(timeout=10_000)
            calls = await page.evaluate("window.weblnCalls")
            assert calls == ["enable", body["invoice"]["payment_request"]]
            assert watched.console_errors == []
