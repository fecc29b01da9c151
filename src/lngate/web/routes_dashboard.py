"""The operator dashboard: ``GET /admin/login`` (sign-in page), ``GET /admin`` (the
dashboard) and ``GET /admin/events`` (its live sections, Server-Sent Events).

The dashboard needs a live operator session: without one, the page redirects to the sign-in
page and the stream answers 401 (JSON). What it shows, and how it stays live without any
polling in the browser, is described in ``web/dashboard_live.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from lngate.web.admin_layout import HOME, admin_url, chosen_language, render_admin
from lngate.web.admin_pages import disabled_page, page, page_session
from lngate.web.admin_format import AdminFormat
from lngate.web.admin_session import current_session, safe_next, secure_cookies
from lngate.web.dashboard_live import ALL_PARTS, DashboardData, dashboard_stream, section_context
from lngate.web.errors import ApiError
from lngate.web.i18n import Translator
from lngate.web.login_page import sign_in_page
from lngate.web.pages import page_language
from lngate.web.state import gateway_of

router = APIRouter()
EVENTS = "/admin/events"


@router.get("/admin/login", include_in_schema=False)
async def sign_in(request: Request) -> Response:
    """The sign-in form; an operator already signed in goes on to ``next``."""
    gateway = gateway_of(request)
    token = gateway.settings.admin_token
    if token is None:
        return disabled_page(request)
    next_path = request.query_params.get("next") or admin_url(HOME, chosen_language(request))
    if await current_session(request) is not None:
        return RedirectResponse(safe_next(next_path), status_code=303)
    return sign_in_page(request, admin_token=token.get_secret_value(),
                        secure=secure_cookies(gateway.settings), next_path=safe_next(next_path))


@router.get("/admin", include_in_schema=False)
@page
async def dashboard(request: Request) -> Response:
    """The dashboard, rendered whole; its script then follows ``/admin/events``."""
    session = await page_session(request)
    gateway = gateway_of(request)
    language = page_language(request)
    chosen = chosen_language(request)
    data = DashboardData()
    await data.refresh(gateway, ALL_PARTS)
    fmt = AdminFormat(Translator(language))
    return render_admin(request, "admin/dashboard.html", session=session, active="dashboard",
                        events_url=admin_url(EVENTS, chosen),
                        sign_in_url=admin_url("/admin/login", chosen, {"next": request.url.path}),
                        **section_context(data, fmt, chosen))


@router.get(EVENTS, include_in_schema=False)
async def events(request: Request) -> StreamingResponse:
    """The dashboard's sections now and whenever they change (401 without a live session)."""
    if await current_session(request) is None:
        raise ApiError(401, "Unauthorized", "unauthorized")
    stream = dashboard_stream(request, page_language(request), chosen_language(request))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
