"""The monitoring loops: what the leader runs (probes, alert rules and delivery, roll-ups,
retention) and what the other instances run (following the leader's probe results)."""

from __future__ import annotations

from functools import partial

from lngate.services.monitoring import AlertDispatcher, Monitoring
from lngate.store.database import is_conflict
from lngate.tasks.leadership import Loop
from lngate.tasks.loops import every


async def deliver_alerts(dispatcher: AlertDispatcher) -> None:
    """Deliver alerts as the rules emit them, forever (storage failures are handled by
    :meth:`AlertDispatcher.deliver`)."""
    while True:
        await dispatcher.deliver(await dispatcher.next())


async def _roll_up(monitoring: Monitoring) -> None:
    try:
        await monitoring.roll_up()
    except Exception as exc:
        # Two leaders during a takeover may replace the same hour at once: one insert then
        # meets the other's rows. The next pass redoes the hour.
        if not is_conflict(exc):
            raise


def leader_loops(monitoring: Monitoring) -> dict[str, Loop]:
    """The monitoring loops of the leader (its first probe round is part of taking the lead:
    :meth:`Monitoring.take_lead`)."""
    config = monitoring.config
    return {
        "health-probes": partial(every, config.probe_interval, monitoring.health.run_once,
                                 name="health-probes", first_after=config.probe_interval),
        "alert-rules": partial(every, config.call_feed_interval, monitoring.feed_alerts,
                               name="alert-rules"),
        "alert-delivery": partial(deliver_alerts, monitoring.dispatcher),
        "metrics-rollup": partial(every, config.rollup_interval, partial(_roll_up, monitoring),
                                  name="metrics-rollup"),
        "metrics-retention": partial(every, config.retention_interval, monitoring.cleanup,
                                     name="metrics-retention"),
    }


def follower_loops(monitoring: Monitoring) -> dict[str, Loop]:
    """The monitoring loop of the other instances: the leader's stored probe results."""
    interval = monitoring.config.follow_interval
    return {"health-follow": partial(every, interval, monitoring.health.follow_once,
                                     name="health-follow", first_after=interval)}
