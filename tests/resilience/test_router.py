import asyncio
import time

import pytest
import stamina

from lngate.domain import HealthReport, PaymentState, PaymentStatus, ProviderInvoice
from lngate.errors import (
    InvalidInvoice,
    NoProviderAvailable,
    ProviderAuthFailed,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.providers.base import Capabilities
from lngate.resilience.breaker import BreakerState, CircuitBreaker
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.router import Outcome, Router
from tests.resilience import FakeClock

OK = "ok"
HANG = "hang"


class FakeProvider:
    """A provider whose calls play a script: OK, HANG, or an exception; the last step repeats."""

    def __init__(self, name, *script, clock: FakeClock | None = None, cost: float = 0.0):
        self.name = name
        self.capabilities = Capabilities()
        self.script = list(script) or [OK]
        self.clock = clock
        self.cost = cost
        self.creates = 0
        self.lookups = 0

    async def create_invoice(self, *, amount_msat, memo, expiry, webhook_url=None):
        self.creates += 1
        await self._play()
        return ProviderInvoice(f"lnbc-{self.name}", "ab" * 32, amount_msat, self.name)

    async def invoice_status(self, payment_hash):
        self.lookups += 1
        await self._play()
        return PaymentStatus(PaymentState.PAID, amount_msat=1000)

    async def health(self):
        return HealthReport(healthy=True, response_time_ms=1.0)

    async def aclose(self):
        pass

    async def _play(self):
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if self.clock is not None:
            self.clock.advance(self.cost)
        if step == HANG:
            await asyncio.sleep(3600)
        if isinstance(step, BaseException):
            raise step


class Attempt:
    """The create+validate callable the service would pass; remembers the timeouts it got."""

    def __init__(self):
        self.timeouts = []

    async def __call__(self, provider, timeout):
        self.timeouts.append((provider.name, round(timeout, 3)))
        return await provider.create_invoice(amount_msat=1000, memo="coffee", expiry=600)


def make_router(*providers, clock, threshold=3, policy=None, **kwargs) -> Router:
    breakers = {
        p.name: CircuitBreaker(p.name, clock=clock, failure_threshold=threshold, cooldown=30)
        for p in providers
    }
    return Router(providers, breakers=breakers, timeouts=policy or AttemptTimeoutPolicy(),
                  clock=clock, **kwargs)


def trip(router: Router, name: str) -> None:
    breaker = router.breaker(name)
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()


def names(plan) -> list[str]:
    return [p.name for p in plan.candidates]


async def test_priority_order_when_all_are_healthy():
    """With no evidence against anyone, providers are planned and served in configured order."""
    clock = FakeClock()
    lnbits, nwc, test = FakeProvider("lnbits"), FakeProvider("nwc"), FakeProvider("test")
    router = make_router(lnbits, nwc, test, clock=clock)
    assert names(router.plan()) == ["lnbits", "nwc", "test"]
    result = await router.run_create(Attempt())
    assert result.provider == "lnbits"
    assert result.value.provider_ref == "lnbits"
    assert [a.outcome for a in result.attempts] == [Outcome.SUCCESS]
    assert nwc.creates == test.creates == 0


async def test_open_breaker_is_skipped_with_reason():
    """A provider with an open breaker is not called and its reason says when it may be retried."""
    clock = FakeClock()
    lnbits, nwc = FakeProvider("lnbits"), FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock)
    trip(router, "lnbits")
    clock.advance(18)
    plan = router.plan()
    assert names(plan) == ["nwc"]
    assert plan.skipped == {"lnbits": "circuit open, retry in 12 s"}
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert result.skipped == {"lnbits": "circuit open, retry in 12 s"}
    assert result.attempts[0].outcome is Outcome.SKIPPED
    assert result.attempts[0].error_type == "circuit_open"
    assert lnbits.creates == 0


async def test_transient_failure_retries_once_then_fails_over():
    """A transient error is retried once on the same provider, then the next provider serves."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("503"))
    nwc = FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 2
    assert [(a.provider, a.outcome, a.retry) for a in result.attempts] == [
        ("lnbits", Outcome.FAILURE, False),
        ("lnbits", Outcome.FAILURE, True),
        ("nwc", Outcome.SUCCESS, False),
    ]
    assert result.attempts[0].error_type == "provider_unavailable"


async def test_the_retry_and_the_panic_trial_are_structured_warnings():
    """A retried create and a panic trial are each one structlog WARNING naming the provider."""
    from structlog.testing import capture_logs

    clock = FakeClock()
    retried = make_router(FakeProvider("lnbits", ProviderUnavailable("reset"), OK), clock=clock)
    panicking = make_router(FakeProvider("lnbits"), clock=clock, threshold=1)
    trip(panicking, "lnbits")
    clock.advance(12)
    with capture_logs() as logs:
        await retried.run_create(Attempt())
        await panicking.run_create(Attempt())
    warnings = [(e["event"], e["provider"]) for e in logs
                if e["log_level"] == "warning" and e["event"] != "breaker_state_changed"]
    assert warnings == [("create_retried", "lnbits"), ("panic_trial", "lnbits")]
    panic = next(e for e in logs if e["event"] == "panic_trial")
    assert panic["cooldown_left_s"] == 18.0


async def test_retry_on_same_provider_can_succeed():
    """When the single retry succeeds, the same provider serves and the retry is flagged."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("reset"), OK)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    result = await router.run_create(Attempt())
    assert result.provider == "lnbits"
    assert [a.retry for a in result.attempts] == [False, True]


async def test_retry_after_fails_over_without_retrying():
    """A provider answering 429 with Retry-After is not retried; the next one serves."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("429", retry_after=1.0))
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 1


async def test_invalid_invoice_moves_on_without_retry():
    """An invalid invoice is not retried, counts for the breaker, and the next provider serves."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", InvalidInvoice("payee key mismatch"))
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 1
    assert result.attempts[0].error_type == "invalid_invoice"
    assert router.breaker("lnbits").consecutive_failures == 1


@pytest.mark.parametrize("error", [ProviderRejected("amount too large"), ProviderAuthFailed("401")])
async def test_rejection_moves_on_and_leaves_the_breaker_alone(error):
    """A rejected or auth-failed create goes to the next provider and does not touch the breaker."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", error)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock, threshold=1)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 1
    assert result.attempts[0].error_type == error.code
    breaker = router.breaker("lnbits")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


async def test_bug_in_a_provider_does_not_block_failover():
    """An unexpected exception is recorded as internal_error, not retried, and failover goes on."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", KeyError("payment_hash"))
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 1
    assert result.attempts[0].error_type == "internal_error"
    assert "KeyError" in result.attempts[0].error_message
    assert router.breaker("lnbits").consecutive_failures == 1


async def test_hung_primary_times_out_and_fallback_serves():
    """A hung primary is cut off at the per-attempt timeout, not retried, and the fallback serves."""
    policy = AttemptTimeoutPolicy(floor=0.01, default=0.05, ceiling=0.05)
    lnbits, nwc = FakeProvider("lnbits", HANG), FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=time.monotonic, policy=policy)
    started = time.monotonic()
    result = await router.run_create(Attempt())
    elapsed = time.monotonic() - started
    assert result.provider == "nwc"
    assert [a.outcome for a in result.attempts] == [Outcome.TIMEOUT, Outcome.SUCCESS]
    assert 0.05 <= result.attempts[0].duration_s < 0.2
    assert elapsed < 0.5


async def test_retry_never_eats_the_next_providers_budget():
    """A hung primary is not retried when that would leave the fallback less than its timeout."""
    policy = AttemptTimeoutPolicy(floor=0.01, default=0.15, ceiling=0.15)
    lnbits, nwc = FakeProvider("lnbits", HANG), FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=time.monotonic, policy=policy, deadline_seconds=0.3)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert lnbits.creates == 1


async def test_overall_deadline_is_respected():
    """Attempt timeouts shrink to the time left and providers beyond the deadline are not tried."""
    clock = FakeClock()
    down = ProviderUnavailable("502")
    lnbits = FakeProvider("lnbits", down, clock=clock, cost=1.0)
    nwc = FakeProvider("nwc", down, clock=clock, cost=1.0)
    test = FakeProvider("test", clock=clock)
    router = make_router(lnbits, nwc, test, clock=clock, deadline_seconds=3.0)
    attempt = Attempt()
    with pytest.raises(NoProviderAvailable) as info:
        await router.run_create(attempt)
    # 1.5 s default; the retry leaves nwc its 1.5 s; nwc gets what is left of the 3 s.
    assert attempt.timeouts == [("lnbits", 1.5), ("lnbits", 0.5), ("nwc", 1.0)]
    assert test.creates == 0
    assert info.value.reasons["test"] == "not tried: deadline of 3 s reached"


async def test_hung_providers_cannot_exceed_the_deadline():
    """Even when every provider hangs, run_create gives up at the overall deadline."""
    policy = AttemptTimeoutPolicy(floor=0.03, default=0.15, ceiling=0.15)
    providers = [FakeProvider(n, HANG) for n in ("lnbits", "nwc", "test")]
    router = make_router(*providers, clock=time.monotonic, policy=policy, deadline_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(NoProviderAvailable) as info:
        await router.run_create(Attempt())
    assert time.monotonic() - started < 0.3
    assert info.value.reasons["lnbits"] == "provider_unavailable: timed out after 0.15 s"
    assert info.value.reasons["test"].startswith("not tried")


async def test_all_fail_gives_one_reason_per_provider():
    """When nobody can serve, NoProviderAvailable gives each provider's reason in priority order."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits")
    nwc = FakeProvider("nwc", ProviderUnavailable("connection refused"))
    test = FakeProvider("test", InvalidInvoice("amount mismatch"))
    router = make_router(lnbits, nwc, test, clock=clock)
    trip(router, "lnbits")
    records = []
    with pytest.raises(NoProviderAvailable) as info:
        await router.run_create(Attempt(), on_attempt=records.append)
    assert info.value.reasons == {
        "lnbits": "circuit open, retry in 30 s",
        "nwc": "provider_unavailable: connection refused",
        "test": "invalid_invoice: amount mismatch",
    }
    assert list(info.value.reasons) == ["lnbits", "nwc", "test"]
    assert [r.outcome for r in records] == [Outcome.SKIPPED, Outcome.FAILURE, Outcome.FAILURE,
                                            Outcome.FAILURE]


async def test_flaky_provider_is_moved_behind_the_others():
    """A provider with a low recent success rate is tried after the others until stats age out."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("503"))
    nwc = FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock, threshold=100, min_calls=5)
    for _ in range(3):
        await router.run_create(Attempt())
    assert lnbits.creates == 6
    assert names(router.plan()) == ["nwc", "lnbits"]
    assert (await router.run_create(Attempt())).provider == "nwc"
    assert lnbits.creates == 6
    assert router.snapshot()["lnbits"]["demoted"] == "recent success rate 0%"
    clock.advance(301)
    assert names(router.plan()) == ["lnbits", "nwc"]


async def test_slow_provider_is_moved_behind_the_others():
    """A provider whose recent p95 latency exceeds slow_after goes behind faster ones."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", clock=clock, cost=1.2)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock, slow_after=1.0, min_calls=5)
    for _ in range(5):
        assert (await router.run_create(Attempt())).provider == "lnbits"
    assert names(router.plan()) == ["nwc", "lnbits"]


async def test_last_resort_provider_stays_behind_degraded_real_ones():
    """The test provider is never preferred to a real provider, however degraded that one is."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("503"))
    router = make_router(lnbits, FakeProvider("test"), clock=clock, threshold=100, min_calls=5,
                         last_resort=frozenset({"test"}))
    for _ in range(3):
        assert (await router.run_create(Attempt())).provider == "test"
    router.mark_health("lnbits", False)
    assert names(router.plan()) == ["lnbits", "test"]


async def test_unhealthy_probe_goes_after_healthy_and_degraded_ones():
    """A provider the probe marked unhealthy is planned after healthy and degraded ones."""
    clock = FakeClock()
    nwc = FakeProvider("nwc", ProviderUnavailable("relay down"))
    router = make_router(nwc, FakeProvider("lnbits"), FakeProvider("test"), clock=clock,
                         threshold=100, min_calls=5)
    for _ in range(3):
        assert (await router.run_create(Attempt())).provider == "lnbits"
    assert names(router.plan()) == ["lnbits", "test", "nwc"]
    router.mark_health("lnbits", False)
    assert names(router.plan()) == ["test", "nwc", "lnbits"]
    router.mark_health("lnbits", True)
    assert names(router.plan()) == ["lnbits", "test", "nwc"]


async def test_half_open_trial_success_closes_the_breaker():
    """After the cooldown a create is the trial call, and its success closes the breaker."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits")
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    trip(router, "lnbits")
    clock.advance(30)
    result = await router.run_create(Attempt())
    assert result.provider == "lnbits"
    assert router.breaker("lnbits").state is BreakerState.CLOSED


async def test_rejected_trial_gives_the_slot_back():
    """A rejection during the half-open trial frees the slot for the next request."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderRejected("memo too long"))
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    trip(router, "lnbits")
    clock.advance(30)
    await router.run_create(Attempt())
    assert router.breaker("lnbits").state is BreakerState.HALF_OPEN
    assert names(router.plan()) == ["lnbits", "nwc"]


async def test_lookups_never_fail_over():
    """A lookup is only ever asked of the issuing provider, retried, then its error raised."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("503"))
    nwc = FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock, threshold=100, lookup_attempts=3)
    with stamina.set_testing(True, attempts=3), pytest.raises(ProviderUnavailable):
        await router.run_lookup("lnbits", lambda p: p.invoice_status("ab" * 32))
    assert lnbits.lookups == 3
    assert nwc.lookups == 0


async def test_failed_lookups_do_not_open_the_create_breaker():
    """A burst of failing lookups leaves the breaker that gates creates closed."""
    lnbits = FakeProvider("lnbits", ProviderUnavailable("rate-limited: too many queries"))
    router = make_router(lnbits, clock=FakeClock(), threshold=2, lookup_attempts=1)
    for _ in range(5):
        with stamina.set_testing(True, attempts=1), pytest.raises(ProviderUnavailable):
            await router.run_lookup("lnbits", lambda p: p.invoice_status("ab" * 32))
    assert router.breaker("lnbits").state is BreakerState.CLOSED


async def test_lookup_ignores_an_open_breaker():
    """An open breaker does not stop a lookup (nobody else can answer it), nor is it reset by one."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits")
    router = make_router(lnbits, clock=clock)
    trip(router, "lnbits")
    records = []
    status = await router.run_lookup("lnbits", lambda p: p.invoice_status("ab" * 32),
                                     on_attempt=records.append)
    assert status.state is PaymentState.PAID
    assert router.breaker("lnbits").state is BreakerState.OPEN
    assert [(r.operation, r.outcome) for r in records] == [("invoice_status", Outcome.SUCCESS)]


async def test_lookup_at_an_unconfigured_provider_is_unavailable():
    """Looking up at a provider that is no longer configured raises ProviderUnavailable."""
    router = make_router(FakeProvider("lnbits"), clock=FakeClock())
    with pytest.raises(ProviderUnavailable, match="not configured"):
        await router.run_lookup("cln", lambda p: p.invoice_status("ab" * 32))


async def test_router_hook_gets_every_attempt_and_its_failure_is_harmless():
    """The router's on_attempt hook sees each record; a hook that raises does not fail a create."""
    clock = FakeClock()
    seen = []

    def hook(record):
        seen.append(record)
        raise RuntimeError("metrics store down")

    router = make_router(FakeProvider("lnbits", InvalidInvoice("bad")), FakeProvider("nwc"),
                         clock=clock, on_attempt=hook)
    result = await router.run_create(Attempt())
    assert result.provider == "nwc"
    assert [r.provider for r in seen] == ["lnbits", "nwc"]
    assert all(r.operation == "create_invoice" for r in seen)


async def test_snapshot_reports_each_provider():
    """snapshot() gives breaker state, health, success rate and latency percentiles per provider."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", clock=clock, cost=0.2)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock)
    for _ in range(4):
        await router.run_create(Attempt())
    router.mark_health("nwc", True)
    snap = router.snapshot()
    assert list(snap) == ["lnbits", "nwc"]
    assert snap["lnbits"]["breaker"]["state"] == "closed"
    assert snap["lnbits"]["success_rate"] == 1.0
    assert snap["lnbits"]["p95_s"] == pytest.approx(0.2)
    assert snap["lnbits"]["calls"] == 4
    assert snap["nwc"]["healthy"] is True
    assert snap["nwc"]["success_rate"] is None


# -- recovery: a healthy probe lifts a demotion; the panic rule ------------------------------


async def test_healthy_probe_gives_a_demoted_provider_its_place_back_at_once():
    """A provider demoted for failed creates is first again as soon as a probe says it is
    healthy, not only once its failures age out (300 s)."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", *[ProviderUnavailable("503")] * 6, OK)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock, threshold=100, min_calls=5)
    for _ in range(3):
        assert (await router.run_create(Attempt())).provider == "nwc"
    assert names(router.plan()) == ["nwc", "lnbits"]
    clock.advance(10)
    router.mark_health("lnbits", True)
    assert names(router.plan()) == ["lnbits", "nwc"]
    assert router.snapshot()["lnbits"]["demoted"] is None
    assert (await router.run_create(Attempt())).provider == "lnbits"


async def test_healthy_probe_keeps_the_evidence_of_slow_answers():
    """A healthy probe forgets failures, not the latencies of real answers: a slow provider
    stays behind the fast one."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", clock=clock, cost=1.2)
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock, slow_after=1.0, min_calls=5)
    for _ in range(5):
        await router.run_create(Attempt())
    router.mark_health("lnbits", True)
    assert names(router.plan()) == ["nwc", "lnbits"]


async def test_unhealthy_probe_forgets_nothing():
    """An unhealthy probe leaves the failed calls counted."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("503"))
    router = make_router(lnbits, FakeProvider("nwc"), clock=clock, threshold=100, min_calls=5)
    for _ in range(3):
        await router.run_create(Attempt())
    router.mark_health("lnbits", False)
    assert router.snapshot()["lnbits"]["calls"] == 6


async def test_when_every_breaker_is_open_the_first_out_of_cool_down_is_tried():
    """With every breaker open, the provider whose cool-down ends first is tried at once (a
    half-open trial), and its success closes its breaker."""
    clock = FakeClock()
    lnbits, nwc = FakeProvider("lnbits"), FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock)
    trip(router, "nwc")
    clock.advance(10)
    trip(router, "lnbits")  # opened later: its cool-down ends 10 s after nwc's
    clock.advance(5)
    plan = router.plan()
    assert (names(plan), plan.panic) == (["nwc"], "nwc")
    assert plan.skipped == {"lnbits": "circuit open, retry in 25 s"}
    result = await router.run_create(Attempt())
    assert result.provider == "nwc" and nwc.creates == 1 and lnbits.creates == 0
    assert router.breaker("nwc").state is BreakerState.CLOSED
    assert router.breaker("lnbits").state is BreakerState.OPEN


async def test_a_single_recovered_provider_serves_before_its_cool_down_ends():
    """With one provider whose breaker opened, the next request is its trial: once it has
    recovered, customers are served at once instead of refused for the whole cool-down."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", *[ProviderUnavailable("refused")] * 3, OK)
    router = make_router(lnbits, clock=clock, threshold=3)
    with pytest.raises(NoProviderAvailable):
        await router.run_create(Attempt())  # two calls (one retry)
    with pytest.raises(NoProviderAvailable):
        await router.run_create(Attempt())  # the third failure opens the breaker
    assert router.breaker("lnbits").state is BreakerState.OPEN
    clock.advance(1)
    result = await router.run_create(Attempt())
    assert result.provider == "lnbits"
    assert router.breaker("lnbits").state is BreakerState.CLOSED


async def test_a_still_dead_provider_costs_one_attempt_per_request_under_the_panic_rule():
    """The panic trial of a provider still down is one call, not retried, and its breaker opens
    again with a fresh cool-down."""
    clock = FakeClock()
    lnbits = FakeProvider("lnbits", ProviderUnavailable("refused"))
    router = make_router(lnbits, clock=clock, threshold=1)
    trip(router, "lnbits")
    clock.advance(12)
    with pytest.raises(NoProviderAvailable) as info:
        await router.run_create(Attempt())
    assert lnbits.creates == 1
    assert info.value.reasons == {"lnbits": "provider_unavailable: refused"}
    breaker = router.breaker("lnbits")
    assert breaker.state is BreakerState.OPEN and breaker.retry_in() == 30


async def test_the_panic_trial_is_one_call_at_a_time():
    """While a panic trial is in flight, other requests are refused without calling anyone."""
    clock = FakeClock()
    release = asyncio.Event()

    class Slow(FakeProvider):
        async def create_invoice(self, **kwargs):
            self.creates += 1
            await release.wait()
            return ProviderInvoice("lnbc-slow", "ab" * 32, 1000, self.name)

    lnbits, nwc = Slow("lnbits"), FakeProvider("nwc")
    router = make_router(lnbits, nwc, clock=clock)
    trip(router, "lnbits")
    clock.advance(1)
    trip(router, "nwc")
    first = asyncio.create_task(router.run_create(Attempt()))
    for _ in range(100):  # let the first request reach the provider
        if lnbits.creates:
            break
        await asyncio.sleep(0)
    assert lnbits.creates == 1
    for _ in range(3):
        with pytest.raises(NoProviderAvailable) as info:
            await router.run_create(Attempt())
        assert info.value.reasons["lnbits"] == "circuit half-open, trial call in progress"
    assert lnbits.creates == 1 and nwc.creates == 0
    release.set()
    assert (await first).provider == "lnbits"
    assert router.breaker("lnbits").state is BreakerState.CLOSED


async def test_panic_rule_prefers_real_providers_to_the_last_resort():
    """Under the panic rule a last-resort provider (the demo test provider) is tried only when
    it is the only one."""
    clock = FakeClock()
    lnbits, test = FakeProvider("lnbits"), FakeProvider("test")
    router = make_router(lnbits, test, clock=clock, last_resort=frozenset({"test"}))
    trip(router, "lnbits")
    clock.advance(20)
    trip(router, "test")
    assert router.plan().panic == "lnbits"
