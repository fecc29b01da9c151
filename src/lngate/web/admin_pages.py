"""Who may see a back-office page, and how its forms are checked.

- :func:`page_session`: the request's live operator session; otherwise a 303 to the sign-in
  page (with ``next`` = this page), or the 503 page when no ``ADMIN_TOKEN`` is configured.
- :func:`form_of`: a page form's fields, once its CSRF token is checked; a refusal is an HTML
  error page (403 for a missing or wrong token), never JSON.

Both raise :class:`PageRefused`; a route decorated with :func:`page` answers its response.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from lngate.services.admin_sessions import AdminSession
from lngate.web.admin_layout import SIGN_IN, admin_url, chosen_language
from lngate.web.admin_session import check_csrf, current_session, read_form
from lngate.web.errors import ApiError
from lngate.web.pages import error_page


class PageRefused(Exception):
    """A page request that gets ``response`` instead (a redirect or an error page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


P = ParamSpec("P")


def page(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer a :class:`PageRefused` raised by ``handler`` with its response."""

    @functools.wraps(handler)
    async def answered(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except PageRefused as refused:
            return refused.response

    return answered


def disabled_page(request: Request) -> Response:
    """The page answered when the back office is off (no ``ADMIN_TOKEN``)."""
    return error_page(request, 503, "admin.disabled", "admin.disabled_text")


async def page_session(request: Request) -> AdminSession:
    """The live session of a page request; raises :class:`PageRefused` with a redirect to the
    sign-in page (coming back here afterwards) or the 503 page."""
    try:
        session = await current_session(request)
    except ApiError as exc:
        if exc.status == 503:
            raise PageRefused(disabled_page(request)) from None
        raise
    if session is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # come back to the page the form was on
            here = request.url.path.rsplit("/", 1)[0]
        target = admin_url(SIGN_IN, chosen_language(request), {"next": here})
        raise PageRefused(RedirectResponse(target, status_code=303,
                                           headers={"Cache-Control": "no-store"}))
    return session


async def form_of(request: Request, session: AdminSession) -> dict[str, str]:
    """The form's fields (without ``csrf_token``) once its CSRF token is checked; raises
    :class:`PageRefused` with a 403 page (wrong or missing token) or 400/413/415 page."""
    try:
        await check_csrf(request, session)
        form = await read_form(request)
    except ApiError as exc:
        if exc.code == "csrf_failed":
            raise PageRefused(error_page(request, 403, "admin.forbidden",
                                         "admin.forbidden_text")) from None
        raise PageRefused(error_page(request, exc.status, "admin.bad_form",
                                     "admin.bad_form_text")) from None
    form.pop("csrf_token", None)
    return form
