"""The admin monitor's actions (``/api/admin/lightning-monitor``), in the original's shapes.

Types (field names as the original system's, durations in ms, times ISO-8601):

- ProviderStatus ``{name, healthy, responseTime, lastError, lastCheck, uptime?}`` from the
  provider's latest probe; ``uptime`` (healthy probes / probes in the window, %) is left out
  when the window holds no probe. ``status`` and ``stats`` add the breaker's state
  (``breaker``) beside these fields.
- ProviderMetrics (or ``None``) and OverallStats: see :mod:`lngate.services.metrics_queries`.

Answers:

- ``status``: ``{providers: {name: {ProviderStatus..., metrics}}, overall, bestProvider}``;
  for one provider ``{provider, status, metrics}``
- ``health`` / ``force_health_check``: a probe round now:
  ``{message, results: [ProviderStatus, ...], timestamp}``
- ``metrics``: ``{provider, metrics}``
- ``stats``: ``{overall, providers: {name: {status, metrics}}, lastUpdated}``
- ``simulate_payment``: a real create on the test provider, paid by its fake wallet and
  settled through ``settle``; the answer's figures are measured
- ``reset_metrics``: deletes the provider's recorded calls, roll-ups and probe results
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lngate.domain import msat_to_sat
from lngate.providers.testprovider import TestProvider
from lngate.services.health import ProbeResult
from lngate.services.invoices import InvoiceContext, InvoiceRequest, create_invoice
from lngate.services.metrics_queries import (
    Stats,
    Window,
    latest_probes,
    provider_metrics,
    stats,
    uptimes,
)
from lngate.services.monitoring import Monitoring
from lngate.store.monitoring import HealthCheckRow, delete_provider_metrics

SIMULATION_MEMO = "lngate admin: simulated payment"
SIMULATION_EXPIRY = 600
HEALTH_CHECKED = "Health check completed"
FORCED_HEALTH_CHECKED = "Forced health check completed"
SIMULATION_DONE = "Payment simulation completed"

Probe = ProbeResult | HealthCheckRow


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def provider_status(name: str, probe: Probe, uptime: float | None) -> dict[str, Any]:
    """ProviderStatus from the latest probe of ``name``; ``uptime`` only when known."""
    status: dict[str, Any] = {
        "name": name,
        "healthy": bool(probe.healthy),
        "responseTime": round(probe.response_ms, 2),
        "lastError": probe.error,
        "lastCheck": _iso(probe.checked_at),
    }
    if uptime is not None:
        status["uptime"] = uptime
    return status


async def _latest(monitoring: Monitoring) -> dict[str, Probe]:
    """Every provider's latest probe: this process's, else the latest stored one (another
    instance's, or the server's for the CLI), else one probed now, so that every
    ProviderStatus has a verdict and a ``lastCheck``."""
    latest: dict[str, Probe] = dict(monitoring.health.latest)
    missing = [n for n in monitoring.provider_names if n not in latest]
    if missing:
        latest.update(await latest_probes(monitoring.db, missing))
    if any(n not in latest for n in monitoring.provider_names):
        latest.update({r.provider: r for r in await monitoring.health.run_once()})
    return latest


def window_of(monitoring: Monitoring, hours: float | None = None) -> Window:
    """The metrics window: the last ``hours`` (default: the configured window) up to now."""
    return Window.last(hours or monitoring.config.window_hours, monitoring.clock())


@dataclass(frozen=True, slots=True)
class Overview:
    """Every provider's status and metrics, and the overall figures, at one moment."""

    statuses: dict[str, dict[str, Any]]
    stats: Stats

    def metrics(self, name: str) -> dict[str, Any] | None:
        """ProviderMetrics of ``name``, or ``None`` without invoices in the window."""
        return self.stats.providers[name]


async def overview(monitoring: Monitoring, hours: float | None = None) -> Overview:
    """Statuses (with each breaker's state), metrics and overall figures of every provider."""
    latest = await _latest(monitoring)
    healthy: dict[str, bool | None] = {n: latest[n].healthy for n in monitoring.provider_names}
    result = await stats(monitoring.db, monitoring.provider_names, window_of(monitoring, hours),
                         healthy)
    snapshot = monitoring.router.snapshot()
    statuses = {
        name: {**provider_status(name, latest[name], result.uptimes[name]),
               "breaker": snapshot[name]["breaker"]["state"]}
        for name in monitoring.provider_names
    }
    return Overview(statuses, result)


def _best(monitoring: Monitoring, statuses: dict[str, dict[str, Any]]) -> str | None:
    """The provider the router would try first, among those whose latest probe is healthy."""
    plan = monitoring.router.plan()
    return next((p.name for p in plan.candidates if statuses[p.name]["healthy"]), None)


async def status(monitoring: Monitoring, hours: float | None = None) -> dict[str, Any]:
    """``{providers: {name: {...ProviderStatus, metrics}}, overall, bestProvider}``."""
    seen = await overview(monitoring, hours)
    providers = {name: {**s, "metrics": seen.metrics(name)} for name, s in seen.statuses.items()}
    return {"providers": providers, "overall": seen.stats.overall,
            "bestProvider": _best(monitoring, seen.statuses)}


async def provider_status_of(monitoring: Monitoring, provider: str,
                             hours: float | None = None) -> dict[str, Any]:
    """``{provider, status: ProviderStatus, metrics}`` of one configured provider."""
    seen = await overview(monitoring, hours)
    return {"provider": provider, "status": seen.statuses[provider],
            "metrics": seen.metrics(provider)}


async def health_check(monitoring: Monitoring, *, forced: bool = False) -> dict[str, Any]:
    """Run a probe round now: ``{message, results: [ProviderStatus, ...], timestamp}``."""
    results: Sequence[ProbeResult] = await monitoring.health.run_once()
    uptime = await uptimes(monitoring.db, window_of(monitoring))
    return {
        "message": FORCED_HEALTH_CHECKED if forced else HEALTH_CHECKED,
        "results": [provider_status(r.provider, r, uptime.get(r.provider)) for r in results],
        "timestamp": _iso(monitoring.clock()),
    }


async def metrics(monitoring: Monitoring, provider: str,
                  hours: float | None = None) -> dict[str, Any] | None:
    """ProviderMetrics of one provider, or ``None`` without invoices in the window."""
    found = await provider_metrics(monitoring.db, [provider], window_of(monitoring, hours))
    return found[provider]


async def statistics(monitoring: Monitoring, hours: float | None = None) -> dict[str, Any]:
    """``{overall, providers: {name: {status, metrics}}, lastUpdated}``."""
    seen = await overview(monitoring, hours)
    return {
        "overall": seen.stats.overall,
        "providers": {name: {"status": s, "metrics": seen.metrics(name)}
                      for name, s in seen.statuses.items()},
        "lastUpdated": _iso(seen.stats.last_updated),
    }


async def reset_metrics(monitoring: Monitoring, provider: str) -> dict[str, Any]:
    """Delete ``provider``'s recorded calls, roll-ups and probe results."""
    async with monitoring.db.transaction() as conn:
        deleted = await delete_provider_metrics(conn, provider)
    monitoring.health.latest.pop(provider, None)
    return {"message": f"Metrics reset for {provider}", "provider": provider,
            "deleted": deleted, "timestamp": _iso(monitoring.clock())}


@dataclass(frozen=True, slots=True)
class Simulation:
    """What a simulated payment did, measured."""

    invoice_id: str
    provider: str
    amount_sat: int
    duration_ms: float
    settlement: str

    @property
    def success(self) -> bool:
        """Whether the invoice ended settled."""
        return self.settlement == "settled"

    def body(self) -> dict[str, Any]:
        """The original's answer (message, invoiceId, provider, amount, duration, success),
        plus what the settlement did."""
        return {
            "message": SIMULATION_DONE,
            "invoiceId": self.invoice_id,
            "provider": self.provider,
            "amount": self.amount_sat,
            "duration": self.duration_ms,
            "success": self.success,
            "settlement": self.settlement,
        }


async def simulate_payment(
    amount_sat: int,
    *,
    invoices: InvoiceContext,
    test_provider: TestProvider,
    settle: Callable[[str], Awaitable[Any]],
) -> Simulation:
    """Create an invoice on the test provider (``invoices`` routes to it alone), pay it with the
    test wallet and settle it through ``settle``; the duration covers all three steps."""
    started = time.perf_counter()
    issued = await create_invoice(
        InvoiceRequest(amount_sat=amount_sat, description=SIMULATION_MEMO,
                       expiry=SIMULATION_EXPIRY), invoices)
    record = issued.invoice
    await test_provider.mark_paid(record.payment_hash)
    outcome = await settle(record.payment_hash)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    return Simulation(record.payment_hash, record.provider, msat_to_sat(record.amount_msat),
                      duration_ms, str(getattr(outcome, "value", outcome)))
