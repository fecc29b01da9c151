"""Operator sign-in for browsers, and who may use the back office's admin API.

- ``POST /admin/login`` (form ``token``, optional ``next``; or JSON ``{"token"}``): with the
  admin token, opens a server-side session (``services/admin_sessions.py``) and sets its
  cookie: ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, ``Max-Age`` the session's lifetime,
  and ``Secure`` (under the ``__Host-`` name) when ``PUBLIC_URL`` is https. A form gets a 303 to
  ``next`` (a path under ``/admin`` only) or ``/admin``; JSON gets the session's CSRF token.
  Rate-limited per client IP (``RATE_LIMIT_ADMIN_LOGIN``, route ``admin-login``). A form must
  carry the sign-in page's ``csrf_token`` (``web/login_page.py``); a browser's refused form
  gets the sign-in page again.
- ``POST /admin/logout``: revokes the session (CSRF token required), clears the cookie.
- ``GET /api/admin/session``: who is signed in, and the session's CSRF token.

:data:`AdminRequired` is the dependency of every back-office route: ``Authorization: Bearer
<ADMIN_TOKEN>`` (a wrong one is refused, never passed over for the cookie), or a live session,
whose state-changing requests (anything but GET, HEAD, OPTIONS) must carry its CSRF token in
the ``X-CSRF-Token`` header or the ``csrf_token`` form field. HTML pages use
:func:`current_session` (``None``: show the sign-in form) and :func:`check_csrf` for their
forms, and :func:`read_form` to read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.requests import ClientDisconnect
from starlette.responses import RedirectResponse, Response

from lngate.services.admin_sessions import (
    AdminSession,
    close_session,
    find_session,
    open_session,
    token_matches,
)
from lngate.services.clock import utcnow
from lngate.settings import Settings
from lngate.web.backoffice_schemas import LoginRequest, SessionInfo, SignedIn, SignedOut, body
from lngate.web.body import read_json
from lngate.web.errors import ApiError
from lngate.web.login_page import login_csrf_matches, refuse_sign_in, wants_html
from lngate.web.openapi import (
    ADMIN_DISABLED,
    ADMIN_SCHEME,
    BAD_JSON,
    NOT_JSON,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    errors,
    operation,
    security,
)
from lngate.web.pages import rate_limited_page
from lngate.web.responses import JsonResponse
from lngate.web.routes_admin import require_admin
from lngate.web.state import enforce_rate_limit, gateway_of, web_of

log = structlog.get_logger("lngate.web.admin")

router = APIRouter()
LOGIN_ROUTE = "admin-login"
"""The rate limiter's route name for sign-in attempts."""
COOKIE = "lngate_admin"
SECURE_COOKIE = "__Host-lngate_admin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 8 * 1024
HOME = "/admin"
LOGIN_PAGE = "/admin/login"
FORM_TYPE = "application/x-www-form-urlencoded"
_FORM_KEY = "lngate.admin_form"


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    """Who is calling the admin API: the bearer token, or a browser session."""

    actor: str
    """For the audit log: ``admin-token`` or ``session:<hash prefix>``."""
    session: AdminSession | None = None


def secure_cookies(settings: Settings) -> bool:
    """Cookies are ``Secure`` when the gateway is served over https (``PUBLIC_URL``). Tests
    and a local ``make serve`` run on http loopback, where a Secure cookie would not be sent."""
    return settings.public_url.startswith("https://")


def cookie_name(settings: Settings) -> str:
    """``__Host-lngate_admin`` over https (the browser then requires Secure, Path=/ and no
    Domain), ``lngate_admin`` over http."""
    return SECURE_COOKIE if secure_cookies(settings) else COOKIE


def _admin_token(request: Request) -> str:
    token = gateway_of(request).settings.admin_token
    if token is None:
        raise ApiError(503, "Admin API disabled: ADMIN_TOKEN is not configured on this gateway",
                       "admin_disabled")
    return token.get_secret_value()


async def current_session(request: Request) -> AdminSession | None:
    """The request's live session, from its cookie, or ``None``."""
    settings = gateway_of(request).settings
    admin_token = _admin_token(request)
    value = request.cookies.get(cookie_name(settings))
    if not value:
        return None
    return await find_session(gateway_of(request).db, value, admin_token=admin_token,
                              clock=utcnow)


async def read_form(request: Request) -> dict[str, str]:
    """The URL-encoded form body (read once per request; later calls get the same dict).

    415 for another content type, 413 past 8 KB, 400 for a field given twice or not UTF-8.
    """
    cached = request.scope.get(_FORM_KEY)
    if cached is not None:
        return dict(cached)
    if not _is_form(request):
        raise ApiError(415, f"Content-Type must be {FORM_TYPE}", "unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise ApiError(413, "Form too large (8 KB at most)", "payload_too_large")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise ApiError(413, "Form too large (8 KB at most)", "payload_too_large")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "Request interrupted", "client_disconnected") from None
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=50, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "The form is not valid URL-encoded UTF-8", "invalid_form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise ApiError(400, f"The form field {name!r} is given twice", "invalid_form")
        form[name] = value
    request.scope[_FORM_KEY] = form  # the scope is this request's own (request.state may not be)
    return dict(form)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_form(request: Request) -> bool:
    return _content_type(request) == FORM_TYPE


async def check_csrf(request: Request, session: AdminSession) -> None:
    """Refuse (403) a state-changing request of ``session`` without its CSRF token, in the
    ``X-CSRF-Token`` header or the ``csrf_token`` form field."""
    given: Any = request.headers.get(CSRF_HEADER)
    if given is None and _is_form(request):
        given = (await read_form(request)).get(CSRF_FIELD)
    if not isinstance(given, str) or not session.csrf_matches(given):
        log.warning("admin_csrf_refused", actor=session.actor, path=request.url.path,
                    token_given=given is not None)
        raise ApiError(403, "CSRF token missing or invalid", "csrf_failed")


def _unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "unauthorized",
                    headers={"WWW-Authenticate": 'Bearer realm="lngate-admin"'})


async def admin_identity(request: Request) -> AdminIdentity:
    """The caller of a back-office route: the bearer token, or a live session (with its CSRF
    token on state-changing requests); 401, 403 or 503 otherwise."""
    _admin_token(request)
    if "authorization" in request.headers:
        require_admin(request)
        return AdminIdentity("admin-token")
    session = await current_session(request)
    if session is None:
        raise _unauthorized()
    if request.method not in SAFE_METHODS:
        await check_csrf(request, session)
    return AdminIdentity(session.actor, session)


AdminRequired = Annotated[AdminIdentity, Depends(admin_identity)]
"""The dependency of every back-office route."""


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return _content_type(request) == "application/json" or (
        "application/json" in accept and "text/html" not in accept)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path under ``/admin`` on this site, else ``/admin``."""
    if (not value or not value.startswith(HOME) or len(value) > 500 or ".." in value
            or any(c == "\\" or not c.isprintable() for c in value)):
        return HOME
    rest = value[len(HOME):]
    return value if rest == "" or rest[0] in "/?#" else HOME


_SEE_OTHER = {"description": "A form: signed in (or out); ``Location`` is where to go, the "
                            "cookie is set (or cleared)."}
_FORM_ERRORS = {400: f"{BAD_JSON}; ``invalid_form``: a field given twice, not UTF-8",
                413: f"{PAYLOAD_TOO_LARGE} (a form: 8 KB)",
                415: f"{NOT_JSON} nor ``application/x-www-form-urlencoded``"}


@router.post(LOGIN_PAGE, response_model=SignedIn,
             responses={303: _SEE_OTHER, **errors({
                 **_FORM_ERRORS, 401: "``invalid_token``: not the admin token",
                 403: "``csrf_failed``: a form whose ``csrf_token`` does not match the "
                      "sign-in page's cookie",
                 429: RATE_LIMITED, 503: ADMIN_DISABLED})},
             openapi_extra=body(LoginRequest, csrf=False))
async def login(request: Request) -> Response:
    """Sign in with the admin token: a session cookie, then a 303 (form) or the CSRF token
    (JSON)."""
    try:
        await enforce_rate_limit(request, LOGIN_ROUTE)
    except ApiError as exc:
        if wants_html(request):
            return rate_limited_page(request, exc)
        raise
    admin_token = _admin_token(request)
    gateway = gateway_of(request)
    settings = gateway.settings
    secure = secure_cookies(settings)
    client_ip = web_of(request).client_ip(request)
    if _content_type(request) == "application/json":
        body = await read_json(request)
        fields: dict[str, Any] = body if isinstance(body, dict) else {}
    else:  # a form: the sign-in page's CSRF field must match its cookie (web/login_page.py)
        fields = dict(await read_form(request))
        if not login_csrf_matches(request, fields.pop(CSRF_FIELD, None), admin_token,
                                  secure=secure):
            log.warning("admin_login_csrf_refused", client_ip=client_ip)
            return refuse_sign_in(request, 403, "csrf_failed", fields.get("next"),
                                  admin_token=admin_token, secure=secure)
    as_json = _wants_json(request)
    given = fields.get("token")
    if not isinstance(given, str) or not given or not token_matches(given, admin_token):
        log.warning("admin_login_failed", client_ip=client_ip)
        return refuse_sign_in(request, 401, "invalid_token", fields.get("next"),
                              admin_token=admin_token, secure=secure)
    lifetime = timedelta(minutes=settings.admin_session_minutes)
    session = await open_session(gateway.db, admin_token=admin_token, lifetime=lifetime,
                                 clock=utcnow, client_ip=client_ip,
                                 user_agent=request.headers.get("user-agent"))
    log.info("admin_login", actor=session.actor, client_ip=client_ip)
    response: Response
    if as_json:
        response = JsonResponse(_session_body(session))
    else:
        next_field = fields.get("next")
        response = RedirectResponse(safe_next(next_field if isinstance(next_field, str)
                                              else None), status_code=303)
    response.set_cookie(cookie_name(settings), session.token,
                        max_age=int(lifetime.total_seconds()), path="/",
                        secure=secure, httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/logout", response_model=SignedOut,
             responses={303: _SEE_OTHER, **errors({
                 **_FORM_ERRORS, 401: "``unauthorized``: no live session",
                 403: "``csrf_failed``: the session's CSRF token is missing or wrong",
                 503: ADMIN_DISABLED})})
async def logout(request: Request) -> Response:
    """Revoke the session (its CSRF token required) and clear the cookie."""
    session = await current_session(request)
    if session is None:
        raise _unauthorized()
    await check_csrf(request, session)
    await close_session(gateway_of(request).db, session, clock=utcnow)
    log.info("admin_logout", actor=session.actor)
    settings = gateway_of(request).settings
    response: Response = (JsonResponse({"signedOut": True}) if _wants_json(request)
                          else RedirectResponse(LOGIN_PAGE, status_code=303))
    response.delete_cookie(cookie_name(settings), path="/", secure=secure_cookies(settings),
                           httponly=True, samesite="strict")
    return response


def _session_body(session: AdminSession) -> dict[str, Any]:
    expires = session.row.expires_at.isoformat().replace("+00:00", "Z")
    return {"actor": session.actor, "csrfToken": session.csrf_token, "expiresAt": expires}


@router.get("/api/admin/session", response_model=SessionInfo,
            responses=errors({401: "``unauthorized``: neither the bearer token nor a live "
                                   "session", 503: ADMIN_DISABLED}),
            openapi_extra=operation(security(ADMIN_SCHEME)))
async def session_info(admin: AdminRequired) -> JsonResponse:
    """Who is calling: ``{"actor", "via": "session", "csrfToken", "expiresAt"}`` for a
    session, ``{"actor": "admin-token", "via": "token"}`` for the bearer token."""
    if admin.session is None:
        return JsonResponse({"actor": admin.actor, "via": "token"})
    return JsonResponse({**_session_body(admin.session), "via": "session"},
                        headers={"Cache-Control": "no-store"})
