"""CORS for the public endpoints only, so a shop front end served from another origin works.

The original answered preflights with ``Access-Control-Allow-Origin: *``; by default so does
lngate (any origin, never credentials); ``CORS_ALLOW_ORIGINS`` narrows it to a list. The admin
API, the webhook and the operations endpoints are never opened by it: they get no CORS headers,
so a browser on another origin cannot read them.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PREFIXES = ("/api/create-invoice", "/api/check-invoice", "/api/orders", "/api/invoices/",
                   "/api/catalog")
ALLOWED_HEADERS = ("Content-Type", "Idempotency-Key")
EXPOSED_HEADERS = ("Retry-After", "Idempotent-Replayed")
PREFLIGHT_MAX_AGE = 600


def is_public_path(path: str) -> bool:
    """Whether ``path`` is one of the endpoints a shop's front end calls."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in PUBLIC_PREFIXES)


class PublicCORS:
    """Starlette's CORS middleware, applied to the public endpoints and nothing else."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=list(origins), allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=list(ALLOWED_HEADERS), expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False, max_age=PREFLIGHT_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_public_path(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
