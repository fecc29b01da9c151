"""What every HTML page of the gateway shares: templates, language, security headers, static files.

A route renders a page with :func:`render_page`; the answer carries :data:`SECURITY_HEADERS`, a
strict Content-Security-Policy that allows scripts, styles and connections from this origin
only: no inline script or style, no framing. So scripts live in ``static/`` and a template only
points at them (:func:`static_url`), and pages work without JavaScript first (scripts only
enhance them).

Templates are in ``templates/`` (Jinja2, autoescaped, undefined variables are errors); each gets
``t`` (the :class:`~lngate.web.i18n.Translator` of the request's language), ``lang``, ``other_languages``
(links to switch language) and ``static_url``. Static files are served from a fixed list read at
start (``GET /static/<name>``): no path from the request ever reaches the file system.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from lngate.web.errors import ApiError
from lngate.web.i18n import LANGUAGES, Translator, negotiate_language

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file of ``static/``, read once, with a content hash for cache busting."""

    body: bytes
    media_type: str
    version: str


@functools.cache
def static_files() -> dict[str, StaticFile]:
    """The files of ``static/`` by name (top level only; licence files included)."""
    files = {}
    for path in sorted(STATIC.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            media_type = mimetypes.guess_type(path.name)[0] or "text/plain"
            if media_type.startswith("text/") or media_type.endswith(("javascript", "svg+xml")):
                media_type += "; charset=utf-8"
            files[path.name] = StaticFile(body, media_type, hashlib.sha256(body).hexdigest()[:12])
    return files


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content (so it may be cached for long)."""
    return f"/static/{name}?v={static_files()[name].version}"


@functools.cache
def environment() -> Environment:
    """The Jinja2 environment of the pages (built once: it holds no state of a request).

    Jinja2 is imported here, with the first page: a worker that serves only the API never
    loads it."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["static_url"] = static_url
    return env


def page_language(request: Request) -> str:
    """The language of the page answering ``request`` (``?lang=``, ``Accept-Language``, French)."""
    return negotiate_language(request.query_params.get("lang"),
                              request.headers.get("accept-language"))


def with_language(path: str, language: str | None) -> str:
    """``path`` keeping an explicitly chosen language (``?lang=``) across links and forms."""
    return f"{path}?{urlencode({'lang': language})}" if language else path


def render_page(
    request: Request, template: str, *, status_code: int = 200,
    headers: Mapping[str, str] | None = None, **context: Any,
) -> HTMLResponse:
    """Render ``template`` in the request's language, with the security headers."""
    language = page_language(request)
    chosen = request.query_params.get("lang")
    html = environment().get_template(template).render(
        t=Translator(language), lang=language,
        chosen_language=language if chosen and chosen.strip().lower() == language else None,
        other_languages=[(Translator(other)("lang.name"), other, with_language(
            request.url.path, other)) for other in LANGUAGES if other != language],
        **context,
    )
    return HTMLResponse(html, status_code=status_code,
                        headers={**SECURITY_HEADERS, "Vary": "Accept-Language", **(headers or {})})


def error_page(
    request: Request, status_code: int, title_key: str, text_key: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A short HTML error page (404, 429, 503...) in the request's language."""
    return render_page(request, "error.html", status_code=status_code, headers=headers,
                       title_key=title_key, text_key=text_key)


def rate_limited_page(request: Request, exc: ApiError) -> HTMLResponse:
    """The HTML form of a 429 from :func:`~lngate.web.state.enforce_rate_limit`."""
    return error_page(request, exc.status, "error.rate_limited", "error.rate_limited_text",
                      headers=exc.headers)


static_router = APIRouter()


@static_router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    """A file of ``static/`` (scripts, styles, icons, licences); 404 for anything else."""
    found = static_files().get(name)
    if found is None:
        raise ApiError(404, "Introuvable", "http_404")
    return Response(found.body, media_type=found.media_type,
                    headers={"Cache-Control": "public, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})
