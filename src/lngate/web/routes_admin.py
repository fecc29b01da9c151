"""``/api/admin/lightning-monitor``: the admin monitor, bearer-token only.

Every answer, success or error, has the original system's shape (docs/monitoring.md gives them
row by row); errors carry a ``code`` beside ``error``. With no ``ADMIN_TOKEN`` configured it
answers 503 (never open); a missing or wrong token gets 401. The token is compared in constant
time.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

from fastapi import APIRouter, Request

from lngate.errors import NoProviderAvailable
from lngate.services import admin
from lngate.services.monitoring import Monitoring
from lngate.web.body import read_json
from lngate.web.errors import ApiError
from lngate.web.openapi import (
    ADMIN_DISABLED,
    ADMIN_SCHEME,
    ADMIN_UNAUTHORIZED,
    BAD_JSON,
    NOT_JSON,
    PAYLOAD_TOO_LARGE,
    errors,
    json_body,
    operation,
    query,
    security,
)
from lngate.web.responses import JsonResponse
from lngate.web.schemas import MonitorActionAnswer, MonitorActionRequest, MonitorAnswer
from lngate.web.state import gateway_of

router = APIRouter()
PATH = "/api/admin/lightning-monitor"
GET_ACTIONS = ("status", "health", "metrics", "stats")
POST_ACTIONS = ("simulate_payment", "force_health_check", "reset_metrics")
DEFAULT_ACTION = "status"
NO_METRICS = "No metrics found for provider"
MAX_WINDOW_HOURS = 24 * 3650


def require_admin(request: Request) -> None:
    """Refuse unless ``Authorization: Bearer <ADMIN_TOKEN>`` is present and right."""
    token = gateway_of(request).settings.admin_token
    if token is None:
        raise ApiError(503, "Admin API disabled: ADMIN_TOKEN is not configured on this gateway",
                       "admin_disabled")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "Unauthorized", "unauthorized",
                       headers={"WWW-Authenticate": 'Bearer realm="lngate-admin"'})


def _monitoring(request: Request) -> Monitoring:
    monitoring = gateway_of(request).monitoring
    assert monitoring is not None
    return monitoring


def _provider_name(value: Any) -> str | None:
    """The ``provider`` parameter: ``None`` when absent or empty (as the original's
    ``if (!provider)``); a clear 400 when it is not a name at all."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, "provider must be a provider name (a string)", "invalid_provider")
    return value


def _unknown_provider(monitoring: Monitoring, message: str, code: str) -> ApiError:
    return ApiError(404, message, code, availableProviders=monitoring.provider_names)


def _hours(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= MAX_WINDOW_HOURS:
        raise ApiError(400, f"hours must be a number of hours in (0, {MAX_WINDOW_HOURS}]",
                       "invalid_window")
    return hours


def _invalid_action(available: tuple[str, ...]) -> ApiError:
    return ApiError(400, "Invalid action", "unknown_action", availableActions=list(available))


@router.get(
    PATH, tags=["admin"], summary="Admin monitor: status, health, metrics, stats",
    response_model=MonitorAnswer,
    openapi_extra=operation(
        security(ADMIN_SCHEME),
        query("action", {"type": "string", "enum": list(GET_ACTIONS), "default": DEFAULT_ACTION},
              "What to answer (any other value: 400 ``unknown_action``)."),
        query("provider", {"type": "string"}, "A provider's name (empty: none)."),
        query("hours", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WINDOW_HOURS},
              "The metrics window, in hours (default ``METRICS_WINDOW_HOURS``)."),
    ),
    responses=errors({
        400: "``unknown_action`` (with ``availableActions``), ``provider_required`` (metrics "
             "without ``provider``), ``invalid_window`` (``hours`` not in range)",
        401: ADMIN_UNAUTHORIZED,
        404: "``unknown_provider`` (with ``availableProviders``), ``no_metrics``: no invoice "
             "through the provider in the window",
        503: ADMIN_DISABLED,
    }),
)
async def monitor_get(request: Request) -> JsonResponse:
    """``?action=status|health|metrics|stats[&provider=][&hours=]`` (``action`` defaults to
    ``status``)."""
    require_admin(request)
    monitoring = _monitoring(request)
    action = request.query_params.get("action") or DEFAULT_ACTION
    provider = _provider_name(request.query_params.get("provider"))
    hours = _hours(request.query_params.get("hours"))
    if action == "status":
        if provider is None:
            return JsonResponse(await admin.status(monitoring, hours))
        if provider not in monitoring.provider_names:
            raise _unknown_provider(monitoring, "Provider not found", "unknown_provider")
        return JsonResponse(await admin.provider_status_of(monitoring, provider, hours))
    if action == "health":
        return JsonResponse(await admin.health_check(monitoring))
    if action == "metrics":
        return JsonResponse(await _metrics(monitoring, provider, hours))
    if action == "stats":
        return JsonResponse(await admin.statistics(monitoring, hours))
    raise _invalid_action(GET_ACTIONS)


async def _metrics(monitoring: Monitoring, provider: str | None,
                   hours: float | None) -> dict[str, Any]:
    if provider is None:
        raise ApiError(400, "Provider parameter required for metrics", "provider_required",
                       availableProviders=monitoring.provider_names)
    if provider not in monitoring.provider_names:
        raise _unknown_provider(monitoring, NO_METRICS, "unknown_provider")
    found = await admin.metrics(monitoring, provider, hours)
    if found is None:
        raise ApiError(404, NO_METRICS, "no_metrics")
    return {"provider": provider, "metrics": found}


@router.post(
    PATH, tags=["admin"], summary="Admin monitor: simulate a payment, probe, reset metrics",
    response_model=MonitorActionAnswer,
    openapi_extra=operation(security(ADMIN_SCHEME), json_body(MonitorActionRequest)),
    responses=errors({
        400: "``unknown_action`` (with ``availableActions``), ``provider_required``, "
             "``invalid_provider``, ``provider_and_amount_required``, ``simulation_provider`` "
             "(not the test provider), ``invalid_amount``; " + BAD_JSON,
        401: ADMIN_UNAUTHORIZED,
        404: "``unknown_provider`` (with ``availableProviders``)",
        413: PAYLOAD_TOO_LARGE,
        415: NOT_JSON,
        503: ADMIN_DISABLED + "; the test provider could not issue the simulated invoice",
    }),
)
async def monitor_post(request: Request) -> JsonResponse:
    """``{"action": "simulate_payment"|"force_health_check"|"reset_metrics", "provider",
    "data": {"amount"}}``."""
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'The body must be a JSON object like {"action": "..."}',
                       "invalid_body")
    monitoring = _monitoring(request)
    action = body.get("action")
    if action == "force_health_check":
        return JsonResponse(await admin.health_check(monitoring, forced=True))
    if action == "reset_metrics":
        provider = _provider_name(body.get("provider"))
        if provider is None:
            raise ApiError(400, "Provider parameter required", "provider_required",
                           availableProviders=monitoring.provider_names)
        if provider not in monitoring.provider_names:
            raise _unknown_provider(monitoring, "Provider not found", "unknown_provider")
        return JsonResponse(await admin.reset_metrics(monitoring, provider))
    if action == "simulate_payment":
        return JsonResponse(await _simulate(request, body))
    raise _invalid_action(POST_ACTIONS)


async def _simulate(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Simulate a payment on the gateway's private test provider, through the real create and
    settle paths. Only the test provider's name is accepted: a real provider would need a real
    payment."""
    gateway = gateway_of(request)
    data = body.get("data")
    amount = data.get("amount") if isinstance(data, dict) else None
    if not body.get("provider") or not amount:
        raise ApiError(400, "Provider and amount required", "provider_and_amount_required")
    test = gateway.test_provider
    provider = body["provider"]
    if provider != test.name:
        shown = provider[:64] if isinstance(provider, str) else type(provider).__name__
        raise ApiError(400, f"simulate_payment runs on the test provider ({test.name!r}) only, "
                       f"not {shown!r}: a real provider would need a real payment",
                       "simulation_provider", availableProviders=[test.name])
    maximum = gateway.settings.max_invoice_sats
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= maximum:
        raise ApiError(400, f"data.amount must be a whole number of sats from 1 to {maximum:,}",
                       "invalid_amount")

    async def settle_it(payment_hash: str) -> Any:
        return await gateway.settler.settle(payment_hash, source="admin_simulation")

    try:
        simulation = await admin.simulate_payment(
            amount, invoices=gateway.simulation_invoices, test_provider=test, settle=settle_it)
    except NoProviderAvailable as exc:
        raise ApiError(503, "The test provider could not issue an invoice", exc.code,
                       providers=exc.reasons) from None
    return simulation.body()
