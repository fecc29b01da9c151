"""The back office's admin JSON API through the real app: access control on every endpoint,
hostile parameters, shipping with its email (real SMTP sink), cancelling, CSV, audit, stats."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from lngate.store.tables import outbox
from tests.peers.smtp_peer import SMTPPeer
from tests.web.backoffice import AUTH, TOKEN, new_order, sign_in

ORDER_ID = "A" * 22
ENDPOINTS = [
    ("GET", "/api/admin/orders"),
    ("GET", "/api/admin/orders.csv"),
    ("GET", f"/api/admin/orders/{ORDER_ID}"),
    ("POST", f"/api/admin/orders/{ORDER_ID}/ship"),
    ("POST", f"/api/admin/orders/{ORDER_ID}/cancel"),
    ("GET", "/api/admin/subscriptions"),
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/stats"),
    ("GET", "/api/admin/session"),
]
SHIPPED_SUBJECT = "Votre DazBox est en route"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_refuses_without_a_valid_token_or_session(
    gateway_factory: Callable[..., Any], method: str, path: str,
) -> None:
    """No credentials, a wrong bearer token, another scheme or a forged cookie: 401; and with
    no ADMIN_TOKEN configured at all: 503."""
    async with gateway_factory(admin_token=TOKEN) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"},
                        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "},
                        {"Cookie": "lngate_admin=" + "x" * 43},
                        {"Cookie": "lngate_admin=not-a-token"}):
            response = await http.request(method, path, headers=headers, json={"tracking": "T"})
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["code"] == "unauthorized"
    async with gateway_factory() as http:
        response = await http.request(method, path, headers=AUTH, json={"tracking": "T"})
        assert response.status_code == 503 and response.json()["code"] == "admin_disabled"


def cursor(*values: Any) -> str:
    """A cursor as the API encodes one, with any values in it."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).rstrip(b"=").decode()


HOSTILE = [
    ("/api/admin/orders?limit=0", "invalid_limit"),
    ("/api/admin/orders?limit=201", "invalid_limit"),
    ("/api/admin/orders?limit=ten", "invalid_limit"),
    ("/api/admin/orders?limit=-1", "invalid_limit"),
    ("/api/admin/orders?status=shipped", "invalid_status"),
    ("/api/admin/orders?product=dazcar", "invalid_product"),
    ("/api/admin/orders?from=yesterday", "invalid_date"),
    ("/api/admin/orders?from=2026-13-40", "invalid_date"),
    ("/api/admin/orders?from=0001-01-01", "invalid_date"),
    ("/api/admin/orders?to=9999-12-31T23:59:59", "invalid_date"),
    ("/api/admin/orders?from=2026-02-01&to=2026-01-01", "invalid_period"),
    ("/api/admin/orders?attention=maybe", "invalid_attention"),
    ("/api/admin/orders?q=" + "x" * 201, "invalid_q"),
    ("/api/admin/orders?q=a%00b", "invalid_q"),
    ("/api/admin/orders?cursor=garbage!", "invalid_cursor"),
    ("/api/admin/orders?cursor=WzEsMl0", "invalid_cursor"),  # [1,2]
    ("/api/admin/orders?cursor=" + "A" * 300, "invalid_cursor"),
    ("/api/admin/orders?stauts=paid", "unknown_parameter"),
    ("/api/admin/orders?status=paid&status=pending", "repeated_parameter"),
    ("/api/admin/orders.csv?limit=5", "unknown_parameter"),
    ("/api/admin/orders.csv?from=nope", "invalid_date"),
    ("/api/admin/subscriptions?status=paid", "invalid_status"),
    ("/api/admin/subscriptions?cursor=WyJ4IiwgMV0", "invalid_cursor"),  # ["x", 1]
    ("/api/admin/audit?limit=1000", "invalid_limit"),
    ("/api/admin/audit?cursor=WyJ4Il0", "invalid_cursor"),  # ["x"]
    ("/api/admin/stats?group=week", "invalid_group"),
    ("/api/admin/stats?by=customer", "invalid_by"),
    ("/api/admin/stats?includeTest=perhaps", "invalid_includeTest"),
    ("/api/admin/stats?from=2026-01-01&to=2026-03-01&group=hour", "invalid_period"),
    ("/api/admin/stats?from=2025-01-01&to=2026-01-01", "invalid_period"),
    ("/api/admin/stats?from=2026-01-02&to=2026-01-01", "invalid_period"),
    ("/api/admin/stats?from=2026-01-01T25:00", "invalid_date"),
    (f"/api/admin/orders/{ORDER_ID}?x=1", "unknown_parameter"),
    ("/api/admin/orders?cursor=" + cursor("2026-01-01T00:00:00+00:00", "a\u0000b"),
     "invalid_cursor"),
    ("/api/admin/orders?cursor=" + cursor("2026-01-01T00:00:00", "abc"), "invalid_cursor"),
    ("/api/admin/orders?cursor=" + cursor("9999-12-31T23:59:59+00:00", 5), "invalid_cursor"),
    ("/api/admin/audit?cursor=" + cursor(2**64), "invalid_cursor"),
    ("/api/admin/audit?cursor=" + cursor(-1), "invalid_cursor"),
    ("/api/admin/audit?cursor=" + cursor(True), "invalid_cursor"),
    ("/api/admin/subscriptions?cursor=" + cursor("2026-01-01T00:00:00+00:00", 2**70),
     "invalid_cursor"),
]


async def test_hostile_parameters_get_a_clear_400(gateway_factory: Callable[..., Any]) -> None:
    """Every malformed, out-of-range, unknown or repeated parameter is a 400 with a code."""
    async with gateway_factory(admin_token=TOKEN) as http:
        for path, code in HOSTILE:
            response = await http.get(path, headers=AUTH)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["code"] == code, (path, response.json())
            assert response.json()["error"]


async def test_hostile_action_bodies_get_a_clear_status(gateway_factory: Callable[..., Any]) -> None:
    """Ship and cancel refuse bad bodies (400), unknown orders (404) and wrong media (415)."""
    async with gateway_factory(admin_token=TOKEN) as http:
        created = await new_order(http, pay=True)
        ship = f"/api/admin/orders/{created['order']['id']}/ship"
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"json": {}}, 400, "missing_tracking"),
            ({"json": {"tracking": "  "}}, 400, "missing_tracking"),
            ({"json": {"tracking": 12}}, 400, "invalid_tracking"),
            ({"json": {"tracking": "=cmd|x"}}, 400, "invalid_tracking"),
            ({"json": {"tracking": "T" * 101}}, 400, "invalid_tracking"),
            ({"json": {"tracking": "T1", "carrier": ["x"]}}, 400, "invalid_carrier"),
            ({"json": {"tracking": "T1", "carrier": "C" * 65}}, 400, "invalid_carrier"),
            ({"json": {"tracking": "T1", "carrier": "a\nb"}}, 400, "invalid_carrier"),
            ({"content": b'{"tracking": "T1", "carrier": "\\ud800"}',
              "headers": {"Content-Type": "application/json"}}, 400, "invalid_unicode"),
            ({"json": {"tracking": "T1", "price": 0}}, 400, "unknown_field"),
            ({"json": ["T1"]}, 400, "invalid_body"),
            ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
             "invalid_json"),
            ({"content": b"tracking=T1", "headers": {"Content-Type": "text/plain"}}, 415,
             "unsupported_media_type"),
        ]
        for kwargs, status, code in cases:
            headers = {**AUTH, **kwargs.pop("headers", {})}
            response = await http.post(ship, headers=headers, **kwargs)
            assert response.status_code == status, (kwargs, response.text)
            assert response.json()["code"] == code, (kwargs, response.json())
        for path in ("/api/admin/orders/bad!id/ship", "/api/admin/orders/../cancel",
                     f"/api/admin/orders/{ORDER_ID}/ship"):
            response = await http.post(path, headers=AUTH, json={"tracking": "T1"})
            assert response.status_code == 404, (path, response.text)
        cancel = f"/api/admin/orders/{created['order']['id']}/cancel"
        response = await http.post(cancel, headers=AUTH, json={"reason": 5})
        assert response.status_code == 400 and response.json()["code"] == "invalid_reason"
        response = await http.post(cancel, headers={**AUTH, "Content-Type": "application/json"},
                                   content=b'{"reason": "\\udfff"}')
        assert response.status_code == 400 and response.json()["code"] == "invalid_unicode"
        detail = (await http.get(f"/api/admin/orders/{created['order']['id']}",
                                 headers=AUTH)).json()
        assert detail["order"]["shipment"]["status"] == "to_ship" and detail["audit"] == []


async def test_two_concurrent_ship_requests_send_one_shipped_email(
    gateway_factory: Callable[..., Any], smtp: SMTPPeer, database_url: str,
) -> None:
    """Two ship requests at once: one 200, one 409, and the customer receives exactly one
    "shipped" email through the real SMTP server, with the tracking number."""
    async with gateway_factory(admin_token=TOKEN, database_url=database_url,
                               smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="none",
                               shop_email="shop@example.com",
                               outbox_poll_interval_seconds=0.2) as http:
        created = await new_order(http, pay=True, email="bob@example.com", name="Bob")
        order_id = created["order"]["id"]
        path = f"/api/admin/orders/{order_id}/ship"
        responses = await asyncio.gather(
            http.post(path, headers=AUTH, json={"tracking": "6A11111111111",
                                                "carrier": "Colissimo"}),
            http.post(path, headers=AUTH, json={"tracking": "6A22222222222"}))
        assert sorted(r.status_code for r in responses) == [200, 409]
        winner = next(r for r in responses if r.status_code == 200).json()
        loser = next(r for r in responses if r.status_code == 409).json()
        assert loser["code"] == "already_shipped"
        tracking = winner["order"]["shipment"]["trackingNumber"]
        assert winner["email"] == {"kind": "dazbox_shipped", "queued": True}
        await smtp.wait_for(3, timeout=20)  # confirmation, shop notification, shipped
        await asyncio.sleep(1.0)  # room for a second "shipped" email, were there one
        to_bob = smtp.to("bob@example.com")
        shipped = [m for m in to_bob if m.subject.startswith(SHIPPED_SUBJECT)]
        assert len(shipped) == 1 and len(to_bob) == 2
        assert order_id in shipped[0].subject and tracking in shipped[0].body()
        assert tracking in shipped[0].body("html")
        async with http.app.state.gateway.db.connect() as conn:  # type: ignore[attr-defined]
            rows = (await conn.execute(select(outbox.c.kind, outbox.c.status)
                                       .where(outbox.c.order_id == order_id))).all()
        assert sorted(rows) == [("dazbox_confirmation", "sent"), ("dazbox_shipped", "sent"),
                                ("dazbox_shop_notification", "sent")]
        detail = (await http.get(f"/api/admin/orders/{order_id}", headers=AUTH)).json()
        emails = {e["kind"]: e for e in detail["emails"]}
        assert emails["dazbox_shipped"]["status"] == "sent"
        assert emails["dazbox_shipped"]["attempts"] == 1
        assert emails["dazbox_shop_notification"]["toShop"] is True
        assert [(a["action"], a["actor"]) for a in detail["audit"]] == [
            ("order.ship", "admin-token")]
        assert detail["fulfilment"]["shipment"]["trackingNumber"] == tracking


async def test_ship_refused_for_unpaid_and_non_dazbox_orders(
    gateway_factory: Callable[..., Any],
) -> None:
    """An unpaid DazBox or a paid DazNode cannot be shipped (409), and nothing is queued."""
    async with gateway_factory(admin_token=TOKEN) as http:
        unpaid = await new_order(http)
        node = await new_order(http, "daznode", pay=True)
        for created, code in ((unpaid, "order_not_paid"), (node, "not_shippable")):
            response = await http.post(f"/api/admin/orders/{created['order']['id']}/ship",
                                       headers=AUTH, json={"tracking": "T1"})
            assert response.status_code == 409 and response.json()["code"] == code


async def test_cancel_unpaid_then_paid_order_is_flagged_and_paid_order_refused(
    gateway_factory: Callable[..., Any],
) -> None:
    """An unpaid order is cancelled; a payment arriving after is recorded and flagged for a
    refund; a paid order cannot be cancelled."""
    async with gateway_factory(admin_token=TOKEN) as http:
        unpaid = await new_order(http, "dazpay")
        order_id = unpaid["order"]["id"]
        response = await http.post(f"/api/admin/orders/{order_id}/cancel", headers=AUTH,
                                   json={"reason": "doublon"})
        assert response.status_code == 200, response.text
        assert response.json()["order"]["status"] == "cancelled"
        assert response.json()["order"]["cancelledAt"]
        again = await http.post(f"/api/admin/orders/{order_id}/cancel", headers=AUTH)
        assert again.status_code == 409 and again.json()["code"] == "already_cancelled"
        assert (await http.get(f"/api/orders/{order_id}")).json()["order"]["status"] == \
            "cancelled"
        paid_later = await http.post(f"/api/demo/pay/{unpaid['invoice']['payment_hash']}")
        assert paid_later.json()["settlement"] == "settled"
        detail = (await http.get(f"/api/admin/orders/{order_id}", headers=AUTH)).json()
        assert detail["order"]["status"] == "cancelled"
        assert detail["order"]["attention"] == "refund_due"
        assert detail["payment"]["paid"] is True and detail["payment"]["refundDue"] is True
        assert detail["invoices"][0]["state"] == "paid"
        assert [e["kind"] for e in detail["emails"]] == ["order_paid_after_cancel"]
        assert [a["action"] for a in detail["audit"]] == ["order.paid_after_cancel",
                                                          "order.cancel"]
        flagged = (await http.get("/api/admin/orders?attention=true", headers=AUTH)).json()
        assert [o["id"] for o in flagged["orders"]] == [order_id]

        paid = await new_order(http, "dazbox", pay=True)
        refused = await http.post(f"/api/admin/orders/{paid['order']['id']}/cancel",
                                  headers=AUTH)
        assert refused.status_code == 409 and refused.json()["code"] == "order_paid"
        assert refused.json()["order"]["status"] == "paid"


async def test_orders_list_filters_and_pages(gateway_factory: Callable[..., Any]) -> None:
    """The list answers the filters and pages through every order once, newest first."""
    async with gateway_factory(admin_token=TOKEN) as http:
        made = [await new_order(http, "dazpay", email=f"client{i}@example.com")
                for i in range(5)]
        paid = await new_order(http, "daznode", pay=True, email="vip@example.com", name="Zoé")
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (await http.get("/api/admin/orders", headers=AUTH, params=params)).json()
            seen += [o["id"] for o in body["orders"]]
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert seen == [paid["order"]["id"], *[m["order"]["id"] for m in reversed(made)]]
        found = (await http.get("/api/admin/orders", headers=AUTH,
                                params={"q": "ZO", "status": "paid", "product": "daznode",
                                        "from": "2009-01-01", "to": "2100-01-01"})).json()
        assert [o["id"] for o in found["orders"]] == [paid["order"]["id"]]
        found = (await http.get("/api/admin/orders", headers=AUTH,
                                params={"q": "vip@", "status": "paid"})).json()
        assert [o["id"] for o in found["orders"]] == [paid["order"]["id"]]
        assert found["orders"][0]["customer"] == {"email": "vip@example.com", "name": "Zoé"}
        by_hash = (await http.get("/api/admin/orders", headers=AUTH,
                                  params={"q": made[2]["invoice"]["payment_hash"]})).json()
        assert [o["id"] for o in by_hash["orders"]] == [made[2]["order"]["id"]]
        none = (await http.get("/api/admin/orders", headers=AUTH,
                               params={"from": "2100-01-01"})).json()
        assert none == {"orders": [], "nextCursor": None, "limit": 50}


async def test_csv_export_defuses_formulas_and_is_audited(
    gateway_factory: Callable[..., Any],
) -> None:
    """The CSV export has the filtered orders, every risky cell prefixed with a quote, fields
    with commas and quotes quoted; the export is audited."""
    async with gateway_factory(admin_token=TOKEN) as http:
        evil = await new_order(http, "dazbox", name='=HYPERLINK("http://evil.test","ok")',
                               address={"line1": "@SUM(1+1)", "city": "-2+3",
                                        "postal_code": "+33", "country": 'France, "FR"'})
        await new_order(http, "dazpay", email="other@example.com")
        response = await http.get("/api/admin/orders.csv", headers=AUTH,
                                  params={"product": "dazbox"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        rows = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"),
                                               newline="")))
        assert len(rows) == 1
        row = rows[0]
        assert row["order_id"].lstrip("'") == evil["order"]["id"]
        assert row["customer_name"] == """'=HYPERLINK("http://evil.test","ok")"""
        assert row["address_line1"] == "'@SUM(1+1)" and row["city"] == "'-2+3"
        assert row["postal_code"] == "'+33" and row["country"] == 'France, "FR"'
        assert row["amount_sat"] == "400000" and row["status"] == "pending"
        assert '"\'=HYPERLINK(""http://evil.test"",""ok"")"' in response.text  # RFC 4180
        audit = (await http.get("/api/admin/audit", headers=AUTH,
                                params={"action": "orders.export"})).json()["entries"]
        assert len(audit) == 1 and audit[0]["details"] == {"filters": {"product": "dazbox"}}


async def test_session_actions_are_audited_with_the_session_actor(
    gateway_factory: Callable[..., Any],
) -> None:
    """Sign-in, a cancel, an export and sign-out through a session are audited under
    ``session:<prefix>``; the audit log pages newest first."""
    async with gateway_factory(admin_token=TOKEN) as http:
        created = await new_order(http, "dazpay")
        csrf = await sign_in(http)
        actor = (await http.get("/api/admin/session")).json()["actor"]
        assert actor.startswith("session:") and len(actor) == len("session:") + 12
        response = await http.post(f"/api/admin/orders/{created['order']['id']}/cancel",
                                   headers={"X-CSRF-Token": csrf})
        assert response.status_code == 200, response.text
        assert (await http.get("/api/admin/orders.csv")).status_code == 200
        assert (await http.post("/admin/logout", data={"csrf_token": csrf})).status_code == 303
        first = (await http.get("/api/admin/audit", headers=AUTH, params={"limit": 2})).json()
        rest = (await http.get("/api/admin/audit", headers=AUTH,
                               params={"cursor": first["nextCursor"]})).json()
        entries = first["entries"] + rest["entries"]
        assert [(e["action"], e["actor"]) for e in entries] == [
            ("session.logout", actor), ("orders.export", actor), ("order.cancel", actor),
            ("session.login", actor)]
        assert entries[2]["target"] == created["order"]["id"]
        assert rest["nextCursor"] is None


async def test_subscriptions_endpoint_lists_end_dates(gateway_factory: Callable[..., Any]) -> None:
    """A paid DazNode appears as an active subscription with its period end."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await new_order(http, "daznode", pay=True, email="node@example.com")
        body = (await http.get("/api/admin/subscriptions", headers=AUTH)).json()
        [sub] = body["subscriptions"]
        assert sub["email"] == "node@example.com" and sub["status"] == "active"
        assert sub["periodEnd"] > sub["periodStart"] and body["nextCursor"] is None
        expired = (await http.get("/api/admin/subscriptions?status=expired",
                                  headers=AUTH)).json()
        assert expired["subscriptions"] == []


async def test_stats_endpoint_defaults_to_the_last_day(gateway_factory: Callable[..., Any]) -> None:
    """Without parameters: the last 24 hours by hour and provider, test invoices included in
    demo mode; a paid order shows in the figures."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await new_order(http, "dazpay", pay=True)
        await new_order(http, "dazpay")
        body = (await http.get("/api/admin/stats", headers=AUTH)).json()
        assert body["group"] == "hour" and body["by"] == "provider"
        assert body["includesTest"] is True and len(body["periods"]) == 25
        assert body["total"]["overall"]["created"] == 2
        assert body["total"]["overall"]["paid"] == 1
        assert body["total"]["overall"]["revenueSats"] == 2100
        assert body["total"]["invoices"]["test"]["conversionRate"] == 50.0
        by_product = (await http.get("/api/admin/stats", headers=AUTH,
                                     params={"by": "product", "includeTest": "false"})).json()
        assert by_product["total"]["overall"]["created"] == 0
        days = (await http.get("/api/admin/stats", headers=AUTH,
                               params={"from": "2026-01-01", "to": "2026-01-31"})).json()
        assert days["group"] == "day" and len(days["periods"]) == 30
        week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        week = await http.get("/api/admin/stats", headers=AUTH,
                              params={"from": week_ago, "group": "hour"})
        assert week.status_code == 200, week.text  # the longest period by hour
        assert len(week.json()["periods"]) in (169, 170)  # whole hours, now's included
