"""The FastAPI application and its lifespan (which owns the gateway and background tasks)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lngate import __version__
from lngate.bootstrap import Gateway, build_gateway, utcnow
from lngate.heap import settle_heap, trim_heap_forever
from lngate.notify.email import prepare_to_send
from lngate.settings import Settings
from lngate.tasks import Supervisor
from lngate.web import (
    pages,
    routes_admin,
    routes_backoffice,
    routes_backoffice_pages,
    routes_checkout,
    routes_dashboard,
    routes_demo,
    routes_events,
    routes_invoices,
    routes_loadtests,
    routes_ops,
    routes_orders,
    routes_webhook,
)
from lngate.web.admission import ADMITTED_PATHS, Admission
from lngate.web.client_ip import ClientIP
from lngate.web.cors import PublicCORS
from lngate.web.errors import ApiError, database_unavailable_error
from lngate.web.hot_paths import HotPaths, hot_routes
from lngate.web.http_metrics import HttpMetricsMiddleware
from lngate.web.openapi import install_openapi
from lngate.web.ratelimit import RateLimiter
from lngate.web.responses import JsonResponse
from lngate.web.state import WebState

log = structlog.get_logger("lngate.web")
HOT_PATHS = ("/api/create-invoice", "/api/check-invoice", "/api/webhook/lnbits-payment",
             routes_events.EVENTS_PATH)
"""Served by :class:`~lngate.web.hot_paths.HotPaths`, past FastAPI's routing (the webhook too:
at 50 payments a second FastAPI's routing and exception layers were a tenth of its CPU)."""
FIRST_ROLE_TIMEOUT = 30.0
"""Seconds start-up waits for the first leadership attempt (and the probes it brings)."""


async def _prepare_email(gateway: Gateway) -> None:
    """Email's libraries and templates loaded while the first probes run (see
    :func:`~lngate.notify.email.prepare_to_send`); a failure is logged, never fatal: payments
    do not wait for email, and the outbox reports each message it cannot send."""
    try:
        if await asyncio.to_thread(prepare_to_send, gateway.email_sender,
                                   gateway.email_templates):
            log.info("email_prepared", sender=gateway.email_sender.name)
    except Exception as exc:
        log.error("email_prepare_failed", error=f"{type(exc).__name__}: {exc}")


def create_app(settings: Settings, *, migrate: bool = True, serving: bool = False) -> FastAPI:
    """Build the application; the gateway itself is built when the app starts.

    ``serving``: this process exists to serve the app (a uvicorn worker), so the garbage
    collector is settled once the app has started (:func:`~lngate.heap.settle_heap`) and the
    free heap pages are given back to the system periodically.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started_at = utcnow()
        gateway = await build_gateway(settings, migrate=migrate)
        supervisor = Supervisor()
        app.state.gateway = gateway
        # every path's refusal counter exists from the start, so a dashboard and an alert rule
        # read 0 rather than no data before the first refusal
        for path in ADMITTED_PATHS:
            gateway.monitoring.metrics.admission_refused.labels(path)
        app.state.web = WebState(
            rate_limiter=RateLimiter(
                settings.rate_limit,
                per_route={"check-invoice": settings.rate_limit_check,
                           "invoice-events": settings.rate_limit_check,
                           "webhook": settings.rate_limit_webhook,
                           "admin-login": settings.rate_limit_admin_login},
                redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
                database=gateway.db,
            ),
            client_ip=ClientIP(settings.trusted_proxies),
        )
        if not gateway.demo_mode:
            await gateway.settler.close_test_invoices(created_before=started_at)
        for name, loop in gateway.instance_loops.items():
            supervisor.start(name, loop)
        supervisor.start("leadership", gateway.leadership.run)
        email_ready = asyncio.create_task(_prepare_email(gateway))
        try:
            # the first attempt at the lead, and the probe round or stored probes it brings,
            # so readiness is known before the first request
            await asyncio.wait_for(gateway.leadership.wait_settled(), FIRST_ROLE_TIMEOUT)
        except TimeoutError:
            log.error("leadership_not_settled", timeout_s=FIRST_ROLE_TIMEOUT)
        log.info("gateway_started", providers=[p.name for p in gateway.providers],
                 network=settings.lightning_network.name.lower(), demo=gateway.demo_mode,
                 role=gateway.leadership.role, rate_limits=app.state.web.rate_limiter.storage)
        await email_ready
        if serving:
            settle_heap()
            supervisor.start("heap_trim", trim_heap_forever)
        try:
            yield
        finally:
            await supervisor.stop()
            await gateway.aclose()
            log.info("gateway_stopped")

    # FastAPI's OpenTelemetry hooks are off: lngate configures no OpenTelemetry provider, and
    # asking whether one is configured read the environment on every request (a tenth of a
    # created invoice's interpreter time)
    app = FastAPI(title="lngate", version=__version__, lifespan=lifespan,
                  default_response_class=JsonResponse,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.include_router(routes_invoices.router)
    app.include_router(routes_orders.router)
    app.include_router(routes_webhook.router)
    app.include_router(routes_events.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_backoffice.router)
    app.include_router(routes_dashboard.router)
    app.include_router(routes_backoffice_pages.router)
    app.include_router(routes_loadtests.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_checkout.router)
    app.include_router(pages.static_router)
    if settings.demo_mode:  # never mounted when a real provider is configured
        app.include_router(routes_demo.router)
    install_openapi(app)
    # innermost, so the HTTP metrics, CORS and the error handlers wrap these requests too; the
    # routes come from their own router: the app lists an included router as one entry
    app.add_middleware(HotPaths, routes=hot_routes(
        [*routes_invoices.router.routes, *routes_webhook.router.routes,
         *routes_events.router.routes], HOT_PATHS))
    app.add_middleware(HttpMetricsMiddleware)
    # Around every route that serves a create (whatever serves it), inside CORS only, so the
    # refusal carries the CORS headers a shop's page needs to read it: keep it added last
    # but one.
    app.add_middleware(Admission, limit=settings.max_creates_in_flight)
    app.add_middleware(PublicCORS, origins=settings.cors_allow_origins)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JsonResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JsonResponse:
        return ApiError(400, "Requête invalide", "invalid_request").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JsonResponse:
        message = {404: "Introuvable", 405: "Méthode non autorisée"}.get(exc.status_code,
                                                                          str(exc.detail))
        # exc.headers carries what the status requires, e.g. ``Allow`` on a 405
        return ApiError(exc.status_code, message, f"http_{exc.status_code}",
                        headers=dict(exc.headers or {})).response()

    # Database errors get a handler of their own so that a busy or lost database is answered
    # 503 without Starlette's server-error path, which re-raises to the server (a traceback
    # per request, by the hundred when a lock is held past the wait under overload).
    async def database_error(request: Request, exc: Exception) -> JsonResponse:
        unavailable = database_unavailable_error(exc)
        return unavailable.response() if unavailable is not None else \
            await unexpected(request, exc)

    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(sqlite3.Error, database_error)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JsonResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return ApiError(500, "Erreur interne", "internal_error").response()

    return app
