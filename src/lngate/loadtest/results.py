"""What a load test measured, and its verdict against the service-level objectives.

Latency percentiles are over the requests that succeeded (nearest rank, the gateway's one
definition: :func:`lngate.resilience.deadline.percentile`); failures count in the error rate,
whatever their latency. A request the tester could not send (too many in flight) is an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lngate.resilience.deadline import percentile


@dataclass(frozen=True, slots=True)
class Sample:
    """One request (or flow) of a scenario: its total time, its steps' times, its error."""

    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    """``None`` when it succeeded; else a short kind: ``http_503``, ``timeout``..."""


@dataclass(frozen=True, slots=True)
class Objective:
    """A service-level objective: p99 latency under ``p99_ms``, errors under ``max_error_rate``."""

    name: str
    p99_ms: float
    max_error_rate: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """One objective checked."""

    name: str
    target: str
    actual: str
    passed: bool


class Results:
    """Samples as they arrive, with live figures for the progress line."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.steps: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.done = 0

    def add(self, sample: Sample) -> None:
        """Record one finished request."""
        self.done += 1
        if sample.error is not None:
            self.errors[sample.error] += 1
            return
        self.latencies.append(sample.seconds)
        for step, seconds in sample.steps.items():
            self.steps.setdefault(step, []).append(seconds)

    def dropped(self, _index: int) -> None:
        """Record a request the tester could not send."""
        self.add(Sample(0.0, error="not_sent_too_many_in_flight"))

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile of successful requests, in ms (``None``: none yet)."""
        return percentile(self.latencies, q) * 1000 if self.latencies else None

    def summary(self) -> dict[str, Any]:
        """Counts and latency statistics (ms) overall and per step."""
        return {
            "requests": self.done, "ok": len(self.latencies), "errors": self.error_count,
            "error_rate": self.error_count / self.done if self.done else 0.0,
            "errors_by_kind": dict(self.errors.most_common()),
            "latency_ms": {"overall": _stats(self.latencies),
                           "steps": {name: _stats(values) for name, values in self.steps.items()}},
        }

    def verdicts(self, objective: Objective) -> list[Verdict]:
        """The objective's latency and error-rate checks."""
        p99 = self.percentile_ms(99)
        rate = self.error_count / self.done if self.done else 1.0
        return [
            Verdict(f"{objective.name} p99", f"< {objective.p99_ms:g} ms",
                    "no successful request" if p99 is None else f"{p99:.1f} ms",
                    p99 is not None and p99 < objective.p99_ms),
            Verdict("error rate", f"<= {objective.max_error_rate:.2%}", f"{rate:.2%}",
                    rate <= objective.max_error_rate),
        ]


def _stats(seconds: list[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {"n": len(seconds), "p50": round(percentile(seconds, 50) * 1000, 3),
            "p90": round(percentile(seconds, 90) * 1000, 3),
            "p99": round(percentile(seconds, 99) * 1000, 3),
            "max": round(max(seconds) * 1000, 3),
            "mean": round(sum(seconds) / len(seconds) * 1000, 3)}
