"""Operator sessions for browsers: sign-in, the cookie's attributes, CSRF on state-changing
requests, expiry, sign-out, a changed admin token, and the sign-in rate limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from lngate.services.clock import utcnow
from lngate.store.tables import admin_sessions
from lngate.web.admin_session import safe_next
from tests.web.backoffice import AUTH, TOKEN, login_csrf, new_order, sign_in


def cookie_header(response: httpx.Response) -> str:
    [header] = response.headers.get_list("set-cookie")
    return header


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "")
            for p in parts[1:]}


async def test_sign_in_sets_a_strict_httponly_cookie_with_an_expiry(
    gateway_factory: Callable[..., Any],
) -> None:
    """A right token gives a 303 to /admin and an HttpOnly, SameSite=Strict session cookie
    that expires with the session; on http it is not Secure (it would not be sent back)."""
    async with gateway_factory(admin_token=TOKEN, admin_session_minutes=30) as http:
        response = await http.post("/admin/login", data={"token": TOKEN, **await login_csrf(http)})
        assert response.status_code == 303 and response.headers["location"] == "/admin"
        header = cookie_header(response)
        assert header.startswith("lngate_admin=")
        attrs = attributes(header)
        assert "httponly" in attrs and attrs["samesite"].lower() == "strict"
        assert attrs["path"] == "/" and attrs["max-age"] == "1800"
        assert "secure" not in attrs and "domain" not in attrs
        info = (await http.get("/api/admin/session")).json()
        assert info["via"] == "session" and info["actor"].startswith("session:")
        assert info["expiresAt"].endswith("Z") and len(info["csrfToken"]) == 43
        assert (await http.get("/api/admin/orders")).status_code == 200


async def test_cookie_is_secure_under_the_host_prefix_when_public_url_is_https(
    gateway_factory: Callable[..., Any],
) -> None:
    """With an https PUBLIC_URL the cookie is Secure and named __Host-lngate_admin."""
    async with gateway_factory(admin_token=TOKEN, public_url="https://pay.example.com") as http:
        csrf = await login_csrf(http)  # its cookie is Secure too: sent here by hand, over http
        nonce = {"Cookie": f"__Host-lngate_login={http.cookies['__Host-lngate_login']}"}
        response = await http.post("/admin/login", data={"token": TOKEN, "next": "/admin/x",
                                                          **csrf}, headers=nonce)
        assert response.status_code == 303 and response.headers["location"] == "/admin/x"
        header = cookie_header(response)
        assert header.startswith("__Host-lngate_admin=")
        attrs = attributes(header)
        assert "secure" in attrs and "httponly" in attrs and attrs["path"] == "/"


async def test_wrong_token_gets_no_session(gateway_factory: Callable[..., Any]) -> None:
    """A wrong, empty or missing token is a 401 and sets no cookie."""
    async with gateway_factory(admin_token=TOKEN, rate_limit_admin_login="100/minute") as http:
        csrf = await login_csrf(http)
        for data in ({"token": "wrong"}, {"token": ""}, {"other": TOKEN}, {"token": TOKEN + "x"},
                     {"token": TOKEN.upper()}):
            response = await http.post("/admin/login", data={**data, **csrf})
            assert response.status_code == 401 and response.json()["code"] == "invalid_token"
            assert "set-cookie" not in response.headers
        bad_form = await http.post("/admin/login", content=b"token=a&token=b",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert bad_form.status_code == 400 and bad_form.json()["code"] == "invalid_form"
        not_form = await http.post("/admin/login", content=b"token",
                                   headers={"Content-Type": "text/plain"})
        assert not_form.status_code == 415
        assert (await http.post("/admin/login")).status_code == 415
        assert (await http.post("/admin/login", json=[TOKEN])).status_code == 401
        lone_surrogate = await http.post("/admin/login", content=b'{"token": "\\ud800"}',
                                         headers={"Content-Type": "application/json"})
        assert lone_surrogate.status_code == 400
    async with gateway_factory() as http:  # no ADMIN_TOKEN: nothing to sign in with
        assert (await http.post("/admin/login", data={"token": ""})).status_code == 503


async def test_json_sign_in_returns_the_csrf_token(gateway_factory: Callable[..., Any]) -> None:
    """A JSON sign-in answers 200 with the session's CSRF token (for scripts and fetch)."""
    async with gateway_factory(admin_token=TOKEN) as http:
        response = await http.post("/admin/login", json={"token": TOKEN})
        assert response.status_code == 200
        body = response.json()
        assert body["csrfToken"] == (await http.get("/api/admin/session")).json()["csrfToken"]


async def test_session_post_needs_its_csrf_token(gateway_factory: Callable[..., Any]) -> None:
    """A state-changing request on a session is refused without its CSRF token or with
    another one (header or form field), and accepted with it."""
    async with gateway_factory(admin_token=TOKEN) as http:
        first, second = await new_order(http, "dazpay"), await new_order(http, "dazpay")
        csrf = await sign_in(http)
        path = f"/api/admin/orders/{first['order']['id']}/cancel"
        for headers, data in (({}, None), ({"X-CSRF-Token": "forged"}, None),
                              ({"X-CSRF-Token": csrf[:-1] + ("B" if csrf.endswith("A") else "A")}, None),
                              ({}, {"csrf_token": "forged"}), ({}, {"reason": "x"})):
            response = await http.post(path, headers=headers, data=data)
            assert response.status_code == 403, (headers, data, response.text)
            assert response.json()["code"] == "csrf_failed"
        assert (await http.get(f"/api/admin/orders/{first['order']['id']}")).json()[
            "order"]["status"] == "pending"
        ok = await http.post(path, headers={"X-CSRF-Token": csrf}, json={"reason": "doublon"})
        assert ok.status_code == 200, ok.text
        form = await http.post(f"/api/admin/orders/{second['order']['id']}/cancel",
                               data={"csrf_token": csrf, "reason": "formulaire"})
        assert form.status_code == 200, form.text
        detail = (await http.get(f"/api/admin/orders/{second['order']['id']}")).json()
        assert detail["audit"][0]["details"]["reason"] == "formulaire"
        other = await httpx.AsyncClient(transport=http._transport,  # type: ignore[attr-defined]
                                        base_url="http://gateway").__aenter__()
        try:  # another browser's session has another CSRF token
            await sign_in(other)
            cross = await other.post(path, headers={"X-CSRF-Token": csrf})
            assert cross.status_code == 403
        finally:
            await other.aclose()


async def test_bearer_token_needs_no_csrf_and_a_wrong_one_is_not_saved_by_the_cookie(
    gateway_factory: Callable[..., Any],
) -> None:
    """The bearer token works without CSRF; a wrong bearer token is refused even beside a
    valid session cookie."""
    async with gateway_factory(admin_token=TOKEN) as http:
        created = await new_order(http, "dazpay")
        await sign_in(http)
        wrong = await http.get("/api/admin/orders", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.post(f"/api/admin/orders/{created['order']['id']}/cancel", headers=AUTH)
        assert ok.status_code == 200
        assert (await http.get("/api/admin/session", headers=AUTH)).json() == {
            "actor": "admin-token", "via": "token"}


async def test_expired_session_is_refused(gateway_factory: Callable[..., Any]) -> None:
    """A session past its expiry is refused (401), for reads and writes alike."""
    async with gateway_factory(admin_token=TOKEN) as http:
        csrf = await sign_in(http)
        db = http.app.state.gateway.db  # type: ignore[attr-defined]
        async with db.transaction() as conn:
            await conn.execute(update(admin_sessions)
                               .values(expires_at=utcnow() - timedelta(seconds=1)))
        assert (await http.get("/api/admin/orders")).status_code == 401
        assert (await http.post("/admin/logout", headers={"X-CSRF-Token": csrf})).status_code \
            == 401


async def test_sign_out_revokes_the_session(gateway_factory: Callable[..., Any]) -> None:
    """Signing out needs the CSRF token, clears the cookie, and the old cookie is refused
    afterwards."""
    async with gateway_factory(admin_token=TOKEN) as http:
        csrf = await sign_in(http)
        value = http.cookies["lngate_admin"]
        refused = await http.post("/admin/logout")
        assert refused.status_code == 403
        response = await http.post("/admin/logout", data={"csrf_token": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
        cleared = cookie_header(response)
        assert cleared.startswith('lngate_admin=""') and attributes(cleared)["max-age"] == "0"
        replay = await http.get("/api/admin/orders", headers={"Cookie": f"lngate_admin={value}"})
        assert replay.status_code == 401


async def test_a_new_admin_token_ends_existing_sessions(
    gateway_factory: Callable[..., Any],
) -> None:
    """Sessions opened with the previous ADMIN_TOKEN are refused once the token changes."""
    async with gateway_factory(admin_token=TOKEN) as http:
        await sign_in(http)
        value = http.cookies["lngate_admin"]
        assert (await http.get("/api/admin/orders")).status_code == 200
    async with gateway_factory(admin_token="a-brand-new-admin-token-987654") as http:
        response = await http.get("/api/admin/orders", headers={"Cookie": f"lngate_admin={value}"})
        assert response.status_code == 401


async def test_sign_in_is_rate_limited_per_client(gateway_factory: Callable[..., Any]) -> None:
    """Past RATE_LIMIT_ADMIN_LOGIN attempts, even the right token gets a 429 with Retry-After,
    while other admin routes are not limited by it."""
    async with gateway_factory(admin_token=TOKEN, rate_limit_admin_login="3/minute") as http:
        csrf = await login_csrf(http)
        for _ in range(3):
            guess = await http.post("/admin/login", data={"token": "guess", **csrf})
            assert guess.status_code == 401
        limited = await http.post("/admin/login", data={"token": TOKEN, **csrf})
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert "set-cookie" not in limited.headers
        assert (await http.get("/api/admin/orders", headers=AUTH)).status_code == 200


def test_next_stays_under_admin() -> None:
    """After sign-in only a path under /admin is followed; anything else goes to /admin."""
    for good in ("/admin", "/admin/orders", "/admin/orders?q=a#x", "/admin?x=1"):
        assert safe_next(good) == good
    for bad in (None, "", "https://evil.test/admin", "//evil.test", "/administrator",
                "/admin/../logout", "/admin\\@evil.test", "/adminx", "/api/admin/orders",
                "/admin/\r\nSet-Cookie: x", "/admin/\x00", "/admin/" + "a" * 500):
        assert safe_next(bad) == "/admin"
