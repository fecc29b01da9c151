"""The admin monitor's actions (``/api/admin/lightning-monitor``), shaped as in DESIGN.md §4.

- ``status``: ``{providers: {name: {ProviderStatus..., breaker, metrics}}, overall, bestProvider}``
- ``health`` / ``force_health_check``: a probe round now:
  ``{message: "Health check completed", results: {name: ProviderStatus}, timestamp}``
- ``metrics``: one provider's ProviderMetrics
- ``stats``: ``{overall, providers, lastUpdated}``
- ``simulate_payment``: a real create on the test provider, paid by its fake wallet and
  settled through ``settle``; the answer's figures are measured
- ``reset_metrics``: deletes the provider's recorded calls, roll-ups and probe results

ProviderStatus is ``{name, healthy, responseTime, lastError, lastCheck, uptime}`` from the
latest probe (``healthy`` is ``null`` before the first one).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lngate.domain import msat_to_sat
from lngate.providers.testprovider import TestProvider
from lngate.services.health import ProbeResult
from lngate.services.invoices import InvoiceContext, InvoiceRequest, create_invoice
from lngate.services.metrics_queries import Window, latest_probes, stats, uptimes
from lngate.services.monitoring import Monitoring
from lngate.store.monitoring import HealthCheckRow, delete_provider_metrics

SIMULATION_MEMO = "lngate admin: simulated payment"
SIMULATION_EXPIRY = 600


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def provider_status(
    name: str, probe: ProbeResult | HealthCheckRow | None, uptime: float | None
) -> dict[str, Any]:
    """ProviderStatus from the latest probe of ``name``."""
    return {
        "name": name,
        "healthy": probe.healthy if probe else None,
        "responseTime": round(probe.response_ms, 2) if probe else None,
        "lastError": probe.error if probe else None,
        "lastCheck": _iso(probe.checked_at) if probe else None,
        "uptime": uptime,
    }


async def _latest(monitoring: Monitoring) -> dict[str, ProbeResult | HealthCheckRow]:
    """This process's latest probes, else the latest stored ones (another instance's)."""
    latest: dict[str, ProbeResult | HealthCheckRow] = dict(monitoring.health.latest)
    missing = [n for n in monitoring.provider_names if n not in latest]
    if missing:
        latest.update(await latest_probes(monitoring.db, missing))
    return latest


def window_of(monitoring: Monitoring, hours: float | None = None) -> Window:
    """The metrics window: the last ``hours`` (default: the configured window) up to now."""
    return Window.last(hours or monitoring.config.window_hours, monitoring.clock())


async def status(monitoring: Monitoring, hours: float | None = None) -> dict[str, Any]:
    """Every provider's status, breaker and metrics; the overall figures; the best provider."""
    latest = await _latest(monitoring)
    healthy = {name: (p.healthy if p else None) for name, p in
               ((n, latest.get(n)) for n in monitoring.provider_names)}
    result = await stats(monitoring.db, monitoring.provider_names, window_of(monitoring, hours),
                         healthy)
    snapshot = monitoring.router.snapshot()
    providers = {}
    for name in monitoring.provider_names:
        metrics = result.providers[name]
        providers[name] = {
            **provider_status(name, latest.get(name), metrics["uptime"]),
            "breaker": snapshot[name]["breaker"]["state"],
            "metrics": metrics,
        }
    plan = monitoring.router.plan()
    best = next((p.name for p in plan.candidates if healthy.get(p.name) is not False), None)
    return {"providers": providers, "overall": result.overall, "bestProvider": best}


async def health_check(monitoring: Monitoring) -> dict[str, Any]:
    """Run a probe round now and answer each provider's status."""
    results = await monitoring.health.run_once()
    uptime = await uptimes(monitoring.db, window_of(monitoring))
    return {
        "message": "Health check completed",
        "results": {r.provider: provider_status(r.provider, r, uptime.get(r.provider))
                    for r in results},
        "timestamp": _iso(monitoring.clock()),
    }


async def metrics(monitoring: Monitoring, provider: str,
                  hours: float | None = None) -> dict[str, Any]:
    """ProviderMetrics of one provider."""
    result = await stats(monitoring.db, [provider], window_of(monitoring, hours),
                         monitoring.healthy())
    return result.providers[provider]


async def statistics(monitoring: Monitoring, hours: float | None = None) -> dict[str, Any]:
    """``{overall, providers, lastUpdated}``."""
    latest = await _latest(monitoring)
    healthy = {n: (latest[n].healthy if n in latest else None) for n in monitoring.provider_names}
    result = await stats(monitoring.db, monitoring.provider_names, window_of(monitoring, hours),
                         healthy)
    return result.body()


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
        """The original's answer: message, invoiceId, provider, amount, duration, success."""
        return {
            "message": ("Payment simulation completed" if self.success
                        else f"Payment simulation failed: {self.settlement}"),
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
    test_provider.mark_paid(record.payment_hash)
    outcome = await settle(record.payment_hash)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    return Simulation(record.payment_hash, record.provider, msat_to_sat(record.amount_msat),
                      duration_ms, str(getattr(outcome, "value", outcome)))
