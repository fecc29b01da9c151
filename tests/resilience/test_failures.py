"""The one classification of failed provider calls, shared by breaker, router and alerts."""

import asyncio

import pytest

from lngate.errors import (
    InvalidInvoice,
    LngateError,
    NoProviderAvailable,
    ProviderAuthFailed,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.resilience.breaker import counts_for_breaker
from lngate.resilience.failures import FailureKind, classify, classify_code, error_code


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ProviderUnavailable("503"), FailureKind.OUTAGE),
        (InvalidInvoice("payee mismatch"), FailureKind.OUTAGE),
        (KeyError("payment_hash"), FailureKind.OUTAGE),
        (ProviderAuthFailed("401"), FailureKind.CREDENTIALS),
        (ProviderRejected("memo too long"), FailureKind.REFUSAL),
        (asyncio.CancelledError(), FailureKind.ABANDONED),
    ],
)
def test_each_failure_has_one_kind(exc: BaseException, kind: FailureKind) -> None:
    """Outages, refused keys, refusals and cancellations are told apart as documented."""
    assert classify(exc) is kind


def test_what_each_kind_counts_for() -> None:
    """Only an outage opens the breaker; an outage or a refused key counts against the
    provider in the router's statistics and the alert rules."""
    assert [k for k in FailureKind if k.opens_breaker] == [FailureKind.OUTAGE]
    assert [k for k in FailureKind if k.counts_against_provider] == [
        FailureKind.OUTAGE, FailureKind.CREDENTIALS,
    ]


@pytest.mark.parametrize(
    "exc",
    [ProviderError("x"), ProviderUnavailable("x"), ProviderRejected("x"),
     ProviderAuthFailed("x"), InvalidInvoice("x"), NoProviderAvailable({}), RuntimeError("bug")],
)
def test_a_code_and_its_exception_get_the_same_kind(exc: Exception) -> None:
    """classify_code(error_code(exc)) equals classify(exc) for every error, so what reads only
    the recorded codes (the alert rules) agrees with what sees the exceptions."""
    assert error_code(exc) == (exc.code if isinstance(exc, LngateError) else "internal_error")
    assert classify_code(error_code(exc)) is classify(exc)


def test_unknown_codes_are_outages() -> None:
    """A code outside the tree is counted like an exception outside it: an outage."""
    assert classify_code("timeout") is FailureKind.OUTAGE
    assert classify_code(None) is FailureKind.OUTAGE


def test_the_breaker_predicate_is_the_classification() -> None:
    """counts_for_breaker says yes exactly for outages."""
    for exc in (ProviderUnavailable("x"), InvalidInvoice("x"), ValueError("bug")):
        assert counts_for_breaker(exc)
    for exc in (ProviderRejected("x"), ProviderAuthFailed("x"), asyncio.CancelledError()):
        assert not counts_for_breaker(exc)
