"""The operator's pages in a real browser (Chromium) against a real HTTP server: sign in, watch
the real LNbits provider go red and green on the dashboard without a reload (its load test
panel showing recorded runs), ship a DazBox from the order page (the customer's email arrives at
the real SMTP sink, once), export the orders as CSV through the page, and no console error
anywhere (a CSP violation would be one).

Screenshots for the documentation: ``LNGATE_SCREENSHOTS=docs/img uv run --frozen pytest
tests/web/test_dashboard_browser.py -m browser``.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from lngate.services.clock import utcnow
from lngate.web.dashboard_live import REFRESH_SECONDS
from tests.doubles.tcp_proxy import Mode, TcpProxy
from tests.peers.browser import DESKTOP, PHONE, BrowserPeer, WatchedPage, save_screenshot
from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey
from tests.peers.smtp_peer import SMTPPeer
from tests.web.backoffice import TOKEN, loadtest_report, new_order, record_loadtest_run
from tests.web.live import LiveGateway, serve_gateway
from tests.web.payments import WEBHOOK_SECRET, order_body

pytestmark = pytest.mark.browser

SHIPPED_SUBJECT = "Votre DazBox est en route"


async def sign_in_through_page(watched: WatchedPage, live: LiveGateway, path: str) -> None:
    """Open ``path``, get sent to the sign-in page, sign in, and land back on ``path``."""
    page = watched.page
    await page.goto(f"{live.url}{path}")
    assert page.url.startswith(f"{live.url}/admin/login?next=")
    await expect(page.locator("h1")).to_have_text("Connexion opérateur")
    await page.fill("#token", TOKEN)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{live.url}{path}")


@pytest.mark.lnbits
async def test_dashboard_turns_a_provider_red_and_green_without_reloading(
    browser: BrowserPeer, lnbits_peer: LNbitsPeer, tmp_path: Path,
) -> None:
    """With the real LNbits behind a switchable proxy and a probe every second: its card turns
    red (and an incident opens) within seconds of being cut off, then green (incident
    resolved) when it is back, all pushed into the open page: no reload, no console error."""
    host, port = lnbits_peer.url.removeprefix("http://").split(":")
    async with TcpProxy(host, int(port)) as proxy:
        settings: dict[str, Any] = {
            "lnbits_endpoint": proxy.url, "lnbits_invoice_key": lnbits_peer.merchant_inkey,
            "lnbits_node_pubkey": fake_wallet_payee_pubkey(), "lightning_test_mode": False,
            "lnbits_webhook_secret": WEBHOOK_SECRET, "reconcile_interval_seconds": 3600,
            "admin_token": TOKEN, "health_check_interval": 1, "alert_unavailable_seconds": 0}
        async with serve_gateway(tmp_path, **settings) as live:
            # some activity for the figures: invoices and orders issued by LNbits, some paid
            for amount in (2100, 21000, 50000):
                created = await live.http.post("/api/create-invoice", json={
                    "amount": amount, "description": f"DazPay #{amount}"})
                assert created.status_code == 200, created.text
                if amount != 2100:
                    await lnbits_peer.apay(created.json()["invoice"]["payment_request"])
            for product in ("dazbox", "dazpay"):
                ordered = await live.http.post("/api/orders", json=order_body(product))
                assert ordered.status_code == 201, ordered.text
                if product == "dazpay":
                    await lnbits_peer.apay(ordered.json()["invoice"]["payment_request"])
            # and load test runs, one of which missed its objectives, for the load test panel
            now = utcnow().replace(microsecond=0)
            await record_loadtest_run(live.http, loadtest_report(
                "create-invoice", now - timedelta(minutes=30), rate=10, duration_s=30,
                requests=300, p50=38.2, p99=142.0))
            await record_loadtest_run(live.http, loadtest_report(
                "webhook", now - timedelta(minutes=10), passed=False, rate=20, duration_s=30,
                requests=600, errors=14, p50=61.4, p99=1840.0))
            async with browser.page(viewport=DESKTOP) as watched:
                page = watched.page
                await sign_in_through_page(watched, live, "/admin")
                await page.evaluate("window.sameDocument = true")
                loads = list(watched.navigations)
                dashboard = page.locator("#dashboard")
                await expect(dashboard).to_have_attribute("data-stream", "open")
                await expect(page.locator("#live")).to_have_text("En direct")
                card = page.locator("#provider-lnbits")
                # a cold LNbits on a loaded machine may fail its first probes: a precondition
                await expect(card).to_have_attribute("data-health", "up", timeout=60_000)
                await expect(page.locator("#invoices tbody tr")).to_have_count(5)
                await expect(page.locator("#orders tbody tr")).to_have_count(2)
                await expect(page.locator("#loadtests tbody tr")).to_have_count(2)
                await expect(page.locator("#loadtests tr.failed .pill")).to_have_text("manqués")

                cut_at = time.monotonic()
                await proxy.set(Mode.REFUSE)
                await expect(card).to_have_attribute("data-health", "down", timeout=10_000)
                red_after = time.monotonic() - cut_at
                await expect(card.locator(".badge")).to_have_text("Hors service")
                await expect(page.locator("#tile-providers")).to_have_text("0 / 1")
                await expect(page.locator("#tile-incidents")).to_have_text("1", timeout=15_000)
                await expect(page.locator(".incident[data-provider=lnbits]")).to_be_visible()
                await save_screenshot(watched, "dashboard-down-desktop", tmp_path)

                back_at = time.monotonic()
                await proxy.set(Mode.FORWARD)
                await expect(card).to_have_attribute("data-health", "up", timeout=15_000)
                green_after = time.monotonic() - back_at
                await expect(page.locator("#tile-incidents")).to_have_text("0", timeout=15_000)
                await expect(page.locator("#alerts .pill.resolved")).to_have_count(1)

                assert watched.navigations == loads  # nothing reloaded the page
                assert await page.evaluate("window.sameDocument") is True
                assert int(await dashboard.get_attribute("data-updates") or 0) > 0
                await save_screenshot(watched, "dashboard-desktop", tmp_path)
                assert watched.console_errors == []
    print(f"dashboard: red {red_after:.2f} s after the cut, green {green_after:.2f} s after "
          f"the return (probe every 1 s, periodic refresh {REFRESH_SECONDS:g} s)")
    assert red_after < REFRESH_SECONDS and green_after < REFRESH_SECONDS


async def test_ship_a_dazbox_from_the_order_page_emails_the_customer_once(
    browser: BrowserPeer, smtp: SMTPPeer, tmp_path: Path,
) -> None:
    """From the orders list (filtered), open a paid DazBox, mark it shipped with a tracking
    number: the page says so, the customer receives the "shipped" email at the real SMTP
    server exactly once, even when the same form, open in another tab, is sent too (refused)."""
    settings = {"admin_token": TOKEN, "smtp_host": smtp.host, "smtp_port": smtp.port,
                "smtp_tls": "none", "shop_email": "shop@example.com",
                "outbox_poll_interval_seconds": 0.2}
    async with serve_gateway(tmp_path, **settings) as live:
        await new_order(live.http, "daznode", pay=True, email="nora@example.com", name="Nora")
        await new_order(live.http, "dazpay", pay=True, email="paul@example.com", name="Paul")
        await new_order(live.http, email="ugo@example.com", name="Ugo")  # unpaid DazBox
        bob = await new_order(live.http, pay=True, email="bob@example.com", name="Bob")
        order_id = bob["order"]["id"]
        await smtp.wait_for(1, address="bob@example.com")  # his confirmation
        async with browser.page(viewport=DESKTOP) as watched:
            page = watched.page
            await sign_in_through_page(watched, live, "/admin/orders")
            await expect(page.locator("#orders-table tbody tr")).to_have_count(4)
            await save_screenshot(watched, "orders-desktop", tmp_path)

            await page.select_option("select[name=product]", "dazbox")
            await page.select_option("select[name=status]", "paid")
            await page.get_by_role("button", name="Filtrer").click()
            await page.wait_for_url("**/admin/orders?*product=dazbox*")
            rows = page.locator("#orders-table tbody tr")
            await expect(rows).to_have_count(1)
            await rows.get_by_role("link").click()
            await page.wait_for_url(f"{live.url}/admin/orders/{order_id}")

            await expect(page.locator("#shipment-status")).to_have_text("à expédier")
            stale = await watched.context.new_page()  # the same order open in a second tab
            await stale.goto(page.url)
            await page.fill("#tracking-input", "6A 1234 5678")
            await page.fill("#carrier-input", "Colissimo")
            await page.get_by_role("button", name="Marquer expédiée").click()
            await page.wait_for_url(f"{live.url}/admin/orders/{order_id}?done=shipped")
            await expect(page.locator("#done")).to_be_visible()
            await expect(page.locator("#shipment-status")).to_have_text("expédiée")
            await expect(page.locator("#tracking")).to_have_text("6A 1234 5678")
            await expect(page.locator("#ship-form")).to_have_count(0)

            mails = await smtp.wait_for(2, address="bob@example.com", timeout=20)
            shipped = [m for m in mails if m.subject.startswith(SHIPPED_SUBJECT)]
            assert len(shipped) == 1 and "6A 1234 5678" in shipped[0].body()

            await stale.fill("#tracking-input", "6A 9999")  # the other tab's form, sent late
            await stale.get_by_role("button", name="Marquer expédiée").click()
            await expect(stale.locator("#problem")).to_have_text("La commande est déjà expédiée.")
            await expect(stale.locator("#tracking")).to_have_text("6A 1234 5678")
            await page.reload()
            await expect(page.locator("#emails-table tr[data-kind=dazbox_shipped]")).to_contain_text(
                "envoyé", timeout=10_000)
            await expect(page.locator("#audit-table")).to_contain_text("order.ship")
            await save_screenshot(watched, "order-shipped-desktop", tmp_path)
            await page.wait_for_timeout(1000)  # room for a second email, were there one
            assert [m.subject for m in smtp.to("bob@example.com")].count(shipped[0].subject) == 1
            assert watched.console_errors == []


async def test_csv_export_downloads_the_filtered_orders(
    browser: BrowserPeer, tmp_path: Path,
) -> None:
    """The orders page's CSV link downloads the orders matching the page's filters (UTF-8
    with a byte-order mark, one row per order, the customer's accents intact)."""
    async with serve_gateway(tmp_path, admin_token=TOKEN) as live:
        nodes = [await new_order(live.http, "daznode", pay=True, email=f"n{i}@example.com",
                                 name="Zoé") for i in range(2)]
        await new_order(live.http, "dazpay", email="p@example.com")
        async with browser.page(viewport=DESKTOP, accept_downloads=True) as watched:
            page = watched.page
            await sign_in_through_page(watched, live, "/admin/orders?product=daznode")
            await expect(page.locator("#orders-table tbody tr")).to_have_count(2)
            async with page.expect_download() as download_info:
                await page.click("#csv-export")
            download = await download_info.value
            assert download.suggested_filename.startswith("orders-")
            assert download.suggested_filename.endswith(".csv")
            saved = tmp_path / "orders.csv"
            await download.save_as(saved)
            assert watched.console_errors == []
    raw = saved.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    # an id starting with "-" is written "'-..." (spreadsheet formulas are defused)
    assert sorted(r["order_id"] for r in rows) == sorted(
        ("'" if n["order"]["id"].startswith("-") else "") + n["order"]["id"] for n in nodes)
    assert {r["product"] for r in rows} == {"daznode"} and {r["customer_name"] for r in rows} == {
        "Zoé"}


async def test_pages_in_english_without_console_errors(browser: BrowserPeer,
                                                       tmp_path: Path) -> None:
    """An English browser gets English pages (dashboard, orders, subscriptions), and the
    language switch keeps the page; no page logs a console error."""
    async with serve_gateway(tmp_path, admin_token=TOKEN) as live:
        await new_order(live.http, "daznode", pay=True, email="node@example.com")
        async with browser.page(locale="en-US") as watched:
            page = watched.page
            await page.goto(f"{live.url}/admin")
            await page.fill("#token", TOKEN)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{live.url}/admin")
            await expect(page.locator("h1")).to_have_text("Dashboard")
            await expect(page.locator("#live")).to_have_text("Live")
            await page.get_by_role("link", name="DazNode subscriptions").click()
            await expect(page.locator("#subscriptions-table")).to_contain_text("node@example.com")
            await expect(page.locator("#subscriptions-table")).to_contain_text("active")
            await page.get_by_role("link", name="Français").click()
            await expect(page.locator("h1")).to_have_text("Abonnements DazNode")
            await page.get_by_role("button", name="Se déconnecter").click()
            await page.wait_for_url(f"{live.url}/admin/login")
            await page.goto(f"{live.url}/admin")
            assert page.url.startswith(f"{live.url}/admin/login")
            assert watched.console_errors == []


async def test_pages_fit_a_phone(browser: BrowserPeer, tmp_path: Path) -> None:
    """On a 390x844 phone, the dashboard, the orders list and an order's page have no
    horizontal scroll (wide tables scroll inside their own box)."""
    async with serve_gateway(tmp_path, admin_token=TOKEN) as live:
        created = await new_order(live.http, pay=True, email="a-rather-long-address@example.com")
        async with browser.page(viewport=PHONE) as watched:
            await sign_in_through_page(watched, live, "/admin")
            await expect(watched.page.locator("#dashboard")).to_have_attribute(
                "data-stream", "open")
            assert await watched.horizontal_overflow() == 0
            for path in ("/admin/orders", f"/admin/orders/{created['order']['id']}"):
                await watched.page.goto(f"{live.url}{path}")
                assert await watched.horizontal_overflow() == 0, path
            assert watched.console_errors == []
