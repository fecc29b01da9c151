"""The composition root: the only place that turns :class:`Settings` into live objects.

``build_gateway`` opens the database (and migrates it), creates one pooled HTTP session per
HTTP provider, the providers in priority order (LNbits, NWC, then the test provider when test
mode is on), and the services' context. Nothing here starts a task; the web lifespan or the
CLI decides what runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp
import structlog

from lngate.providers.base import Provider
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.providers.testprovider import TestProvider
from lngate.resilience.breaker import BreakerState, CircuitBreaker
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.router import Router
from lngate.services.call_recorder import CallRecorder
from lngate.services.invoices import InvoiceContext
from lngate.services.payee_keys import PayeeKeys
from lngate.settings import ConfigError, Settings
from lngate.store import Database

log = structlog.get_logger("lngate.bootstrap")


def utcnow() -> datetime:
    """Aware UTC now (the wall clock given to services)."""
    return datetime.now(UTC)


@dataclass
class Gateway:
    """Everything a running gateway holds, built from settings."""

    settings: Settings
    db: Database
    providers: list[Provider]
    router: Router
    payee_keys: PayeeKeys
    recorder: CallRecorder
    invoices: InvoiceContext
    test_provider: TestProvider | None = None
    _sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def aclose(self) -> None:
        """Flush recorded calls, close providers, sessions and the database."""
        try:
            await self.recorder.flush()
        except Exception as exc:  # closing must go on
            log.error("provider_calls_final_flush_failed", error=type(exc).__name__)
        for provider in self.providers:
            await provider.aclose()
        for session in self._sessions:
            await session.close()
        await self.db.aclose()


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, for the log redaction guard."""
    secrets = [settings.lnbits_invoice_key, settings.lnbits_admin_key, settings.lnbits_webhook_secret,
               settings.nwc_url, settings.admin_token, settings.resend_api_key, settings.redis_url]
    values = [s.get_secret_value() for s in secrets if s is not None]
    if settings.nwc_url is not None:  # the URI's secret alone must not leak either
        query = parse_qs(urlsplit(settings.nwc_url.get_secret_value()).query)
        values.extend(query.get("secret", []))
    return [v for v in values if v]


async def build_providers(settings: Settings, payee_keys: PayeeKeys) -> tuple[
    list[Provider], list[aiohttp.ClientSession], TestProvider | None
]:
    """The providers in priority order, with the sessions they use."""
    providers: list[Provider] = []
    sessions: list[aiohttp.ClientSession] = []
    timeout = settings.provider_timeout_seconds
    if settings.lnbits_configured:
        assert settings.lnbits_endpoint and settings.lnbits_invoice_key
        session = make_session(timeout)
        sessions.append(session)
        providers.append(LNbitsProvider(
            LNbitsConfig(
                endpoint=settings.lnbits_endpoint,
                invoice_key=settings.lnbits_invoice_key.get_secret_value(),
                admin_key=(settings.lnbits_admin_key.get_secret_value()
                           if settings.lnbits_admin_key else None),
                timeout=timeout,
            ),
            session,
        ))
        if settings.lnbits_node_pubkey:
            payee_keys.pin("lnbits", settings.lnbits_node_pubkey)
    if settings.nwc_url is not None:
        from lngate.providers.nwc import NWCConfig, NWCProvider

        try:
            config = NWCConfig(uri=settings.nwc_url.get_secret_value(), timeout=timeout)
        except ValueError as exc:
            for session in sessions:
                await session.close()
            raise ConfigError(f"invalid configuration:\n  NWC_URL: {exc}") from None
        providers.append(NWCProvider(config))
    test_provider = None
    if settings.test_mode:
        test_provider = TestProvider(network=settings.lightning_network, clock=utcnow)
        payee_keys.pin(test_provider.name, test_provider.node_pubkey)
        providers.append(test_provider)
        log.warning("demo_mode", message="DEMO: the test provider is enabled; its invoices "
                    "are not real and are flagged isTest", real_providers=len(providers) - 1)
    return providers, sessions, test_provider


def build_router(
    settings: Settings, providers: list[Provider], recorder: CallRecorder,
    last_resort: frozenset[str] = frozenset(),
) -> Router:
    """The router with one circuit breaker per provider, all on the monotonic clock."""

    def breaker(name: str) -> CircuitBreaker:
        def changed(old: BreakerState, new: BreakerState) -> None:
            log.warning("breaker_state_changed", provider=name, old=old.value, new=new.value)

        return CircuitBreaker(name, clock=time.monotonic,
                              failure_threshold=settings.breaker_failure_threshold,
                              cooldown=settings.breaker_cooldown_seconds, on_change=changed)

    return Router(
        providers,
        breakers={p.name: breaker(p.name) for p in providers},
        timeouts=AttemptTimeoutPolicy(
            k=settings.attempt_timeout_p95_factor, floor=settings.attempt_timeout_floor,
            ceiling=settings.attempt_timeout_ceiling, default=settings.attempt_timeout_default,
        ),
        clock=time.monotonic,
        deadline_seconds=settings.create_deadline_seconds,
        on_attempt=recorder.record_attempt,
        last_resort=last_resort,
    )


async def build_gateway(settings: Settings, *, migrate: bool = True) -> Gateway:
    """Open the database (migrating it unless told not to) and build the providers."""
    db = Database.from_url(settings.database_url.get_secret_value())
    try:
        if migrate:
            await db.migrate()
        payee_keys = PayeeKeys()
        providers, sessions, test_provider = await build_providers(settings, payee_keys)
    except BaseException:
        await db.aclose()
        raise
    if not providers:
        log.error("no_provider", message="no provider configured and LIGHTNING_TEST_MODE is off: "
                  "every create-invoice will answer 503")
    recorder = CallRecorder(db)
    test_providers = frozenset({test_provider.name}) if test_provider else frozenset()
    router = build_router(settings, providers, recorder, last_resort=test_providers)
    context = InvoiceContext(
        db=db,
        router=router,
        network=settings.lightning_network,
        payee_keys=payee_keys,
        test_providers=test_providers,
        wall_clock=utcnow,
    )
    return Gateway(settings=settings, db=db, providers=providers, router=router,
                   payee_keys=payee_keys,
                   recorder=recorder, invoices=context, test_provider=test_provider,
                   _sessions=sessions)
