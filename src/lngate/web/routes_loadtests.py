"""``/api/admin/loadtests``: the history of ``lngate loadtest`` runs (admin only, bearer token).

``POST`` records one run's summary (what the load tester prints as its JSON report) and answers
201 ``{"id", "recordedAt"}``; ``GET [?limit=]`` lists the most recent runs, newest first:
``{"runs": [...], "demo": bool}``. ``POST /api/admin/loadtests/demo-payments/{hash}`` pays a
test-provider invoice at the demo wallet *without* ringing settlement, which is what a payment
whose webhook has not arrived yet looks like: the load tester's ``webhook`` scenario then
delivers that webhook. It exists in pure demo mode only (404 otherwise).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from lngate.bootstrap import utcnow
from lngate.domain import is_payment_hash
from lngate.services.loadtests import loadtest_history, record_loadtest
from lngate.store.loadtests import LoadTestRun, StoredRun
from lngate.web.body import read_json
from lngate.web.dashboard_live import Topic, signals_of
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
from lngate.web.routes_admin import require_admin
from lngate.web.schemas import (
    LoadTestRecorded,
    LoadTestReport,
    LoadTestRuns,
    UnsettledDemoPayment,
)
from lngate.web.state import gateway_of

router = APIRouter()
PATH = "/api/admin/loadtests"
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
_SCENARIO = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_loadtest")


def _number(container: dict[str, Any], name: str, *, positive: bool = False) -> float:
    value = container.get(name)
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        raise _invalid(f"{name} must be " + ("a positive number" if positive
                                             else "a number, 0 or more"))
    return float(value)


def _latency(overall: dict[str, Any], name: str) -> float | None:
    """A percentile of the report: ``None`` when no request succeeded."""
    return None if overall.get(name) is None else _number(overall, name)


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{name} must be a whole number, 0 or more")
    return value


def parse_run(body: Any) -> LoadTestRun:
    """The run described by a load tester's JSON report; a 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise _invalid("the body must be the load tester's JSON report (an object)")
    scenario = body.get("scenario")
    if not isinstance(scenario, str) or not _SCENARIO.fullmatch(scenario):
        raise _invalid("scenario must be a scenario name like create-invoice")
    started = body.get("started_at")
    try:
        started_at = datetime.fromisoformat(started) if isinstance(started, str) else None
    except ValueError:
        started_at = None
    if started_at is None or started_at.tzinfo is None:
        raise _invalid("started_at must be an ISO-8601 time with its zone")
    requests, errors = _count(body, "requests"), _count(body, "errors")
    if errors > requests:
        raise _invalid("errors cannot exceed requests")
    passed = body.get("passed")
    if not isinstance(passed, bool):
        raise _invalid("passed must be true or false")
    latency = body.get("latency_ms")
    overall = latency.get("overall") if isinstance(latency, dict) else None
    if not isinstance(overall, dict):
        raise _invalid("latency_ms.overall must be an object with p50 and p99")
    return LoadTestRun(
        started_at=started_at, scenario=scenario, rate=_number(body, "rate", positive=True),
        duration_s=_number(body, "duration_s", positive=True), requests=requests,
        errors=errors, p50_ms=_latency(overall, "p50"), p99_ms=_latency(overall, "p99"),
        passed=passed, summary=body,
    )


def run_body(stored: StoredRun) -> dict[str, Any]:
    """The JSON of a recorded run."""
    run = stored.run
    return {"id": stored.id, "recordedAt": _iso(stored.recorded_at),
            "startedAt": _iso(run.started_at), "scenario": run.scenario, "rate": run.rate,
            "durationSeconds": run.duration_s, "requests": run.requests, "errors": run.errors,
            "p50Ms": run.p50_ms, "p99Ms": run.p99_ms, "passed": run.passed,
            "summary": run.summary}


_ADMIN_ERRORS = {401: ADMIN_UNAUTHORIZED, 503: ADMIN_DISABLED}


@router.post(
    PATH, status_code=201, tags=["admin"], summary="Record a load test run",
    response_model=LoadTestRecorded,
    openapi_extra=operation(security(ADMIN_SCHEME), json_body(LoadTestReport)),
    responses=errors({400: f"``invalid_loadtest``: a field of the report is missing or wrong; "
                           f"{BAD_JSON}", 413: PAYLOAD_TOO_LARGE, 415: NOT_JSON,
                      **_ADMIN_ERRORS}),
)
async def record_run(request: Request) -> JsonResponse:
    """Record one load test run (the load tester's JSON report)."""
    require_admin(request)
    run = parse_run(await read_json(request))
    stored = await record_loadtest(gateway_of(request).db, run, clock=utcnow)
    signals_of(request).notify(Topic.LOADTEST)  # open dashboards on this instance show it now
    return JsonResponse({"id": stored.id, "recordedAt": _iso(stored.recorded_at)},
                        status_code=201)


@router.get(
    PATH, tags=["admin"], summary="Load test history", response_model=LoadTestRuns,
    openapi_extra=operation(
        security(ADMIN_SCHEME),
        query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT}, "How many runs, newest first.")),
    responses=errors({400: "``invalid_limit``", **_ADMIN_ERRORS}),
)
async def list_runs(request: Request) -> JsonResponse:
    """The most recent runs, newest first (``limit``: 1..200, default 20)."""
    require_admin(request)
    raw = request.query_params.get("limit") or str(DEFAULT_LIMIT)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}",
                       "invalid_limit")
    gateway = gateway_of(request)
    runs = await loadtest_history(gateway.db, limit=int(raw))
    return JsonResponse({"runs": [run_body(r) for r in runs], "demo": gateway.demo_mode})


@router.post(
    PATH + "/demo-payments/{payment_hash}", tags=["admin"],
    summary="Pay a test invoice without settling it (demo mode only)",
    response_model=UnsettledDemoPayment, openapi_extra=operation(security(ADMIN_SCHEME)),
    responses=errors({404: "``http_404`` (not in demo mode), ``not_found`` (no such test "
                           "invoice)", **_ADMIN_ERRORS}),
)
async def pay_without_doorbell(payment_hash: str, request: Request) -> JsonResponse:
    """Pay a test-provider invoice at the demo wallet without settling it (demo mode only):
    its settlement waits for a doorbell, such as the webhook the load tester then sends."""
    require_admin(request)
    gateway = gateway_of(request)
    if not gateway.demo_mode:
        raise ApiError(404, "Introuvable", "http_404")
    payment_hash = payment_hash.lower()
    if not is_payment_hash(payment_hash) or not await gateway.test_provider.mark_paid(payment_hash):
        raise ApiError(404, "Facture de test non trouvée", "not_found")
    return JsonResponse({"paid": True, "payment_hash": payment_hash})
