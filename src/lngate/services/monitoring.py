"""Monitoring wired together: probes, alert rules and their delivery, Prometheus, maintenance.

:class:`Monitoring` is built once by bootstrap. Its loops (``probe_loop``, ``alert_loop``,
``rollup_loop``, ``retention_loop``) are started by the web lifespan under the supervisor; the CLI
uses the one-shot methods.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
import structlog

from lngate.metrics import GatewayMetrics
from lngate.notify.alerts import AlertChannel, AlertDeliveryError, AlertMessage
from lngate.providers.base import Provider
from lngate.resilience.router import AttemptRecord, Outcome, Router
from lngate.services.alerts import AlertEngine, AlertEvent, AlertThresholds
from lngate.services.clock import WallClock
from lngate.services.health import HealthMonitor, ProbeResult
from lngate.services.metrics_queries import delete_older_than, refresh_rollups
from lngate.store import Database
from lngate.store.monitoring import (
    insert_alert,
    outbox_backlog,
    set_alert_deliveries,
    settled_by_provider,
)

log = structlog.get_logger("lngate.monitoring")


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    """Plain values from the settings."""

    probe_interval: float = 30.0
    probe_timeout: float = 1.0
    retention_days: int = 30
    window_hours: float = 24.0
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    rollup_interval: float = 60.0
    retention_interval: float = 3600.0
    gauge_refresh_seconds: float = 10.0
    channel_timeout: float = 10.0


class AlertDispatcher:
    """Stores each alert in ``alert_history`` and sends it to every channel, concurrently.

    Rules emit synchronously (from a router hook or a probe); :meth:`submit` only queues, and
    :meth:`run` delivers, so a slow channel never delays a provider call. A channel's failure
    is logged and recorded in the alert's ``deliveries``; alerts are not retried.
    """

    def __init__(self, db: Database, channels: Sequence[AlertChannel], *,
                 timeout: float = 10.0, max_queue: int = 1000) -> None:
        self._db = db
        self.channels = list(channels)
        self._timeout = timeout
        self._queue: asyncio.Queue[AlertEvent] = asyncio.Queue(max_queue)
        self.delivered = 0

    def submit(self, event: AlertEvent) -> None:
        """Queue an alert for storage and delivery (never blocks)."""
        log.warning("alert", rule=event.rule.value, provider=event.provider, kind=event.kind.value,
                    message=event.message)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.error("alert_dropped", rule=event.rule.value, provider=event.provider,
                      reason="alert queue full")

    @property
    def pending(self) -> int:
        """Alerts queued, not yet delivered."""
        return self._queue.qsize()

    async def deliver(self, event: AlertEvent) -> dict[str, str]:
        """Store ``event`` and send it on every channel; each channel's outcome."""
        alert_id = None
        try:
            async with self._db.transaction() as conn:
                alert_id = await insert_alert(
                    conn, rule=event.rule.value, provider=event.provider, kind=event.kind.value,
                    message=event.message, created_at=event.at, details=event.details)
        except Exception as exc:  # still deliver: the operator must hear of it
            log.error("alert_store_failed", error=type(exc).__name__)
        message = AlertMessage(event.title, _text(event))
        outcomes = await asyncio.gather(*(self._send(c, message) for c in self.channels))
        deliveries = {c.name: outcome for c, outcome in zip(self.channels, outcomes, strict=True)}
        if alert_id is not None and deliveries:
            try:
                async with self._db.transaction() as conn:
                    await set_alert_deliveries(conn, alert_id, deliveries)
            except Exception as exc:
                log.error("alert_store_failed", error=type(exc).__name__)
        self.delivered += 1
        return deliveries

    async def _send(self, channel: AlertChannel, message: AlertMessage) -> str:
        try:
            await asyncio.wait_for(channel.send(message), self._timeout)
        except (AlertDeliveryError, TimeoutError) as exc:
            log.error("alert_delivery_failed", channel=channel.name, error=str(exc) or "timeout")
            return str(exc) or f"no answer within {self._timeout:g} s"
        return "ok"

    async def run(self) -> None:
        """Deliver queued alerts, for ever."""
        while True:
            event = await self._queue.get()
            await self.deliver(event)

    async def drain(self) -> int:
        """Deliver everything queued now (CLI and tests); how many were delivered."""
        count = 0
        while not self._queue.empty():
            await self.deliver(self._queue.get_nowait())
            count += 1
        return count


def _text(event: AlertEvent) -> str:
    lines = [event.message, "", f"provider: {event.provider}", f"rule: {event.rule.value}",
             f"status: {event.kind.value}", f"at: {event.at.isoformat()}"]
    lines += [f"{key}: {value}" for key, value in event.details.items() if value is not None]
    return "\n".join(lines)


class Monitoring:
    """The probes, alert rules, alert delivery, Prometheus metrics and metric maintenance."""

    def __init__(
        self,
        *,
        config: MonitoringConfig,
        db: Database,
        router: Router,
        providers: Sequence[Provider],
        clock: WallClock,
        channels: Sequence[AlertChannel] = (),
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.router = router
        self.providers = list(providers)
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        self.dispatcher = AlertDispatcher(db, channels, timeout=config.channel_timeout)
        self.alerts = AlertEngine(config.thresholds, clock=clock, emit=self.dispatcher.submit)
        self.health = HealthMonitor(providers, router=router, db=db, timeout=config.probe_timeout,
                                    clock=clock, listeners=[self._on_probe])
        self._gauges_at: float | None = None

    @property
    def provider_names(self) -> list[str]:
        """Configured providers in priority order."""
        return [p.name for p in self.providers]

    # -- inputs ---------------------------------------------------------------------------

    def observe_attempt(self, record: AttemptRecord) -> None:
        """Router hook: one provider call, for Prometheus and the alert rules."""
        self.metrics.observe_provider_call(record.provider, record.operation,
                                           record.outcome.value, record.duration_s)
        if record.outcome is not Outcome.SKIPPED:
            self.alerts.observe_call(record.provider, ok=record.outcome is Outcome.SUCCESS,
                                     duration_s=record.duration_s, error_type=record.error_type)

    def _on_probe(self, result: ProbeResult) -> None:
        self.metrics.set_probe(result.provider, result.healthy, result.response_ms / 1000)
        self.alerts.observe_probe(result.provider, healthy=result.healthy, error=result.error)

    def healthy(self) -> dict[str, bool | None]:
        """Per provider: the latest probe's verdict in this process (``None`` before one)."""
        return {name: (self.health.latest[name].healthy if name in self.health.latest else None)
                for name in self.provider_names}

    # -- Prometheus -----------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        """Update the gauges read from state (breakers) and, at most every few seconds, from
        the database (paid invoices, outbox backlog)."""
        for name, snapshot in self.router.snapshot().items():
            self.metrics.set_breaker(name, snapshot["breaker"]["state"])
        now = time.monotonic()
        if self._gauges_at is not None and now - self._gauges_at < self.config.gauge_refresh_seconds:
            return
        self._gauges_at = now
        async with self.db.connect() as conn:
            for name, count in (await settled_by_provider(conn)).items():
                self.metrics.invoices_settled.labels(name).set(count)
            backlog = await outbox_backlog(conn)
        if backlog is not None:
            self.metrics.outbox_backlog.set(backlog)

    # -- loops ----------------------------------------------------------------------------

    async def probe_loop(self) -> None:
        """Probe every ``probe_interval`` seconds, on a fixed cadence (the lifespan runs the
        first round at start-up, so this one waits an interval first)."""
        interval = self.config.probe_interval
        next_at = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + interval, time.monotonic())
            await self.health.run_once()

    async def alert_loop(self) -> None:
        """Deliver alerts as the rules emit them."""
        await self.dispatcher.run()

    async def rollup_loop(self) -> None:
        """Roll up completed hours of provider calls, every ``rollup_interval`` seconds."""
        while True:
            try:
                written = await refresh_rollups(self.db, now=self.clock())
                if written:
                    log.info("metrics_rolled_up", rows=written)
            except Exception as exc:  # e.g. another instance rolled the same hour up first
                log.warning("metrics_rollup_failed", error=type(exc).__name__)
            await asyncio.sleep(self.config.rollup_interval)

    async def retention_loop(self) -> None:
        """Delete metrics older than the retention period, every ``retention_interval`` s."""
        while True:
            await self.cleanup()
            await asyncio.sleep(self.config.retention_interval)

    async def cleanup(self, days: int | None = None) -> dict[str, int]:
        """Delete provider calls, roll-ups and probe results older than ``days`` (default:
        the retention period); counts per table."""
        cutoff = self.clock() - timedelta(days=days or self.config.retention_days)
        deleted = await delete_older_than(self.db, cutoff)
        if any(deleted.values()):
            log.info("metrics_pruned", cutoff=cutoff.isoformat(), **deleted)
        return deleted
