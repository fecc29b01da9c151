"""Starting the monitoring loops (probes, alert delivery, roll-ups, retention) in the lifespan."""

from __future__ import annotations

import structlog

from lngate.services.monitoring import Monitoring
from lngate.tasks.supervisor import Supervisor

log = structlog.get_logger("lngate.tasks")


async def start_monitoring_tasks(supervisor: Supervisor, monitoring: Monitoring | None) -> None:
    """Probe every provider once now (so readiness is known at start-up, within the probe
    timeout), then start the supervised loops."""
    if monitoring is None:
        return
    try:
        await monitoring.health.run_once()
    except Exception:  # the loop will try again; start-up must not fail on a probe
        log.exception("first_probe_round_failed")
    supervisor.start("health-probes", monitoring.probe_loop)
    supervisor.start("alert-delivery", monitoring.alert_loop)
    supervisor.start("metrics-rollup", monitoring.rollup_loop)
    supervisor.start("metrics-retention", monitoring.retention_loop)
