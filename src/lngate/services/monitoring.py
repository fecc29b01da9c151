"""Monitoring wired together: probes, alert rules and their delivery, Prometheus, maintenance.

:class:`Monitoring` is built once by bootstrap; its one-pass methods are run on a cadence by
the loops of :mod:`lngate.tasks.monitoring` (and once by the CLI).

With several instances, one leads (:mod:`lngate.tasks.leadership`): the leader probes, runs
the alert rules and delivers alerts (:meth:`Monitoring.take_lead`), rolls metrics up and prunes
them; the others read the leader's stored probe results (:meth:`HealthMonitor.follow_once`)
for their routing and readiness. The alert rules are fed with the calls every instance stores
(:class:`~lngate.services.call_tail.CallTail`) and with the leader's own probes.
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
from lngate.resilience.deadline import LagSource
from lngate.resilience.router import AttemptRecord, Outcome, Router
from lngate.services.alerts import AlertEngine, AlertEvent, AlertThresholds
from lngate.services.call_tail import CallTail
from lngate.services.clock import WallClock
from lngate.services.health import HealthMonitor, ProbeResult
from lngate.services.metrics_queries import delete_older_than, refresh_rollups
from lngate.store import Database
from lngate.store.database import is_transient
from lngate.store.monitoring import (
    announced_incidents,
    last_fired,
    outbox_backlog,
    record_alert,
    set_alert_deliveries,
    settled_by_provider,
)
from lngate.store.provider_calls import latest_calls

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
    call_feed_interval: float = 1.0
    """Seconds between two reads of the stored calls for the alert rules (leader)."""

    @property
    def follow_interval(self) -> float:
        """Seconds between two reads of the leader's stored probe results (other instances)."""
        return min(self.probe_interval, 5.0)


class AlertDispatcher:
    """Records each alert in the database and sends it to every channel, concurrently.

    Rules emit synchronously (from a router hook or a probe); :meth:`submit` only queues, and
    :meth:`deliver` stores and sends, so a slow channel never delays a provider call. Storing
    comes first and decides: an incident another instance already announced (or closed) is not
    announced again (:func:`~lngate.store.monitoring.record_alert`). A channel's failure is
    logged and recorded in the alert's ``deliveries``; alerts are not retried.
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
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.error("alert_dropped", rule=event.rule.value, provider=event.provider,
                      reason="alert queue full")

    @property
    def pending(self) -> int:
        """Alerts queued, not yet delivered."""
        return self._queue.qsize()

    def clear(self) -> None:
        """Forget the queued alerts (this process stopped leading)."""
        while not self._queue.empty():
            self._queue.get_nowait()

    async def next(self) -> AlertEvent:
        """Wait for the next queued alert."""
        return await self._queue.get()

    async def deliver(self, event: AlertEvent) -> dict[str, str] | None:
        """Record ``event`` and send it on every channel; each channel's outcome, or ``None``
        when another instance announced it already."""
        alert_id: int | None = None
        try:
            async with self._db.transaction() as conn:
                alert_id = await record_alert(
                    conn, rule=event.rule.value, provider=event.provider, kind=event.kind.value,
                    message=event.message, created_at=event.at, details=event.details)
            if alert_id is None:
                log.info("alert_already_announced", rule=event.rule.value,
                         provider=event.provider, kind=event.kind.value)
                return None
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The database is down: announce anyway, the operator must hear of it (a second
            # leader may then announce it too; nothing else can while the database is down).
            log.error("alert_store_failed", error=type(exc).__name__)
        log.warning("alert", rule=event.rule.value, provider=event.provider,
                    kind=event.kind.value, message=event.message)
        message = AlertMessage(event.title, _text(event))
        outcomes = await asyncio.gather(*(self._send(c, message) for c in self.channels))
        deliveries = {c.name: outcome for c, outcome in zip(self.channels, outcomes, strict=True)}
        if alert_id is not None and deliveries:
            try:
                async with self._db.transaction() as conn:
                    await set_alert_deliveries(conn, alert_id, deliveries)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.error("alert_store_failed", error=type(exc).__name__)  # sent all the same
        self.delivered += 1
        return deliveries

    async def _send(self, channel: AlertChannel, message: AlertMessage) -> str:
        try:
            await asyncio.wait_for(channel.send(message), self._timeout)
        except (AlertDeliveryError, TimeoutError) as exc:
            log.error("alert_delivery_failed", channel=channel.name, error=str(exc) or "timeout")
            return str(exc) or f"no answer within {self._timeout:g} s"
        return "ok"

    async def drain(self) -> int:
        """Deliver everything queued now (CLI and tests); how many were taken from the queue."""
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
        lag: LagSource | None = None,
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
                                    clock=clock, listeners=[self._on_probe], lag=lag)
        self.calls = CallTail(db)
        self.leading = False
        """Whether this process runs the alert rules (it leads, see the module docstring)."""
        self._gauges_at: float | None = None

    @property
    def provider_names(self) -> list[str]:
        """Configured providers in priority order."""
        return [p.name for p in self.providers]

    # -- inputs ---------------------------------------------------------------------------

    def observe_attempt(self, record: AttemptRecord) -> None:
        """Router hook: one provider call, for Prometheus (the alert rules read the calls of
        every instance from the database: :meth:`feed_alerts`)."""
        self.metrics.observe_provider_call(record.provider, record.operation,
                                           record.outcome.value, record.duration_s)

    def _on_probe(self, result: ProbeResult) -> None:
        self.metrics.set_probe(result.provider, result.healthy, result.response_ms / 1000)
        if self.leading:
            self.alerts.observe_probe(result.provider, healthy=result.healthy, error=result.error)

    def healthy(self) -> dict[str, bool | None]:
        """Per provider: the latest probe's verdict known here (``None`` before one)."""
        return {name: (self.health.latest[name].healthy if name in self.health.latest else None)
                for name in self.provider_names}

    # -- leading --------------------------------------------------------------------------

    async def take_lead(self) -> None:
        """Start leading: take the alert rules up from what is stored, read new calls from now
        on, and probe every provider once. Leading starts first: if the database cannot be
        read now, the rules start afresh rather than not at all."""
        self.leading = True
        self.metrics.set_leader(True)
        self.dispatcher.clear()
        t = self.config.thresholds
        depth = max(t.failure_window, t.recovery_calls)
        since = self.clock() - timedelta(seconds=t.cooldown_s)
        async with self.db.connect() as conn:
            recent = [call for name in self.provider_names
                      for call in await latest_calls(conn, name, depth)]
            announced = await announced_incidents(conn)
            fired = await last_fired(conn, since)
        self.alerts.resume(
            [(c.provider, c.outcome == Outcome.SUCCESS.value, c.duration_ms / 1000, c.error_type)
             for c in recent], announced, fired)
        await self.calls.start()
        log.info("monitoring_leading", open_incidents=len(announced))
        await self.health.run_once()

    def step_down(self) -> None:
        """Stop leading: forget the rules' state and the alerts not yet delivered (the next
        leader takes them up from the database)."""
        self.leading = False
        self.metrics.set_leader(False)
        self.alerts.reset()
        self.dispatcher.clear()

    async def feed_alerts(self) -> int:
        """Feed the alert rules with the calls every instance stored since the last pass; how
        many."""
        calls = await self.calls.read_new()
        for call in calls:
            if call.outcome != Outcome.SKIPPED.value:
                self.alerts.observe_call(call.provider, ok=call.outcome == Outcome.SUCCESS.value,
                                         duration_s=call.duration_ms / 1000,
                                         error_type=call.error_type)
        return len(calls)

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

    # -- maintenance ----------------------------------------------------------------------

    async def roll_up(self) -> int:
        """Roll up the completed hours of provider calls (and redo the current one); rows
        written."""
        written = await refresh_rollups(self.db, now=self.clock())
        if written:
            log.info("metrics_rolled_up", rows=written)
        return written

    async def cleanup(self, days: int | None = None) -> dict[str, int]:
        """Delete provider calls, roll-ups and probe results older than ``days`` (default:
        the retention period); counts per table."""
        cutoff = self.clock() - timedelta(days=days or self.config.retention_days)
        deleted = await delete_older_than(self.db, cutoff)
        if any(deleted.values()):
            log.info("metrics_pruned", cutoff=cutoff.isoformat(), **deleted)
        return deleted
