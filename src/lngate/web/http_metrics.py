"""ASGI middleware counting and timing every HTTP request for Prometheus, by route template."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMetricsMiddleware:
    """Records ``(route, method, status, seconds)`` in the gateway's metrics after each request.

    The route label is the matched route's template (``/api/check-invoice``), or ``unmatched``,
    so a scan of random paths cannot grow the label set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            metrics = gateway_metrics(scope)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                metrics.observe_http(route, scope["method"], status,
                                     time.perf_counter() - started)


def gateway_metrics(scope: Scope) -> Any:
    """The running gateway's metrics, or ``None`` before it started (or in a bare app)."""
    gateway = getattr(getattr(scope.get("app"), "state", None), "gateway", None)
    monitoring = getattr(gateway, "monitoring", None)
    return getattr(monitoring, "metrics", None)
