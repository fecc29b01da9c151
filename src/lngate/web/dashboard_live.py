"""The operator dashboard's content, and how it is kept live over Server-Sent Events.

The dashboard is made of sections, each an element of the page whose ``id`` is the section's
name and whose content is the template ``admin/_<name>.html``: ``summary``, ``providers``,
``activity``, ``alerts``, ``invoices``, ``orders``, ``loadtests``. The page is rendered whole; then its stream
(``GET /admin/events``) sends ``event: section`` with ``{"id", "html"}`` whenever a section's
HTML changes, and the page's script puts it in place. No polling in the browser: the server
pushes, woken by :class:`DashboardSignals` (one per running gateway):

- a probe result (the health monitor's listener; with several instances, also each result an
  instance applies from the leader's probes): providers, alerts and the summary are recomputed,
  so a provider that goes down turns red as soon as a probe sees it;
- an invoice change (the invoice events' observer: settlement, expiry): activity, latest
  invoices and orders, summary;
- an order action on this instance's back-office pages: latest orders;
- a load test run recorded on this instance (``POST /api/admin/loadtests``): the load tests;
- and every :data:`REFRESH_SECONDS`, everything (what other instances did, new invoices,
  alerts delivered since).

Recomputations are at least :data:`MIN_GAP_SECONDS` apart (a burst of payments costs one). Each
round also re-reads the session: a session that ends (signed out, expired, admin token changed)
ends the stream with ``event: signed-out``. The stream's lifetime is ``SSE_MAX_SECONDS``; the
browser then reconnects (and is refused with a 401 once the session is over).
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import Request
from markupsafe import Markup

from lngate.bootstrap import Gateway
from lngate.services.clock import utcnow
from lngate.services.dashboard import (
    UPTIME_TARGET,
    Activity,
    Alerts,
    Health,
    Latest,
    Period,
    ProviderCard,
    activity,
    alerts,
    latest,
    loadtests,
    provider_cards,
)
from lngate.services.health import ProbeResult
from lngate.store.loadtests import StoredRun
from lngate.web.admin_format import AdminFormat
from lngate.web.admin_layout import admin_url
from lngate.web.admin_session import current_session
from lngate.web.charts import Bar, bar_chart
from lngate.web.i18n import Translator
from lngate.web.pages import environment
from lngate.web.state import gateway_of

log = structlog.get_logger("lngate.web.dashboard")

REFRESH_SECONDS = 5.0
MIN_GAP_SECONDS = 0.5
SECTIONS = ("summary", "providers", "activity", "alerts", "invoices", "orders", "loadtests")


class Part(enum.StrEnum):
    """What is computed (each by one function of ``services/dashboard.py``)."""

    PROVIDERS = "providers"
    ACTIVITY = "activity"
    ALERTS = "alerts"
    LATEST = "latest"
    LOADTESTS = "loadtests"


ALL_PARTS = frozenset(Part)
SECTION_PARTS: dict[str, frozenset[Part]] = {
    "summary": frozenset({Part.PROVIDERS, Part.ACTIVITY, Part.ALERTS}),
    "providers": frozenset({Part.PROVIDERS}),
    "activity": frozenset({Part.ACTIVITY}),
    "alerts": frozenset({Part.ALERTS}),
    "invoices": frozenset({Part.LATEST}),
    "orders": frozenset({Part.LATEST}),
    "loadtests": frozenset({Part.LOADTESTS}),
}


class Topic(enum.StrEnum):
    """What happened."""

    PROBE = "probe"
    INVOICE = "invoice"
    ORDER = "order"
    LOADTEST = "loadtest"


TOPIC_PARTS = {Topic.PROBE: frozenset({Part.PROVIDERS, Part.ALERTS}),
               Topic.INVOICE: frozenset({Part.ACTIVITY, Part.LATEST}),
               Topic.ORDER: frozenset({Part.LATEST}),
               Topic.LOADTEST: frozenset({Part.LOADTESTS})}


class Subscription:
    """One stream's wake-ups: the topics seen since it last looked."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._topics: set[Topic] = set()

    def add(self, topic: Topic) -> None:
        """Note ``topic`` and wake the stream."""
        self._topics.add(topic)
        self._event.set()

    async def next(self, timeout: float) -> set[Topic]:
        """The topics seen, once there is one or ``timeout`` seconds have passed."""
        if not self._topics:
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                pass
        self._event.clear()
        topics, self._topics = self._topics, set()
        return topics


class DashboardSignals:
    """Fans what happens in a gateway out to every open dashboard stream."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._subscriptions: set[Subscription] = set()

    @classmethod
    def attach(cls, gateway: Gateway) -> DashboardSignals:
        """Signals fed by ``gateway``'s probe results and invoice changes."""
        signals = cls(gateway)
        gateway.monitoring.health.add_listener(signals.on_probe)
        gateway.settler.events.observe(signals.on_invoice)
        return signals

    def notify(self, topic: Topic) -> None:
        """Wake every stream with ``topic``."""
        for subscription in self._subscriptions:
            subscription.add(topic)

    def on_probe(self, _result: ProbeResult) -> None:
        """Health monitor listener."""
        self.notify(Topic.PROBE)

    def on_invoice(self, _payment_hash: str | None) -> None:
        """Invoice events observer."""
        self.notify(Topic.INVOICE)

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription for the duration of the block."""
        subscription = Subscription()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def streams(self) -> int:
        """How many streams are subscribed."""
        return len(self._subscriptions)


def signals_of(request: Request) -> DashboardSignals:
    """The running gateway's dashboard signals (attached on first use)."""
    gateway = gateway_of(request)
    signals: DashboardSignals | None = getattr(request.app.state, "dashboard_signals", None)
    if signals is None or signals.gateway is not gateway:
        signals = DashboardSignals.attach(gateway)
        request.app.state.dashboard_signals = signals
    return signals


@dataclass
class DashboardData:
    """The figures a dashboard shows, refreshed part by part."""

    cards: list[ProviderCard] = field(default_factory=list)
    activity: Activity = field(default_factory=lambda: Activity([], []))
    alerts: Alerts = field(default_factory=lambda: Alerts([], []))
    latest: Latest = field(default_factory=lambda: Latest([], []))
    loadtests: list[StoredRun] = field(default_factory=list)

    async def refresh(self, gateway: Gateway, parts: frozenset[Part] | set[Part]) -> None:
        """Recompute ``parts``."""
        if Part.PROVIDERS in parts:
            self.cards = await provider_cards(gateway.monitoring)
        if Part.ACTIVITY in parts:
            self.activity = await activity(gateway.db, now=utcnow(),
                                           include_test=gateway.demo_mode)
        if Part.ALERTS in parts:
            self.alerts = await alerts(gateway.db)
        if Part.LATEST in parts:
            self.latest = await latest(gateway.db)
        if Part.LOADTESTS in parts:
            self.loadtests = await loadtests(gateway.db)


def _charts(data: Activity, fmt: AdminFormat) -> dict[str, Markup]:
    """The four charts: invoices (and of those paid) and revenue, per hour and per day."""
    t = fmt.t

    def volume(period: Period, label: str, when: str) -> Bar:
        return Bar(label, period.created, period.paid,
                   t("admin.tip_volume", period=when, created=fmt.number(period.created),
                     paid=fmt.number(period.paid)))

    def revenue(period: Period, label: str, when: str) -> Bar:
        return Bar(label, period.revenue_sat, None,
                   t("admin.tip_revenue", period=when, amount=fmt.sats(period.revenue_sat)))

    day_label = "%d/%m" if fmt.language == "fr" else "%m-%d"
    hours = [(p, p.start.strftime("%Hh"), p.start.strftime("%Y-%m-%d %H:00 UTC"))
             for p in data.hourly]
    days = [(p, p.start.strftime(day_label), p.start.strftime("%Y-%m-%d")) for p in data.daily]
    return {
        "volume_hourly": bar_chart([volume(*h) for h in hours], kind="volume", label_every=3,
                                   title=t("admin.chart_volume_hourly"), axis=fmt.compact),
        "revenue_hourly": bar_chart([revenue(*h) for h in hours], kind="revenue",
                                    label_every=3, title=t("admin.chart_revenue_hourly"),
                                    axis=fmt.compact),
        "volume_daily": bar_chart([volume(*d) for d in days], kind="volume", label_every=5,
                                  title=t("admin.chart_volume_daily"), axis=fmt.compact),
        "revenue_daily": bar_chart([revenue(*d) for d in days], kind="revenue", label_every=5,
                                   title=t("admin.chart_revenue_daily"), axis=fmt.compact),
    }


def section_context(data: DashboardData, fmt: AdminFormat,
                    language: str | None) -> dict[str, Any]:
    """What the section templates need (the page's and the stream's alike)."""
    cards = data.cards
    return {
        "today": utcnow().date(),
        "cards": cards,
        "target": UPTIME_TARGET,
        "healthy": sum(1 for c in cards if c.health is Health.UP),
        "activity": data.activity,
        "charts": _charts(data.activity, fmt),
        "alerts": data.alerts,
        "invoices": data.latest.invoices,
        "orders": data.latest.orders,
        "loadtests": data.loadtests,
        "order_url": lambda order_id: admin_url(f"/admin/orders/{order_id}", language),
    }


def render_section(name: str, context: dict[str, Any]) -> str:
    """The HTML of one section."""
    return environment().get_template(f"admin/_{name}.html").render(**context)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def dashboard_stream(request: Request, language: str,
                           chosen: str | None) -> AsyncIterator[bytes]:
    """The dashboard's sections as Server-Sent Events, until the client leaves, the session
    ends or the stream's lifetime is over."""
    gateway = gateway_of(request)
    settings = gateway.settings
    t = Translator(language)
    fmt = AdminFormat(t)
    base = {"t": t, "fmt": fmt, "lang": language}
    data = DashboardData()
    sent: dict[str, str] = {}

    def changed_sections(parts: frozenset[Part] | set[Part]) -> bytes:
        context = {**base, **section_context(data, fmt, chosen)}
        chunk = b""
        for name in SECTIONS:
            if SECTION_PARTS[name] & parts:
                html = render_section(name, context)
                if sent.get(name) != html:
                    sent[name] = html
                    chunk += _event("section", {"id": name, "html": html})
        return chunk

    started = last_full = last_sent = time.monotonic()
    with signals_of(request).subscribe() as subscription:
        await data.refresh(gateway, ALL_PARTS)
        yield b"retry: 3000\n\n" + changed_sections(ALL_PARTS)
        while True:
            now = time.monotonic()
            remaining = settings.sse_max_seconds - (now - started)
            if remaining <= 0:
                return
            wait = min(REFRESH_SECONDS - (now - last_full),
                       settings.sse_heartbeat_seconds - (now - last_sent), remaining)
            topics = await subscription.next(max(wait, 0.0))
            if await request.is_disconnected():
                return
            if await current_session(request) is None:
                yield _event("signed-out", {})
                return
            parts: set[Part] = set()
            for topic in topics:
                parts |= TOPIC_PARTS[topic]
            if time.monotonic() - last_full >= REFRESH_SECONDS:
                parts, last_full = set(ALL_PARTS), time.monotonic()
            chunk = b""
            if parts:
                try:
                    await data.refresh(gateway, parts)
                    chunk = changed_sections(parts)
                except Exception as exc:  # a database hiccup: the next round tries again
                    log.warning("dashboard_refresh_failed", error=type(exc).__name__)
            if chunk:
                yield chunk
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= settings.sse_heartbeat_seconds:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            if parts:
                await asyncio.sleep(MIN_GAP_SECONDS)
