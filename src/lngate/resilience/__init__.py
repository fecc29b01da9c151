"""Resilience: circuit breakers, retry rules, time budgets and the provider router.

Imports only :mod:`lngate.domain`, :mod:`lngate.errors`, :mod:`lngate.providers.base`, the
standard library and stamina; everything time-related takes an injected clock.
"""

from lngate.resilience.breaker import BreakerState, CircuitBreaker, counts_for_breaker
from lngate.resilience.deadline import (
    AttemptTimeoutPolicy,
    Clock,
    Deadline,
    LagSource,
    LatencyWindow,
    bounded,
    is_timeout,
)
from lngate.resilience.looplag import LoopLagMonitor
from lngate.resilience.failures import FailureKind, classify, classify_code
from lngate.resilience.retry import is_transient, retry_read
from lngate.resilience.router import (
    AttemptRecord,
    Outcome,
    RoutePlan,
    RouteResult,
    Router,
)

__all__ = [
    "AttemptRecord",
    "AttemptTimeoutPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "FailureKind",
    "LagSource",
    "LatencyWindow",
    "LoopLagMonitor",
    "Outcome",
    "RoutePlan",
    "RouteResult",
    "Router",
    "bounded",
    "classify",
    "classify_code",
    "counts_for_breaker",
    "is_timeout",
    "is_transient",
    "retry_read",
]
