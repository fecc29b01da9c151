"""What a failed provider call says about the provider: the one classification of failures.

The circuit breaker (:mod:`lngate.resilience.breaker`), the router's recent statistics
(:mod:`lngate.resilience.router`) and the alert rules all decide with this module, so they agree
by construction:

=================================  =========================  =======  ===========  ======
what was raised                    kind                       breaker  router stats alerts
=================================  =========================  =======  ===========  ======
``ProviderUnavailable`` (down,     ``OUTAGE``                 counts   failure      failure
hung, timed out, 5xx, 429, a
malformed answer),
``InvalidInvoice``, any exception
outside the tree (a bug)
``ProviderAuthFailed``             ``CREDENTIALS``            no       failure      failure
``ProviderRejected``               ``REFUSAL``                no       not counted  not counted
``GatewayOverloaded`` (our own     ``OVERLOAD``               no       not counted  not counted
event loop lagged the call out
of its time)
``CancelledError`` and other       ``ABANDONED``              no       not counted  not counted
``BaseException``\\s
=================================  =========================  =======  ===========  ======

Why a refused key does not open the breaker: it is a configuration problem, not an outage. A
cool-down cannot fix it, and an open breaker would hide it behind "circuit open" messages and
outage alerts, then flap open and half-open forever. It still counts as a failure in the
statistics (the provider goes behind the others) and in the alert rules (an operator must
act). A refusal of one request (an amount the provider does not take) says nothing about the
provider at all. Nor does a call that ran out of time while our own event loop lagged
(:mod:`lngate.resilience.looplag`): under CPU saturation an instantaneous provider's answer can
wait unread past the attempt's timeout, and counting that would open the breaker on a healthy
provider and refuse every customer for the cool-down. Such an attempt is recorded as skipped.

Where only the error's ``code`` is known (attempt records, ``provider_calls``), use
:func:`classify_code`: it is derived from the same classes, so a code and its exception always
get the same kind.
"""

from __future__ import annotations

import enum

from lngate.errors import GatewayOverloaded, LngateError, ProviderAuthFailed, ProviderRejected

INTERNAL_ERROR = "internal_error"
"""The code recorded for an exception outside the error tree (a bug)."""


class FailureKind(enum.StrEnum):
    """What a failed call says about the provider (see the module's table)."""

    OUTAGE = "outage"
    CREDENTIALS = "credentials"
    REFUSAL = "refusal"
    OVERLOAD = "overload"
    ABANDONED = "abandoned"

    @property
    def opens_breaker(self) -> bool:
        """Whether the failure counts towards opening the provider's circuit breaker."""
        return self is FailureKind.OUTAGE

    @property
    def counts_against_provider(self) -> bool:
        """Whether it is a failure in the router's statistics and the alert rules."""
        return self in (FailureKind.OUTAGE, FailureKind.CREDENTIALS)


def classify(exc: BaseException) -> FailureKind:
    """The kind of failure ``exc`` is (see the module's table)."""
    if not isinstance(exc, Exception):
        return FailureKind.ABANDONED
    return _classify_type(type(exc))


def classify_code(code: str | None) -> FailureKind:
    """The kind of failure an error ``code`` stands for; an unknown code is an ``OUTAGE``, like
    an exception outside the tree."""
    for cls in _error_classes():
        if cls.code == code:
            return _classify_type(cls)
    return FailureKind.OUTAGE


def error_code(exc: BaseException) -> str:
    """The code recorded for ``exc``: its ``code`` in the tree, else ``internal_error``."""
    return exc.code if isinstance(exc, LngateError) else INTERNAL_ERROR


def _classify_type(cls: type[BaseException]) -> FailureKind:
    if issubclass(cls, ProviderAuthFailed):
        return FailureKind.CREDENTIALS
    if issubclass(cls, ProviderRejected):
        return FailureKind.REFUSAL
    if issubclass(cls, GatewayOverloaded):
        return FailureKind.OVERLOAD
    return FailureKind.OUTAGE


def _error_classes() -> list[type[LngateError]]:
    """Every class of the tree, subclasses first (a subclass may share its parent's code)."""
    found: list[type[LngateError]] = []
    pending: list[type[LngateError]] = [LngateError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found[::-1]
