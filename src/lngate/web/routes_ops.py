"""Operations endpoints: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz`` and the original's
``/api/lightning/health``.

- ``/healthz``: the process answers (no dependency is checked).
- ``/readyz`` and ``/api/lightning/health``: ready when the database is usable (it answers, a
  write commits, and its schema is at the migration head: :meth:`Database.check`) and at least
  one provider is healthy by its latest probe; 503 otherwise (also before the first probe).
  ``database`` is ``up``, ``down``, ``not_writable`` or ``schema``; the reason itself is
  logged, not answered (the endpoint is unauthenticated).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from lngate import __version__
from lngate.metrics import CONTENT_TYPE
from lngate.store.database import DatabaseUnusable
from lngate.web.responses import JsonResponse
from lngate.web.schemas import LightningHealth
from lngate.web.state import gateway_of

router = APIRouter()
log = structlog.get_logger("lngate.web")
DB_CHECK_TIMEOUT = 2.0


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """The gateway's metrics in the Prometheus text format."""
    monitoring = gateway_of(request).monitoring
    assert monitoring is not None
    try:
        await monitoring.refresh_gauges()
    except Exception as exc:  # the database is down: still export what is in memory
        log.warning("metrics_gauges_refresh_failed", error=type(exc).__name__)
    return Response(monitoring.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JsonResponse:
    """The process is alive."""
    return JsonResponse({"status": "ok"})


async def _readiness(request: Request) -> tuple[bool, dict[str, Any]]:
    gateway = gateway_of(request)
    monitoring = gateway.monitoring
    assert monitoring is not None
    try:
        await asyncio.wait_for(gateway.db.check(), DB_CHECK_TIMEOUT)
        database = "up"
    except DatabaseUnusable as exc:
        log.warning("readiness_database_unusable", problem=exc.kind, reason=exc.reason)
        database = exc.kind
    except TimeoutError:
        log.warning("readiness_database_unusable", problem="down",
                    reason=f"no answer within {DB_CHECK_TIMEOUT:g} s")
        database = "down"
    providers = {}
    for name in monitoring.provider_names:
        probe = monitoring.health.latest.get(name)
        providers[name] = {
            "healthy": probe.healthy if probe else None,
            "responseTime": round(probe.response_ms, 2) if probe else None,
            "lastCheck": _iso(probe.checked_at) if probe else None,
            "lastError": probe.error if probe else None,
        }
    ready = database == "up" and any(p["healthy"] for p in providers.values())
    return ready, {"database": database, "providers": providers,
                   "role": gateway.leadership.role}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JsonResponse:
    """200 when the database is usable and a provider is healthy, else 503."""
    ready, detail = await _readiness(request)
    return JsonResponse({"status": "ready" if ready else "not_ready", **detail},
                        status_code=200 if ready else 503)


@router.get("/api/lightning/health", tags=["operations"], summary="Health (the original's answer)",
            response_model=LightningHealth,
            responses={503: {"model": LightningHealth, "description": "not ready: the database "
                             "is not usable or no provider is healthy (``status: down``)"}})
async def lightning_health(request: Request) -> JsonResponse:
    """The original's health answer: ``{"status": "healthy", "timestamp", "service": {...}}``."""
    ready, detail = await _readiness(request)
    gateway = gateway_of(request)
    body = {
        "status": "healthy" if ready else "down",
        "timestamp": _iso(datetime.now(UTC)),
        "service": {"name": "lngate", "version": __version__,
                    "network": gateway.settings.lightning_network.name.lower(), **detail},
    }
    return JsonResponse(body, status_code=200 if ready else 503)
