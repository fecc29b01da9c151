"""The busiest endpoints, dispatched without FastAPI's routing and request handling.

``POST /api/create-invoice``, ``GET /api/check-invoice`` and the payment webhook take a plain
``Request`` and answer a ready ``JsonResponse``: FastAPI adds nothing to them but its cost
(matching the path against every route, solving an empty dependency set, two layers of
exception handling), measured at about a fifth of a created invoice's CPU. :class:`HotPaths` sits innermost among the app's
middleware, so CORS, the HTTP metrics and the server-error handler still wrap these requests as
they wrap every other; it calls the same route functions, answers an ``ApiError`` as the app's
handler does, and lets anything else propagate to the app's 500 handler. Every other request,
a ``HEAD`` or ``OPTIONS`` on these paths included, goes to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lngate.web.errors import ApiError

Endpoint = Callable[[Request], Awaitable[Response]]


class HotPaths:
    """ASGI middleware answering the routes given by ``(method, path)`` straight from their
    endpoint functions."""

    def __init__(self, app: ASGIApp, *, routes: list[APIRoute]) -> None:
        """``routes``: the app's own routes to serve directly (each with one method)."""
        self.app = app
        self._routes: dict[tuple[str, str], APIRoute] = {}
        for route in routes:
            for method in route.methods or ():
                if method != "HEAD":
                    self._routes[(method, route.path)] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get((scope["method"], scope["path"])) \
            if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the template the HTTP metrics label the request with
        endpoint: Endpoint = route.endpoint
        try:
            response = await endpoint(Request(scope, receive, send))
        except ApiError as exc:
            response = exc.response()
        await response(scope, receive, send)


def hot_routes(routes: Sequence[object], paths: tuple[str, ...]) -> list[APIRoute]:
    """The API routes of ``routes`` whose path is one of ``paths``."""
    return [route for route in routes if isinstance(route, APIRoute) and route.path in paths]
