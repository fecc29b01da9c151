"""The operator's sign-in page, and its protection against cross-site requests before any
session exists.

``GET /admin/login`` shows a form that posts the admin token to ``POST /admin/login``
(``web/admin_session.py``). Even that form is protected, by a signed double submit: the page
sets a random nonce in a cookie (``lngate_login``, or ``__Host-lngate_login`` over https;
HttpOnly, ``SameSite=Strict``, one hour) and puts ``HMAC-SHA256(ADMIN_TOKEN,
"lngate/login-csrf/v1:" + nonce)`` in the form's ``csrf_token`` field. A form post whose field
does not match its cookie is refused (403 ``csrf_failed``) before the token is looked at: another
site can neither read the field nor, without the admin token, make a matching pair. A JSON
sign-in (a script) needs no such field: a browser cannot send a cross-site JSON request without
a CORS preflight, which the admin routes never grant.

A browser (``Accept: text/html``) gets the refusals as the sign-in page again, with the reason
and a fresh field; other clients get the JSON error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from fastapi import Request
from starlette.responses import Response

from lngate.web.admin_layout import SIGN_IN, admin_url, chosen_language, render_admin
from lngate.web.errors import ApiError

LOGIN_COOKIE = "lngate_login"
SECURE_LOGIN_COOKIE = "__Host-lngate_login"
LOGIN_COOKIE_SECONDS = 3600
_CONTEXT = b"lngate/login-csrf/v1:"
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
PROBLEMS = {"invalid_token": "admin.login_invalid_token", "csrf_failed": "admin.login_expired"}
"""What the page says after a refusal, by error code."""


def login_cookie_name(secure: bool) -> str:
    """The nonce cookie's name (``__Host-`` over https, as the session cookie)."""
    return SECURE_LOGIN_COOKIE if secure else LOGIN_COOKIE


def login_field(nonce: str, admin_token: str) -> str:
    """The form field that goes with ``nonce``."""
    digest = hmac.new(admin_token.encode(), _CONTEXT + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def login_csrf_matches(request: Request, given: object, admin_token: str, *,
                       secure: bool) -> bool:
    """Whether the form's ``csrf_token`` (``given``) matches the request's nonce cookie."""
    nonce = request.cookies.get(login_cookie_name(secure))
    if not isinstance(given, str) or not nonce or not _NONCE.fullmatch(nonce):
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               login_field(nonce, admin_token).encode())


def wants_html(request: Request) -> bool:
    """Whether the client is a browser submitting the form (it accepts HTML)."""
    return "text/html" in request.headers.get("accept", "")


def sign_in_page(request: Request, *, admin_token: str, secure: bool, status_code: int = 200,
                 problem: str | None = None, next_path: str | None = None) -> Response:
    """The sign-in form, with a nonce cookie (the request's own when it has a valid one) and
    its field."""
    cookie = login_cookie_name(secure)
    nonce = request.cookies.get(cookie)
    if not nonce or not _NONCE.fullmatch(nonce):
        nonce = secrets.token_urlsafe(32)
    response = render_admin(
        request, "admin/login.html", session=None, active=None, status_code=status_code,
        csrf_token=login_field(nonce, admin_token), next_path=next_path or "",
        problem_key=PROBLEMS.get(problem or ""),
        action=admin_url(SIGN_IN, chosen_language(request)),
    )
    response.set_cookie(cookie, nonce, max_age=LOGIN_COOKIE_SECONDS, path="/", secure=secure,
                        httponly=True, samesite="strict")
    return response


def refuse_sign_in(request: Request, status: int, code: str, next_path: object, *,
                   admin_token: str, secure: bool) -> Response:
    """A refused sign-in: the page again for a browser's form, else raises the JSON error."""
    if wants_html(request) and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return sign_in_page(request, admin_token=admin_token, secure=secure,
                            status_code=status, problem=code,
                            next_path=next_path if isinstance(next_path, str) else None)
    message = {"invalid_token": "Invalid admin token",
               "csrf_failed": "CSRF token missing or invalid"}[code]
    raise ApiError(status, message, code)
