"""The composition root: the only place that turns :class:`Settings` into live objects.

``build_gateway`` opens the database (and migrates it), creates one pooled HTTP session per
HTTP provider, the providers in priority order, and every service, and returns the
:class:`Gateway` whole, including the plan of its background loops (those of every instance,
and the leader's and followers' under :class:`~lngate.tasks.leadership.Leadership`). Nothing
here starts a task or opens a connection beyond the database's pool; the web lifespan or the
CLI decides what runs. Tests replace collaborators through :class:`Overrides`.

Demo mode and the test provider
    The test provider signs real but unpayable invoices. It serves customers only in *pure
    demo mode*: no real provider is configured and ``LIGHTNING_TEST_MODE`` is not ``false``.
    Otherwise it is private: it never issues an invoice to a public request (it is not in the
    create router), it only backs the admin's ``simulate_payment``, whose invoices it can
    still be asked about (the router knows it for look-ups only), and settlement refuses to
    fulfil an order from one of its invoices.

    Built on the database, it is one node for every worker and instance sharing it: its key is
    the one the first instance stored (``test_node_keys``), and its invoices live in
    ``test_invoices``, so any instance answers for, and "pays", what another issued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import aiohttp
import coincurve
import structlog

from lngate.config_secrets import secrets_in
from lngate.domain import Network
from lngate.metrics import GatewayMetrics
from lngate.notify.alerts import AlertChannel, DiscordWebhook, EmailAlerts, SlackWebhook
from lngate.notify.email import (
    EmailSender,
    FolderEmailSender,
    ResendEmailSender,
    SmtpConfig,
    SmtpEmailSender,
)
from lngate.notify.templates import EmailTemplates
from lngate.provider_registry import BuildContext, build_provider
from lngate.providers.base import Provider
from lngate.providers.cursors import CursorStore, MemoryCursorStore
from lngate.providers.testprovider import TestProvider
from lngate.resilience.breaker import CircuitBreaker
from lngate.resilience.deadline import AttemptTimeoutPolicy, LagSource
from lngate.resilience.looplag import LoopLagMonitor
from lngate.resilience.router import AttemptRecord, Router
from lngate.services.alerts import AlertThresholds
from lngate.services.call_recorder import CallRecorder
from lngate.services.clock import WallClock, utcnow
from lngate.services.events import EventTransport, InvoiceEvents, PostgresTransport, RedisTransport
from lngate.services.health import ProbeResult
from lngate.services.invoices import InvoiceContext
from lngate.services.monitoring import Monitoring, MonitoringConfig
from lngate.services.orders import Catalog, OrderContext
from lngate.services.outbox import OutboxConfig
from lngate.services.payee_keys import PayeeKeys
from lngate.services.reconciler import ReconcilerConfig
from lngate.services.settlement import Settler
from lngate.services.stream_watch import StreamWatch
from lngate.services.webhooks import WebhookAuth
from lngate.settings import ConfigError, Settings
from lngate.store import Database
from lngate.store.coordination import AdvisoryLock
from lngate.store.wal_bound import CHECK_INTERVAL as WAL_CHECK_INTERVAL
from lngate.store.invoice_writer import InvoiceWriter
from lngate.store.stream_cursors import StreamCursorStore
from lngate.store.test_invoices import DatabaseInvoiceStore, shared_test_key
from lngate.tasks.leadership import RETRY_INTERVAL, Elector, Leadership, Loop, Role, SoleElector
from lngate.tasks.loops import DelayedWake, every
from lngate.tasks.monitoring import follower_loops, leader_loops
from lngate.tasks.payments import instance_payment_loops, reconciler_loop

log = structlog.get_logger("lngate.bootstrap")
OUTBOX_WAKE_DELAY = 0.25
"""Seconds between a settlement and waking the outbox worker, at most (settlements within it
share one wake)."""
CALL_FLUSH_INTERVAL = 0.5
"""Seconds between two writes of the recorded provider calls."""


@dataclass(frozen=True)
class Overrides:
    """Collaborators a test puts in place of the ones the settings describe (``None``: keep)."""

    db: Database | None = None
    """An open database (already migrated if ``migrate=False``); closed by ``Gateway.aclose``."""
    providers: Sequence[Provider] | None = None
    """The providers customers' invoices come from, in priority order (no session is made for
    them; their node keys are not pinned). Pure demo mode when the test provider is among them."""
    test_provider: TestProvider | None = None
    """The test provider, used as it is (default: one of ``providers`` that is a
    ``TestProvider``, else the database's, as :func:`shared_test_provider` builds it)."""
    clock: WallClock | None = None
    email_sender: EmailSender | None = None
    alert_channels: Sequence[AlertChannel] | None = None
    after_settle: Callable[[str], None] | None = None
    """Called with each settled payment hash (besides waking the outbox)."""
    elector: Elector | None = None
    leadership_retry_interval: float | None = None


@dataclass
class Gateway:
    """Everything a running gateway holds, built whole from settings by :func:`build_gateway`."""

    settings: Settings
    db: Database
    providers: list[Provider]
    """The providers customers' invoices come from, in priority order."""
    router: Router
    payee_keys: PayeeKeys
    recorder: CallRecorder
    invoices: InvoiceContext
    demo_mode: bool
    """Pure demo mode: the test provider serves customers (see the module docstring)."""
    test_provider: TestProvider
    simulation_invoices: InvoiceContext
    """Creates restricted to the test provider (the admin's ``simulate_payment``)."""
    settler: Settler
    orders: OrderContext
    webhook_auth: WebhookAuth | None
    """``None`` when ``LNBITS_WEBHOOK_SECRET`` is unset: no webhook URL is given to LNbits."""
    email_sender: EmailSender
    email_templates: EmailTemplates
    outbox_config: OutboxConfig
    outbox_wake: asyncio.Event
    reconciler_config: ReconcilerConfig
    monitoring: Monitoring
    loop_lag: LoopLagMonitor
    """This process's event-loop lag (its loop runs among ``instance_loops``)."""
    events: InvoiceEvents
    stream_watch: StreamWatch
    """The invoices this process's event streams wait on, re-read together every
    ``SSE_RECHECK_SECONDS`` by one of ``instance_loops``."""
    instance_loops: dict[str, Loop]
    """The loops every instance runs (the web lifespan starts them)."""
    leadership: Leadership
    """Runs the leader's loops while this instance leads, the followers' otherwise."""
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def aclose(self) -> None:
        """Flush recorded calls, close providers, sessions and the database."""
        try:
            await self.recorder.flush()
        except Exception as exc:  # closing must go on
            log.error("provider_calls_final_flush_failed", error=type(exc).__name__)
        try:
            await self.monitoring.health.flush()  # a probe round's late store
        except Exception as exc:
            log.error("health_checks_final_store_failed", error=type(exc).__name__)
        for provider in self.providers:
            await provider.aclose()
        if self.test_provider not in self.providers:
            await self.test_provider.aclose()
        for session in self.sessions:
            await session.close()
        if isinstance(self.events.transport, RedisTransport):
            await self.events.transport.aclose()
        await self.db.aclose()


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, for the log redaction guard: each ``SecretStr`` the settings
    hold, the parsed provider specs and the credentials inside secret URLs included
    (:func:`~lngate.config_secrets.secrets_in` walks the model, so no list is kept here)."""
    return list(dict.fromkeys(secrets_in(settings)))


async def build_providers(
    settings: Settings, payee_keys: PayeeKeys, *, db: Database | None = None,
) -> tuple[list[Provider], list[aiohttp.ClientSession], TestProvider]:
    """The providers customers' invoices come from, in priority order (``PROVIDERS``, see
    :mod:`lngate.provider_registry`), the sessions to close besides theirs (none: each provider
    owns its session), and the test provider (public in demo mode only).

    Each provider is built by its registry row; a paid stream keeps its cursor in ``db`` (in
    memory without one). A ``node_pubkey`` in a spec is pinned.
    """
    def cursor_store(name: str) -> CursorStore:
        if db is None:
            return MemoryCursorStore()
        return StreamCursorStore(db, name, clock=utcnow)

    context = BuildContext(timeout=settings.provider_timeout_seconds, cursor_store=cursor_store)
    providers: list[Provider] = []
    for spec in settings.provider_specs:
        try:
            providers.append(build_provider(spec, context))
        except ValueError as exc:  # e.g. a certificate file removed since settings were read
            for provider in providers:
                await provider.aclose()
            raise ConfigError(f"PROVIDERS: provider {spec.name!r} ({spec.type}): {exc}") from None
        if spec.node_pubkey:
            payee_keys.pin(spec.name, spec.node_pubkey)
    test_provider = TestProvider(network=settings.lightning_network, clock=utcnow)
    payee_keys.pin(test_provider.name, test_provider.node_pubkey)
    if settings.demo_mode:
        providers.append(test_provider)
        log.warning("demo_mode", message="DEMO: no real provider is configured; the test "
                    "provider issues every invoice; its invoices are not real and are flagged "
                    "isTest")
    elif settings.lightning_test_mode and providers:
        log.warning("test_provider_private", message="LIGHTNING_TEST_MODE is on, but a real "
                    "provider is configured: the test provider never serves customers; it "
                    "only backs the admin's simulate_payment")
    return providers, [], test_provider


async def shared_test_provider(db: Database, *, network: Network, clock: WallClock,
                               name: str = "test") -> TestProvider:
    """The test provider as one node for every instance on ``db``: it signs with the key the
    first of them stored (this one's new key if none is) and keeps its invoices there, so any
    instance answers for, and "pays", what another issued, also after a restart."""
    key = await shared_test_key(db, name, coincurve.PrivateKey().secret.hex(),
                                created_at=clock())
    return TestProvider(network=network, clock=clock, name=name,
                        private_key=coincurve.PrivateKey(bytes.fromhex(key)),
                        invoices=DatabaseInvoiceStore(db))


def build_router(
    settings: Settings, providers: list[Provider], *,
    on_attempt: Callable[[AttemptRecord], object],
    last_resort: frozenset[str] = frozenset(),
    lookup_only: Sequence[Provider] = (),
    lag: LagSource | None = None,
) -> Router:
    """A router with one circuit breaker per provider, all on the monotonic clock; ``lag``
    keeps the process's own overload from counting against a provider."""

    def breaker(name: str) -> CircuitBreaker:  # the breaker logs its own state changes
        return CircuitBreaker(name, clock=time.monotonic,
                              failure_threshold=settings.breaker_failure_threshold,
                              cooldown=settings.breaker_cooldown_seconds)

    return Router(
        providers,
        breakers={p.name: breaker(p.name) for p in providers},
        timeouts=AttemptTimeoutPolicy(
            k=settings.attempt_timeout_p95_factor, floor=settings.attempt_timeout_floor,
            ceiling=settings.attempt_timeout_ceiling, default=settings.attempt_timeout_default,
        ),
        clock=time.monotonic,
        deadline_seconds=settings.create_deadline_seconds,
        on_attempt=on_attempt,
        last_resort=last_resort,
        lookup_only=lookup_only,
        lag=lag,
    )


async def build_gateway(settings: Settings, *, migrate: bool = True,
                        overrides: Overrides | None = None) -> Gateway:
    """Open the database (migrating it unless told not to) and build the whole gateway, with
    ``overrides`` in place of the collaborators they name."""
    o = overrides or Overrides()
    clock = o.clock or utcnow
    db = o.db or Database.from_url(settings.database_url.get_secret_value())
    sessions: list[aiohttp.ClientSession] = []
    try:
        if migrate:
            await db.migrate()
        payee_keys = PayeeKeys(db=db, clock=clock)
        if o.providers is None:
            providers, sessions, configured = await build_providers(settings, payee_keys, db=db)
            test_provider = await shared_test_provider(
                db, network=settings.lightning_network, clock=clock, name=configured.name)
            providers = [test_provider if p is configured else p for p in providers]
        else:
            providers = list(o.providers)
            test_provider = o.test_provider or next(
                (p for p in providers if isinstance(p, TestProvider)), None) or (
                await shared_test_provider(db, network=settings.lightning_network, clock=clock))
    except BaseException:
        await db.aclose()
        raise
    payee_keys.pin(test_provider.name, test_provider.node_pubkey)
    demo = test_provider in providers
    if not providers:
        log.error("no_provider", message="no provider configured and LIGHTNING_TEST_MODE is off: "
                  "every create-invoice will answer 503")
    recorder = CallRecorder(db)
    attempt_hooks = AttemptHooks(recorder.record_attempt)
    test_names = frozenset({test_provider.name})
    loop_lag = LoopLagMonitor()
    router = build_router(settings, providers, on_attempt=attempt_hooks,
                          last_resort=test_names if demo else frozenset(),
                          lookup_only=() if demo else (test_provider,), lag=loop_lag)
    webhook_auth = build_webhook_auth(settings, providers)
    context = InvoiceContext(
        db=db,
        router=router,
        network=settings.lightning_network,
        payee_keys=payee_keys,
        test_providers=test_names,
        wall_clock=clock,
        webhook_url=webhook_auth.url if webhook_auth else None,
        writer=InvoiceWriter(db),
    )
    simulation_router = build_router(settings, [test_provider], on_attempt=attempt_hooks,
                                     last_resort=test_names, lag=loop_lag)
    outbox_wake = asyncio.Event()
    # A moment later, not at once: the doorbell's request (e.g. LNbits' webhook) finishes first
    # instead of sharing the event loop with template rendering and SMTP; and the settlements
    # of that moment wake it once, so under load their emails go as one batch (one claim, one
    # SMTP connection, one update marking them sent) instead of a pass each.
    wake_outbox = DelayedWake(outbox_wake, OUTBOX_WAKE_DELAY)

    def after_settle(payment_hash: str) -> None:
        wake_outbox.ring()
        if o.after_settle is not None:
            o.after_settle(payment_hash)

    events = InvoiceEvents(event_transport(settings, db))
    settler = Settler(db=db, router=router, clock=clock, events=events,
                      after_settle=after_settle, test_orders_allowed=demo,
                      check_reuse_seconds=settings.check_reuse_seconds)
    email_sender = o.email_sender or build_email_sender(settings, sessions)
    channels = (list(o.alert_channels) if o.alert_channels is not None
                else alert_channels(settings, email_sender, sessions))
    monitoring = Monitoring(
        config=monitoring_config(settings), db=db, router=router, providers=providers,
        clock=clock, channels=channels, metrics=GatewayMetrics(), lag=loop_lag,
    )
    attempt_hooks.hooks.append(monitoring.observe_attempt)
    monitoring.metrics.watch_loop_lag(loop_lag.recent_max, lambda: loop_lag.total_lag)
    outbox_config = OutboxConfig(
        poll_interval=settings.outbox_poll_interval_seconds,
        max_attempts=settings.outbox_max_attempts,
        backoff=settings.outbox_backoff_seconds,
        lease=settings.outbox_lease_seconds,
        shop_email=settings.shop_email,
        message_id_domain=_message_id_domain(settings),
    )
    reconciler_config = ReconcilerConfig(
        interval=settings.reconcile_interval_seconds,
        late_margin=timedelta(seconds=settings.reconcile_margin_seconds),
        batch_size=settings.reconcile_batch_size,
        concurrency=settings.reconcile_concurrency,
        lease=timedelta(seconds=settings.reconcile_lease_seconds),
        first_check=timedelta(seconds=settings.reconcile_first_check_seconds),
        backoff=settings.reconcile_backoff_factor,
        max_gap=timedelta(seconds=settings.reconcile_max_gap_seconds),
        lookups_per_second=settings.reconcile_lookups_per_second,
    )
    email_templates = EmailTemplates()
    instance_loops: dict[str, Loop] = {
        "event-loop-lag": loop_lag.run,
        "provider-call-recorder": partial(every, CALL_FLUSH_INTERVAL, recorder.flush,
                                          name="provider-call-recorder",
                                          wake=recorder.batch_full),
        **instance_payment_loops(settler=settler, clock=clock, providers=providers,
                                 email_sender=email_sender, email_templates=email_templates,
                                 outbox_config=outbox_config, outbox_wake=outbox_wake),
    }
    if events.transport is not None:
        instance_loops["invoice-events"] = events.receive
    if db.wal_bound is not None:
        instance_loops["sqlite-wal-bound"] = partial(every, WAL_CHECK_INTERVAL, db.wal_bound.check,
                                                     name="sqlite-wal-bound")
    stream_watch = StreamWatch(db, events)
    instance_loops["event-stream-recheck"] = partial(
        every, settings.sse_recheck_seconds, stream_watch.recheck, name="event-stream-recheck",
        first_after=settings.sse_recheck_seconds)
    leadership = Leadership(
        o.elector or (AdvisoryLock(db) if db.dialect == "postgresql" else SoleElector()),
        leader=Role("leader", {
            **leader_loops(monitoring),
            "reconciler": reconciler_loop(settler, clock=clock, config=reconciler_config),
        }, enter=monitoring.take_lead, leave=monitoring.step_down),
        follower=Role("follower", follower_loops(monitoring), enter=monitoring.health.follow_once),
        retry_interval=o.leadership_retry_interval or RETRY_INTERVAL,
    )

    def take_reported_key(result: ProbeResult) -> None:
        if result.node_pubkey:  # the payee check then works from the first invoice on
            payee_keys.report(result.provider, result.node_pubkey)

    monitoring.health.add_listener(take_reported_key)
    return Gateway(
        settings=settings, db=db, providers=providers, router=router, payee_keys=payee_keys,
        recorder=recorder, invoices=context, demo_mode=demo, test_provider=test_provider,
        simulation_invoices=dataclasses.replace(context, router=simulation_router,
                                                webhook_url=None),
        settler=settler, loop_lag=loop_lag,
        orders=OrderContext(invoices=context, catalog=build_catalog(settings),
                            expiry=settings.invoice_expiry_seconds),
        webhook_auth=webhook_auth,
        email_sender=email_sender,
        email_templates=email_templates,
        outbox_config=outbox_config,
        outbox_wake=outbox_wake,
        reconciler_config=reconciler_config,
        monitoring=monitoring,
        events=events,
        stream_watch=stream_watch,
        instance_loops=instance_loops,
        leadership=leadership,
        sessions=sessions,
    )


def event_transport(settings: Settings, db: Database) -> EventTransport | None:
    """How invoice changes reach the other instances: Redis pub/sub when ``REDIS_URL`` is set,
    else PostgreSQL ``LISTEN``/``NOTIFY``; none on SQLite (one process)."""
    if settings.redis_url is not None:
        return RedisTransport(settings.redis_url.get_secret_value())
    if db.dialect == "postgresql":
        return PostgresTransport(db)
    return None


def build_catalog(settings: Settings) -> Catalog:
    """The product catalog from settings (DazPay's maximum is ``MAX_INVOICE_SATS``)."""
    return Catalog(
        dazbox_price_sat=settings.dazbox_price_sats,
        dazbox_max_quantity=settings.dazbox_max_quantity,
        daznode_monthly_sat=settings.daznode_monthly_sats,
        daznode_yearly_discount_percent=settings.daznode_yearly_discount_percent,
        dazpay_min_sat=settings.dazpay_min_sats,
        dazpay_max_sat=settings.max_invoice_sats,
        max_total_sat=settings.max_invoice_sats,
    )


def build_webhook_auth(settings: Settings, providers: list[Provider]) -> WebhookAuth | None:
    """Webhook tokens when ``LNBITS_WEBHOOK_SECRET`` is set; says once why webhooks are off."""
    if settings.lnbits_webhook_secret is None:
        if any(p.capabilities.webhook for p in providers):
            log.warning("webhooks_disabled", message="LNBITS_WEBHOOK_SECRET is not set: no "
                        "webhook URL is given to LNbits; the reconciler settles payments instead "
                        f"(first check {settings.reconcile_first_check_seconds:g} s after "
                        "creation)")
        return None
    return WebhookAuth(settings.lnbits_webhook_secret.get_secret_value(), settings.public_url)


def build_email_sender(settings: Settings, sessions: list[aiohttp.ClientSession]) -> EmailSender:
    """SMTP when ``SMTP_HOST`` is set, else Resend with ``RESEND_API_KEY``, else the demo folder."""
    if settings.smtp_host:
        tls = settings.smtp_tls
        port = settings.smtp_port or {"tls": 465, "starttls": 587, "none": 25}[tls]
        return SmtpEmailSender(SmtpConfig(
            host=settings.smtp_host, port=port, sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            tls=tls, timeout=settings.smtp_timeout_seconds,
        ))
    if settings.resend_api_key is not None:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                        headers={"User-Agent": "lngate"})
        sessions.append(session)
        return ResendEmailSender(api_key=settings.resend_api_key.get_secret_value(),
                                 sender=settings.email_from, session=session,
                                 base_url=settings.resend_api_url,
                                 timeout=settings.smtp_timeout_seconds)
    log.warning("email_demo_mode", message="no SMTP_HOST or RESEND_API_KEY: emails are written "
                f"to {settings.email_folder} and logged, not sent")
    return FolderEmailSender(settings.email_folder, sender=settings.email_from)


def _message_id_domain(settings: Settings) -> str:
    address = settings.email_from.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[-1] or "lngate.local"


class AttemptHooks:
    """The router's ``on_attempt``: calls each hook in turn; one failing does not stop the next."""

    def __init__(self, *hooks: Callable[[AttemptRecord], object]) -> None:
        self.hooks = list(hooks)

    def __call__(self, record: AttemptRecord) -> None:
        for hook in self.hooks:
            try:
                hook(record)
            except Exception:  # metrics and alerts must never cost a customer an invoice
                log.exception("attempt_hook_failed", hook=getattr(hook, "__qualname__", "?"))


def monitoring_config(settings: Settings) -> MonitoringConfig:
    """The monitoring values from settings."""
    return MonitoringConfig(
        probe_interval=settings.health_check_interval,
        probe_timeout=settings.health_check_timeout,
        retention_days=settings.metrics_retention_days,
        window_hours=settings.metrics_window_hours,
        thresholds=AlertThresholds(
            failure_count=settings.alert_failure_count,
            failure_window=settings.alert_failure_window,
            slow_response_s=settings.alert_slow_response_seconds,
            unavailable_s=settings.alert_unavailable_seconds,
            cooldown_s=settings.alert_cooldown_seconds,
            recovery_calls=settings.alert_recovery_calls,
        ),
        channel_timeout=settings.alert_channel_timeout_seconds,
    )


def alert_channels(settings: Settings, email_sender: EmailSender,
                   sessions: list[aiohttp.ClientSession]) -> list[AlertChannel]:
    """The configured alert channels: email, Slack, Discord (each optional)."""
    channels: list[AlertChannel] = []
    if settings.alert_email:
        channels.append(EmailAlerts(settings.alert_email, email_sender))
    webhooks = [(SlackWebhook, settings.alert_slack_webhook_url),
                (DiscordWebhook, settings.alert_discord_webhook_url)]
    if any(url for _, url in webhooks):
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                        headers={"User-Agent": "lngate"})
        sessions.append(session)
        for channel, url in webhooks:
            if url is not None:
                channels.append(channel(url.get_secret_value(), session,
                                        timeout=settings.alert_channel_timeout_seconds))
    return channels
