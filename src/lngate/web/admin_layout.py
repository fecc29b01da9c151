"""What every back-office page shares: its layout's context (navigation, language links that
keep the page's query, the sign-out form's CSRF token, ``fmt``) and its links.

Pages are rendered by :func:`render_admin` through :func:`~lngate.web.pages.render_page`, so they
get the same security headers (strict CSP: no inline script or style) as every page. A language
chosen with ``?lang=`` is kept by every link and form (:func:`admin_url`); without it, the
browser's ``Accept-Language`` decides, French by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import HTMLResponse

from lngate.services.admin_sessions import AdminSession
from lngate.web.admin_format import AdminFormat
from lngate.web.i18n import LANGUAGES, Translator
from lngate.web.pages import page_language, render_page

HOME = "/admin"
ORDERS = "/admin/orders"
SUBSCRIPTIONS = "/admin/subscriptions"
SIGN_IN = "/admin/login"


def chosen_language(request: Request) -> str | None:
    """The language named by ``?lang=``, when it is a known one."""
    value = (request.query_params.get("lang") or "").strip().lower()
    return value if value in LANGUAGES else None


def admin_url(path: str, language: str | None, params: Mapping[str, Any] | None = None) -> str:
    """``path`` with the non-empty ``params`` and the chosen language."""
    query = {k: str(v) for k, v in (params or {}).items() if v not in (None, "", False)}
    if language:
        query["lang"] = language
    return f"{path}?{urlencode(query)}" if query else path


def _language_links(request: Request, language: str) -> list[tuple[str, str, str]]:
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    return [(Translator(other)("lang.name"), other,
             admin_url(request.url.path, other, params))
            for other in LANGUAGES if other != language]


def render_admin(
    request: Request, template: str, *, session: AdminSession | None, active: str | None,
    status_code: int = 200, headers: Mapping[str, str] | None = None, **context: Any,
) -> HTMLResponse:
    """A back-office page in the request's language, with the layout's context."""
    language = page_language(request)
    chosen = chosen_language(request)

    def url(path: str, **params: Any) -> str:
        return admin_url(path, chosen, params)

    return render_page(
        request, template, status_code=status_code, headers=headers,
        session=session, active=active, fmt=AdminFormat(Translator(language)), url=url,
        language_links=_language_links(request, language),
        nav={"home": url(HOME), "orders": url(ORDERS), "subscriptions": url(SUBSCRIPTIONS)},
        **context,
    )
