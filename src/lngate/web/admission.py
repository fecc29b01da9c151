"""Admission at the door: a bound on the creates served at once, the excess refused fast.

Each create (``POST /api/create-invoice``, ``POST /api/orders``) costs about a millisecond of
CPU in this process. Offered more than the process can do, an unbounded server takes every
request in and serves them all late: the event loop's backlog grows, every create waits behind
every other, attempt timeouts fire against providers that answered at once, and customers get
their answers after they gave up. Bounding the creates in flight keeps the backlog, hence the
latency, bounded: with ``limit`` in flight and a capacity of C creates a second, a create waits
about ``limit / C`` seconds, and the requests beyond the bound are answered at once with ``503``
and ``Retry-After`` (a client or proxy then retries later, the shop's front end retries a failed
create), which costs a small fraction of a create.

:class:`Admission` wraps the whole ASGI application (inside CORS only, so a browser on the
shop's origin can read the refusal and its ``Retry-After``): whatever route serves a create,
it is counted. Other paths and methods pass through untouched. The bound is per process.

Under overload most requests are refusals, and through the ASGI stack (a request cycle, a task,
the middleware around this one, two messages) each cost 0.05-0.1 ms of CPU, a tenth of a create
or more: at twice the capacity, two refusals or more for each create served took a fifth of the
CPU from the creates (docs/benchmarks.md). The HTTP server
(:class:`lngate.web.http_server.GuardedHttpToolsProtocol`) therefore asks :func:`find_door`
for this middleware and answers the plain refusals itself, as soon as their headers are read,
with the same status, headers and body (:meth:`Admission.refuse`): those without an ``Origin``
header, which need no CORS headers. Every other request still comes here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from lngate.web.http_metrics import gateway_metrics

ADMITTED_PATHS = frozenset({"/api/create-invoice", "/api/orders"})
"""The creates that are bounded (POST only)."""
RETRY_AFTER_SECONDS = 1
OVERLOADED_MESSAGE = "Service momentanément surchargé, réessayez dans un instant"
OVERLOADED_CODE = "overloaded"


def refusal_body(retry_after: int = RETRY_AFTER_SECONDS) -> bytes:
    """The public error shape of the refusal: nothing about the gateway's inside."""
    return orjson.dumps({"error": OVERLOADED_MESSAGE, "code": OVERLOADED_CODE,
                         "retryAfter": retry_after})


class Admission:
    """Serves at most ``limit`` creates at once in this process; refuses the others with 503.

    ``limit`` 0 turns the bound off. ``in_flight`` and ``refused`` are read by tests and the
    metrics (found on the app's gateway, as for the HTTP metrics).
    """

    def __init__(self, app: ASGIApp, *, limit: int,
                 retry_after: int = RETRY_AFTER_SECONDS) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.refused = 0
        self._metrics: Any = None
        """The gateway's metrics, from the last admitted request's scope (the server's own
        refusals have no scope)."""
        self._body = refusal_body(retry_after)
        self._headers = ((b"content-type", b"application/json"),
                         (b"content-length", str(len(self._body)).encode()),
                         (b"retry-after", str(retry_after).encode()))

    @property
    def full(self) -> bool:
        """True when a create arriving now would be refused."""
        return bool(self.limit) and self.in_flight >= self.limit

    def refuse(self, path: str, metrics: Any = None) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Count a refusal of a create on ``path``; the 503's headers (a fresh list) and body.

        ``metrics``: the gateway's, when the caller has the request's scope; otherwise those
        of the last admitted request.
        """
        self.refused += 1
        metrics = metrics if metrics is not None else self._metrics
        if metrics is not None:
            metrics.admission_refused.labels(path).inc()
        return list(self._headers), self._body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.limit or scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in ADMITTED_PATHS):
            await self.app(scope, receive, send)
            return
        metrics = gateway_metrics(scope)
        if self.in_flight >= self.limit:
            headers, body = self.refuse(scope["path"], metrics)
            # The body is left unread: the server discards it and keeps the connection. Fresh
            # messages each time: the middleware outside (CORS) adds headers to the one it is
            # given, which on a shared message grew with every refusal.
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        if metrics is not None:
            self._metrics = metrics
            metrics.creates_in_flight.set(self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if metrics is not None:
                metrics.creates_in_flight.set(self.in_flight)


def find_door(app: object, depth: int = 32) -> Admission | None:
    """The :class:`Admission` among ``app``'s middleware (followed through each layer's ``app``,
    and an application's built ``middleware_stack``), or ``None``."""
    seen: set[int] = set()
    for _ in range(depth):
        if app is None or id(app) in seen:
            return None
        if isinstance(app, Admission):
            return app
        seen.add(id(app))
        app = getattr(app, "middleware_stack", None) or getattr(app, "app", None)
    return None
