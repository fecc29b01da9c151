"""The busiest endpoints, dispatched without FastAPI's routing and request handling.

``POST /api/create-invoice``, ``GET /api/check-invoice`` and the payment webhook take a plain
``Request`` and answer a ready ``JsonResponse``: FastAPI adds nothing to them but its cost
(matching the path against every route, solving an empty dependency set, two layers of
exception handling), measured at about a fifth of a created invoice's CPU.
``GET /api/invoices/{payment_hash}/events`` takes the payment hash besides the request: an event
stream stays open for minutes, and what FastAPI's handling keeps alive meanwhile is memory held
per open stream. A path template may have one parameter, a whole path segment (``[^/]+``, as
Starlette's default converter).

:class:`HotPaths` sits innermost among the app's middleware, so CORS, the HTTP metrics and the
server-error handler still wrap these requests as they wrap every other; it calls the same
route functions, answers an ``ApiError`` and a database that could not serve the request for
now as the app's handlers do, and lets anything else propagate to the app's 500 handler. Every
other request, a ``HEAD`` or ``OPTIONS`` on these paths included, goes to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lngate.web.errors import ApiError, database_unavailable_error

Endpoint = Callable[..., Awaitable[Response]]
"""Called with ``request=`` and the path's parameter, if any, by name."""


class HotPaths:
    """ASGI middleware answering the routes given by ``(method, path)`` straight from their
    endpoint functions."""

    def __init__(self, app: ASGIApp, *, routes: list[APIRoute]) -> None:
        """``routes``: the app's own routes to serve directly (each with one method)."""
        self.app = app
        self._routes: dict[tuple[str, str], APIRoute] = {}
        self._templates: list[tuple[str, str, str, str, APIRoute]] = []
        """(method, prefix, parameter, suffix, route) of the paths with a parameter."""
        for route in routes:
            for method in route.methods or ():
                if method == "HEAD":
                    continue
                prefix, brace, rest = route.path.partition("{")
                if brace:
                    name, _, suffix = rest.partition("}")
                    self._templates.append((method, prefix, name, suffix, route))
                else:
                    self._routes[(method, route.path)] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        params: dict[str, str] = {}
        route = self._routes.get((scope["method"], scope["path"])) \
            or self._template_route(scope["method"], scope["path"], params)
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the template the HTTP metrics label the request with
        endpoint: Endpoint = route.endpoint
        try:
            response = await endpoint(request=Request(scope, receive, send), **params)
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:
            unavailable = database_unavailable_error(exc)
            if unavailable is None:
                raise
            response = unavailable.response()
        await response(scope, receive, send)

    def _template_route(self, method: str, path: str, params: dict[str, str]) -> APIRoute | None:
        """The route whose template matches, its parameter put in ``params``; or ``None``."""
        for route_method, prefix, name, suffix, route in self._templates:
            if (route_method == method and path.startswith(prefix) and path.endswith(suffix)
                    and len(path) > len(prefix) + len(suffix)):
                value = path[len(prefix):len(path) - len(suffix)]
                if "/" not in value:
                    params[name] = value
                    return route
        return None


def hot_routes(routes: Sequence[object], paths: tuple[str, ...]) -> list[APIRoute]:
    """The API routes of ``routes`` whose path is one of ``paths``."""
    return [route for route in routes if isinstance(route, APIRoute) and route.path in paths]
