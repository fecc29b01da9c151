"""The back office's pages over HTTP: who may see them (a live session, else the sign-in page),
the sign-in form's own CSRF protection and rate limit, every form's CSRF token, sessions that
expire or are signed out, and what the pages show and do (filters, pagination, ship, cancel,
subscriptions, CSV link, languages, load test history)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from lngate.services.clock import utcnow
from lngate.services.loadtests import record_loadtest
from lngate.store.loadtests import LoadTestRun
from lngate.store.tables import admin_sessions, outbox
from tests.web.backoffice import (
    AUTH,
    TOKEN,
    loadtest_report,
    login_csrf,
    new_order,
    record_loadtest_run,
    sign_in,
)

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PAGES = ("/admin", "/admin/orders", "/admin/orders/AAAAAAAAAAAAAAAAAAAAAA",
         "/admin/subscriptions", "/admin/orders?status=paid&lang=en")
FORMS = ("/admin/orders/AAAAAAAAAAAAAAAAAAAAAA/ship", "/admin/orders/AAAAAAAAAAAAAAAAAAAAAA/cancel")


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no field {name}"
    return found.group(1)


def order_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)"', html)


async def assert_signed_out(http: httpx.AsyncClient, **cookies: str) -> None:
    """Every page redirects to the sign-in page, every form too, the stream answers 401."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    for path in PAGES:
        response = await http.get(path, headers=headers)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?"), path
    for path in FORMS:
        response = await http.post(path, data={"tracking": "T1", "csrf_token": "x"},
                                   headers=headers)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next=%2Fadmin%2Forders%2F")
    events = await http.get("/admin/events", headers=headers)
    assert events.status_code == 401 and events.json()["code"] == "unauthorized"


async def test_without_a_session_every_page_sends_to_the_sign_in_page(
    gateway_factory: Callable[..., Any],
) -> None:
    """No cookie, or a made-up one: pages and forms redirect to the sign-in page (which brings
    the operator back afterwards), the dashboard's stream is a 401."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await assert_signed_out(http)
        await assert_signed_out(http, lngate_admin="A" * 43)
        first = await http.get("/admin/orders?status=paid")
        assert first.headers["location"] == "/admin/login?next=%2Fadmin%2Forders%3Fstatus%3Dpaid"
        assert (await http.get("/admin/login?next=/admin/orders")).status_code == 200


async def test_sign_in_through_the_page_lands_where_it_was_going(
    gateway_factory: Callable[..., Any],
) -> None:
    """The sign-in page (French by default) sets an HttpOnly nonce cookie and a matching hidden
    field; posting the token with them opens a session and goes on to ``next``."""
    async with gateway_factory(admin_token=TOKEN) as http:
        page = await http.get("/admin/login?next=/admin/orders", headers=BROWSER)
        assert page.status_code == 200 and 'lang="fr"' in page.text
        assert "Connexion opérateur" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        nonce_cookie = page.headers["set-cookie"]
        assert nonce_cookie.startswith("lngate_login=") and "HttpOnly" in nonce_cookie
        assert "samesite=strict" in nonce_cookie.lower()
        signed_in = await http.post("/admin/login", headers=BROWSER, data={
            "token": TOKEN, "csrf_token": field(page.text, "csrf_token"),
            "next": field(page.text, "next")})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/admin/orders"
        assert (await http.get("/admin/orders")).status_code == 200
        again = await http.get("/admin/login?next=/admin/subscriptions")
        assert again.status_code == 303 and again.headers["location"] == "/admin/subscriptions"
        english = await http.get("/admin/login?lang=en")
        assert english.status_code == 303 and english.headers["location"] == "/admin?lang=en"


def altered(token: str) -> str:
    """The token with its last character changed (never the token itself)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


async def test_sign_in_form_needs_the_pages_csrf_field(
    gateway_factory: Callable[..., Any],
) -> None:
    """A sign-in form without the page's field, with a wrong one, or without its cookie is
    refused (403) even with the right token, and opens no session; a browser is shown the
    form again. A JSON sign-in needs no such field."""
    async with gateway_factory(admin_token=TOKEN, rate_limit_admin_login="100/minute") as http:
        csrf = await login_csrf(http)
        for data in ({"token": TOKEN}, {"token": TOKEN, "csrf_token": "x" * 43},
                     {"token": TOKEN, "csrf_token": altered(csrf["csrf_token"])}):
            refused = await http.post("/admin/login", data=data)
            assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
            assert "lngate_admin" not in refused.headers.get("set-cookie", "")
        without_cookie = httpx.AsyncClient(transport=http._transport,  # type: ignore[attr-defined]
                                           base_url="http://gateway")
        async with without_cookie:
            refused = await without_cookie.post("/admin/login", data={"token": TOKEN, **csrf})
            assert refused.status_code == 403
        shown = await http.post("/admin/login", data={"token": TOKEN}, headers=BROWSER)
        assert shown.status_code == 403 and "Le formulaire a expiré" in shown.text
        assert field(shown.text, "csrf_token")  # a fresh form to try again with
        wrong = await http.post("/admin/login", data={"token": "guess", **csrf}, headers=BROWSER)
        assert wrong.status_code == 401 and "Jeton invalide" in wrong.text
        assert (await http.get("/admin")).status_code == 303  # still signed out
        assert (await http.post("/admin/login", json={"token": TOKEN})).status_code == 200


async def test_sign_in_is_rate_limited_for_the_browser_too(
    gateway_factory: Callable[..., Any],
) -> None:
    """Past RATE_LIMIT_ADMIN_LOGIN, the browser's form gets a 429 page with Retry-After, even
    with the right token and field, and no session."""
    async with gateway_factory(admin_token=TOKEN, rate_limit_admin_login="2/minute") as http:
        csrf = await login_csrf(http)
        for _ in range(2):
            await http.post("/admin/login", data={"token": "guess", **csrf}, headers=BROWSER)
        limited = await http.post("/admin/login", data={"token": TOKEN, **csrf}, headers=BROWSER)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"].startswith("text/html")
        assert "Trop de requêtes" in limited.text
        assert "lngate_admin" not in limited.headers.get("set-cookie", "")


async def test_without_admin_token_the_back_office_is_off(
    gateway_factory: Callable[..., Any],
) -> None:
    """No ADMIN_TOKEN: the sign-in page and every page answer the 503 page; never open."""
    async with gateway_factory() as http:
        for path in ("/admin/login", "/admin", "/admin/orders", "/admin/subscriptions"):
            response = await http.get(path)
            assert response.status_code == 503 and "Back-office désactivé" in response.text


async def test_forms_refuse_a_missing_or_wrong_csrf_token(
    gateway_factory: Callable[..., Any],
) -> None:
    """Ship, cancel and sign out without the session's CSRF token, or with another session's,
    are refused (403) and change nothing."""
    async with gateway_factory(admin_token=TOKEN) as http:
        paid = await new_order(http, pay=True)
        unpaid = await new_order(http)
        other = httpx.AsyncClient(transport=http._transport,  # type: ignore[attr-defined]
                                  base_url="http://gateway")
        async with other:
            foreign = await sign_in(other)
        own = await sign_in(http)
        ship = f"/admin/orders/{paid['order']['id']}/ship"
        cancel = f"/admin/orders/{unpaid['order']['id']}/cancel"
        for token in (None, "", foreign, own[:-2] + "AA"):
            extra = {} if token is None else {"csrf_token": token}
            shipped = await http.post(ship, data={"tracking": "6A123", **extra})
            cancelled = await http.post(cancel, data=extra or {"reason": "x"})
            signed_out = await http.post("/admin/logout", data=extra or {"x": "y"})
            assert (shipped.status_code, cancelled.status_code, signed_out.status_code) == (
                403, 403, 403), token
        assert "Requête refusée" in shipped.text
        orders = (await http.get("/api/admin/orders", headers=AUTH)).json()["orders"]
        assert {o["id"]: (o["status"], (o["shipment"] or {}).get("status")) for o in orders} == {
            paid["order"]["id"]: ("paid", "to_ship"), unpaid["order"]["id"]: ("pending", None)}
        assert (await http.get("/admin")).status_code == 200  # still signed in


async def test_an_expired_session_is_refused_everywhere(
    gateway_factory: Callable[..., Any],
) -> None:
    """The cookie lives ADMIN_SESSION_MINUTES (Max-Age); once the session's time is over, the
    same cookie opens no page and no stream."""
    async with gateway_factory(admin_token=TOKEN, admin_session_minutes=5) as http:
        csrf = await login_csrf(http)
        response = await http.post("/admin/login", data={"token": TOKEN, **csrf})
        assert "Max-Age=300" in response.headers["set-cookie"]
        assert (await http.get("/admin")).status_code == 200
        database = http.app.state.gateway.db  # type: ignore[attr-defined]
        async with database.transaction() as conn:  # five minutes later
            await conn.execute(update(admin_sessions).values(
                expires_at=utcnow() - timedelta(seconds=1)))
        await assert_signed_out(http, lngate_admin=http.cookies["lngate_admin"])


async def test_signing_out_revokes_the_session(gateway_factory: Callable[..., Any]) -> None:
    """After the sign-out form, the old cookie (replayed) opens nothing any more."""
    async with gateway_factory(admin_token=TOKEN) as http:
        csrf = await sign_in(http)
        cookie = http.cookies["lngate_admin"]
        dashboard = await http.get("/admin")
        assert field(dashboard.text, "csrf_token") == csrf  # the sign-out form's token
        out = await http.post("/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/admin/login"
        await assert_signed_out(http, lngate_admin=cookie)


async def test_orders_page_filters_and_pages(gateway_factory: Callable[..., Any]) -> None:
    """Orders newest first, 25 a page with a link to the next; filters by status, product,
    text and dates narrow the list and are kept by the next-page and CSV links; a bad date
    is a 400 page saying so."""
    async with gateway_factory(admin_token=TOKEN) as http:
        made = [await new_order(http, "dazpay", email=f"c{i}@example.com") for i in range(26)]
        node = await new_order(http, "daznode", pay=True, email="node@example.com")
        await sign_in(http)
        first = await http.get("/admin/orders")
        assert first.status_code == 200
        shown = order_ids(first.text)
        assert shown == [node["order"]["id"]] + [m["order"]["id"] for m in made[::-1]][:24]
        next_url = field_href(first.text, "next-page")
        second = await http.get(next_url)
        assert order_ids(second.text) == [m["order"]["id"] for m in made[:2][::-1]]
        assert 'id="next-page"' not in second.text
        paid = await http.get("/admin/orders?status=paid&product=daznode")
        assert order_ids(paid.text) == [node["order"]["id"]]
        assert 'href="/api/admin/orders.csv?status=paid&amp;product=daznode"' in paid.text
        by_text = await http.get("/admin/orders?q=c7%40example")
        assert order_ids(by_text.text) == [made[7]["order"]["id"]]
        today = utcnow().date().isoformat()
        assert len(order_ids((await http.get(f"/admin/orders?from={today}&to={today}")).text)) == 25
        assert order_ids((await http.get("/admin/orders?to=2020-01-01")).text) == []
        bad = await http.get("/admin/orders?from=31/01/2026")
        assert bad.status_code == 400 and "Date invalide" in bad.text
        bad = await http.get("/admin/orders?status=lost")
        assert bad.status_code == 400 and "Filtre invalide" in bad.text


def field_href(html: str, element_id: str) -> str:
    found = re.search(rf'href="([^"]+)" id="{element_id}"|id="{element_id}" href="([^"]+)"', html)
    assert found is not None
    return (found.group(1) or found.group(2)).replace("&amp;", "&")


async def test_ship_form_ships_once_and_shows_it(gateway_factory: Callable[..., Any]) -> None:
    """The ship form marks a paid DazBox shipped (303 back to the order, which shows the
    tracking number and the audit row) and queues one "shipped" email; sent again, it is
    refused (409) and queues nothing more; a bad tracking number is a 400 on the page."""
    async with gateway_factory(admin_token=TOKEN) as http:
        order_id = (await new_order(http, pay=True, email="bob@example.com"))["order"]["id"]
        csrf = await sign_in(http)
        page = await http.get(f"/admin/orders/{order_id}")
        assert 'id="ship-form"' in page.text and 'id="cancel-form"' not in page.text
        ship = f"/admin/orders/{order_id}/ship"
        bad = await http.post(ship, data={"csrf_token": csrf, "tracking": "<script>"})
        assert bad.status_code == 400 and "Numéro de suivi invalide" in bad.text
        assert "&lt;script&gt;" in bad.text and "<script>" not in bad.text.split("</h1>")[1]
        done = await http.post(ship, data={"csrf_token": csrf, "tracking": "6A 123/45",
                                           "carrier": "Colissimo"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/admin/orders/{order_id}?done=shipped"
        shown = await http.get(done.headers["location"])
        assert 'id="done"' in shown.text and "<code>6A 123/45</code>" in shown.text
        assert "order.ship" in shown.text and 'id="ship-form"' not in shown.text
        again = await http.post(ship, data={"csrf_token": csrf, "tracking": "6A999"})
        assert again.status_code == 409 and "déjà expédiée" in again.text
        async with http.app.state.gateway.db.connect() as conn:  # type: ignore[attr-defined]
            kinds = (await conn.execute(select(outbox.c.kind).where(
                outbox.c.order_id == order_id))).scalars().all()
        assert sorted(kinds).count("dazbox_shipped") == 1


async def test_cancel_form_cancels_an_unpaid_order_only(
    gateway_factory: Callable[..., Any],
) -> None:
    """An unpaid order's cancel form cancels it (with its reason in the audit trail); a paid
    order offers no cancel form, and a forged cancel of it is refused (409)."""
    async with gateway_factory(admin_token=TOKEN) as http:
        unpaid = (await new_order(http))["order"]["id"]
        paid = (await new_order(http, "dazpay", pay=True))["order"]["id"]
        csrf = await sign_in(http)
        done = await http.post(f"/admin/orders/{unpaid}/cancel?lang=en",
                               data={"csrf_token": csrf, "reason": "customer asked"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/admin/orders/{unpaid}?done=cancelled&lang=en"
        shown = await http.get(done.headers["location"])
        assert "Order cancelled." in shown.text and "customer asked" in shown.text
        page = await http.get(f"/admin/orders/{paid}")
        assert 'id="cancel-form"' not in page.text and 'id="ship-form"' not in page.text
        refused = await http.post(f"/admin/orders/{paid}/cancel", data={"csrf_token": csrf})
        assert refused.status_code == 409 and "Une commande payée" in refused.text


async def test_order_page_shows_invoice_payment_emails_and_audit(
    gateway_factory: Callable[..., Any],
) -> None:
    """An order's page shows its customer, invoice, payment, fulfilment, the emails sent and
    the audit trail; an unknown order is a 404 page."""
    async with gateway_factory(admin_token=TOKEN, outbox_poll_interval_seconds=0.1) as http:
        created = await new_order(http, pay=True, email="eve@example.com", name="Ève")
        order_id, payment_hash = created["order"]["id"], created["invoice"]["payment_hash"]
        await sign_in(http)
        for _ in range(100):  # the outbox worker sends the confirmation
            page = await http.get(f"/admin/orders/{order_id}")
            if "envoyé" in page.text:
                break
            await asyncio.sleep(0.05)
        assert "Ève" in page.text and "eve@example.com" in page.text and "Lyon" in page.text
        assert payment_hash in page.text and "Confirmation DazBox" in page.text
        assert 'id="shipment-status">à expédier' in page.text
        assert (await http.get("/admin/orders/AAAAAAAAAAAAAAAAAAAAAA")).status_code == 404
        assert (await http.get("/admin/orders/not-an-id")).status_code == 404


async def test_subscriptions_page_lists_end_dates(gateway_factory: Callable[..., Any]) -> None:
    """A paid DazNode order's subscription shows with its end date, as active; the filter by
    status and text narrows the list."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await new_order(http, "daznode", pay=True, email="node@example.com")
        await sign_in(http)
        page = await http.get("/admin/subscriptions")
        end = (utcnow() + timedelta(days=30)).date()
        assert "node@example.com" in page.text
        assert any(f"<strong>{(end + timedelta(days=d)).isoformat()}</strong>" in page.text
                   for d in (-1, 0, 1))
        assert "actif" in page.text
        assert "node@example.com" not in (
            await http.get("/admin/subscriptions?status=expired")).text
        assert "node@example.com" in (await http.get("/admin/subscriptions?q=NODE@")).text
        assert (await http.get("/admin/subscriptions?status=x")).status_code == 400


async def test_pages_speak_english_when_asked_and_keep_it_in_links(
    gateway_factory: Callable[..., Any],
) -> None:
    """?lang=en gives English pages whose navigation and forms keep ?lang=en; the browser's
    Accept-Language is followed otherwise; French is the default."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await new_order(http)
        await sign_in(http)
        english = await http.get("/admin/orders?lang=en&status=pending")
        assert 'lang="en"' in english.text and "Export as CSV" in english.text
        assert 'href="/admin/subscriptions?lang=en"' in english.text
        assert '<input type="hidden" name="lang" value="en">' in english.text
        assert 'href="/admin/orders?status=pending&amp;lang=fr"' in english.text
        by_header = await http.get("/admin", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert "Dashboard" in by_header.text
        french = await http.get("/admin")
        assert "Tableau de bord" in french.text and "Prestataires Lightning" in french.text


def loadtest_rows(html: str) -> list[tuple[str, str, str]]:
    """The dashboard's load test rows: (run id, passed yes/no, the row's HTML)."""
    panel = html.split('id="loadtests"', 1)[1]
    return re.findall(r'<tr data-run="(\d+)" data-passed="(yes|no)"([^\n]*)</tr>', panel)


async def test_dashboard_shows_the_latest_load_tests_newest_first_failures_marked(
    gateway_factory: Callable[..., Any],
) -> None:
    """Runs recorded through the admin API appear in the "Tests de charge" panel, the 10 latest
    (by start), newest first, with rate, duration, requests, errors, p50/p99 and the verdict; a
    run that missed its objectives is marked (row and pill)."""
    async with gateway_factory(admin_token=TOKEN) as http:
        start = utcnow().replace(microsecond=0) - timedelta(hours=3)
        ids = []
        for minute in range(12):  # recorded out of order: the panel orders by start time
            at = start + timedelta(minutes=(minute * 7) % 12)
            failed = minute == 3  # the third newest
            ids.append((at, await record_loadtest_run(http, loadtest_report(
                "webhook" if failed else "create-invoice", at, passed=not failed,
                rate=2.5, duration_s=60, requests=150, errors=9 if failed else 0,
                p50=12.5, p99=1250.0 if failed else 48.0))))
        await sign_in(http)
        page = await http.get("/admin")
        assert page.status_code == 200 and "Tests de charge" in page.text
        rows = loadtest_rows(page.text)
        newest = [str(run_id) for _at, run_id in sorted(ids, reverse=True)[:10]]
        assert [run_id for run_id, _passed, _html in rows] == newest
        failed_id = str(ids[3][1])
        verdicts = {run_id: (passed, html) for run_id, passed, html in rows}
        assert verdicts[failed_id][0] == "no"
        assert [run_id for run_id, passed, _ in rows if passed == "no"] == [failed_id]
        failed_row = verdicts[failed_id][1]
        assert 'class="failed"' in failed_row and '<span class="pill failed">manqués</span>' in \
            failed_row
        assert "<code>webhook</code>" in failed_row and "1,25 s" in failed_row
        passed_row = verdicts[newest[0]][1]
        assert '<span class="pill passed">atteints</span>' in passed_row
        assert 'class="failed"' not in passed_row
        assert "2,5 req/s · 60 s" in passed_row and "12,5 ms · 48,0 ms" in passed_row
        newest_at = max(ids)[0]
        assert f'title="{newest_at.strftime("%Y-%m-%d %H:%M:%S")} UTC"' in passed_row
        assert "Aucun test de charge" not in page.text



async def test_dashboard_without_load_tests_says_how_to_run_one(
    gateway_factory: Callable[..., Any],
) -> None:
    """No run recorded: the panel says so and gives the command, in French and English."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await sign_in(http)
        french = await http.get("/admin")
        assert "Aucun test de charge enregistré pour l&#39;instant." in french.text
        assert "lngate loadtest health --rate 20 --duration 60" in french.text
        assert loadtest_rows(french.text) == []
        english = await http.get("/admin?lang=en")
        assert "No load test recorded yet." in english.text
        assert "lngate loadtest health" in english.text


async def test_load_test_panel_escapes_what_the_stored_report_says(
    gateway_factory: Callable[..., Any],
) -> None:
    """The API refuses a scenario name that is not a plain name; one stored anyway (an older
    gateway, the database edited by hand) is written escaped, never as markup."""
    async with gateway_factory(admin_token=TOKEN) as http:
        scenario = '<script>alert("x")</script>'
        refused = await http.post("/api/admin/loadtests", headers=AUTH,
                                  json=loadtest_report(scenario, utcnow()))
        assert refused.status_code == 400
        report = loadtest_report("health", utcnow())
        database = http.app.state.gateway.db  # type: ignore[attr-defined]
        await record_loadtest(database, LoadTestRun(
            started_at=utcnow(), scenario=scenario, rate=1, duration_s=1, requests=1,
            errors=0, p50_ms=None, p99_ms=None, passed=True, summary=report), clock=utcnow)
        await sign_in(http)
        page = await http.get("/admin")
        assert "<script>alert" not in page.text
        assert "<code>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</code>" in page.text
        (_run_id, _passed, row), = loadtest_rows(page.text)
        assert "— · —" in row  # no successful request: no percentile


async def test_load_test_panel_speaks_english(gateway_factory: Callable[..., Any]) -> None:
    """?lang=en: the panel's title, columns, verdicts and numbers are written in English."""
    async with gateway_factory(admin_token=TOKEN) as http:
        at = utcnow() - timedelta(minutes=5)
        await record_loadtest_run(http, loadtest_report("health", at, rate=2.5, requests=1500))
        await record_loadtest_run(http, loadtest_report(
            "create-invoice", at + timedelta(minutes=1), passed=False, errors=3))
        await sign_in(http)
        english = await http.get("/admin?lang=en")
        assert "<h2 id=\"loadtests-title\">Load tests</h2>" in english.text
        for word in ("Scenario", "Rate · duration", "Requests", "Errors", "Objectives"):
            assert f">{word}</th>" in english.text, word
        (_, first, failed_row), (_, second, passed_row) = loadtest_rows(english.text)
        assert (first, second) == ("no", "yes")
        assert '<span class="pill failed">failed</span>' in failed_row
        assert '<span class="pill passed">passed</span>' in passed_row
        assert "2.5 req/s · 30 s" in passed_row and "1,500" in passed_row
