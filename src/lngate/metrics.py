"""Prometheus metrics of one gateway process, on a registry the gateway owns (not the global one).

Families (all prefixed ``lngate_``):

- ``http_requests_total{route,method,status}`` and ``http_request_duration_seconds{route,method}``
  (``route`` is the route template, ``unmatched`` for unknown paths);
- ``provider_calls_total{provider,operation,outcome}`` and
  ``provider_call_duration_seconds{provider,operation}`` (skipped calls are counted, not timed);
- ``provider_up{provider}`` (1 healthy, 0 unhealthy by the latest probe; absent before one) and
  ``provider_probe_duration_seconds{provider}``;
- ``circuit_breaker_state{provider,state}`` (1 for the current state, 0 for the others);
- ``invoices_created_total{provider}``: invoices issued and validated by this process;
- ``invoices_settled{provider}``: invoices paid, counted in the database (the same value on
  every instance: aggregate with ``max``, not ``sum``);
- ``outbox_backlog``: outbox messages waiting to be sent (database, when the outbox exists);
- ``leader``: 1 on the instance that runs the work done once (probes, alerts, roll-ups,
  retention, reconciler), 0 on the others (``sum`` over instances is 1);
- ``event_loop_lag_max_seconds``: the largest lateness of the event loop over the last 15 s,
  and ``event_loop_lag_seconds_total``: the summed lateness (its ``rate`` is the share of time
  the loop ran late: the process is overloaded), see :mod:`lngate.resilience.looplag`;
- ``creates_in_flight`` and ``admission_refused_total{path}``: creates (create-invoice,
  orders) being served, and those refused at the door because ``MAX_CREATES_IN_FLIGHT`` were
  (:mod:`lngate.web.admission`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
BREAKER_STATES = ("closed", "open", "half_open")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The metric families; call the ``observe_*``/``set_*`` methods, then :meth:`render`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("lngate_http_requests", "HTTP requests answered.",
                                     ["route", "method", "status"], registry=r)
        self.http_latency = Histogram("lngate_http_request_duration_seconds",
                                      "Time to answer an HTTP request.", ["route", "method"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.provider_calls = Counter("lngate_provider_calls", "Calls to providers by outcome.",
                                      ["provider", "operation", "outcome"], registry=r)
        self.provider_latency = Histogram("lngate_provider_call_duration_seconds",
                                          "Duration of provider calls (skipped ones excluded).",
                                          ["provider", "operation"], buckets=LATENCY_BUCKETS,
                                          registry=r)
        self.provider_up = Gauge("lngate_provider_up",
                                 "1 when the latest health probe said healthy, else 0.",
                                 ["provider"], registry=r)
        self.probe_latency = Gauge("lngate_provider_probe_duration_seconds",
                                   "Duration of the latest health probe.", ["provider"], registry=r)
        self.breaker_state = Gauge("lngate_circuit_breaker_state",
                                   "1 for the breaker's current state, 0 for the others.",
                                   ["provider", "state"], registry=r)
        self.invoices_created = Counter("lngate_invoices_created",
                                        "Invoices issued and validated by this process.",
                                        ["provider"], registry=r)
        self.invoices_settled = Gauge("lngate_invoices_settled",
                                      "Paid invoices in the database.", ["provider"], registry=r)
        self.outbox_backlog = Gauge("lngate_outbox_backlog",
                                    "Outbox messages waiting to be sent.", registry=r)
        self.leader = Gauge("lngate_leader",
                            "1 when this instance leads (runs the work done once), else 0.",
                            registry=r)

        self.loop_lag_max = Gauge("lngate_event_loop_lag_max_seconds",
                                  "Largest event-loop lateness over the last 15 s.", registry=r)
        self.creates_in_flight = Gauge("lngate_creates_in_flight",
                                       "Creates (create-invoice, orders) being served.",
                                       registry=r)
        self.admission_refused = Counter("lngate_admission_refused",
                                         "Creates refused at the door: too many in flight.",
                                         ["path"], registry=r)
        # Each request and provider call finds its labelled series here: looking them up
        # through ``labels()`` every time was a visible share of a create's CPU.
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._call_children: dict[tuple[str, str, str],
                                  tuple[Counter, Histogram, Counter | None]] = {}

    def watch_loop_lag(self, recent_max: Callable[[], float],
                       total: Callable[[], float]) -> None:
        """Read the event loop's lag from a monitor at each scrape."""
        self.loop_lag_max.set_function(recent_max)
        self.registry.register(_LagTotal(total))

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:  # bounded: route templates (or "unmatched") x methods x statuses
            children = self._http_children[key] = (
                self.http_requests.labels(route, method, str(status)),
                self.http_latency.labels(route, method))
        children[0].inc()
        children[1].observe(seconds)

    def observe_provider_call(self, provider: str, operation: str, outcome: str,
                              seconds: float) -> None:
        """Count one provider call (and time it unless it was skipped)."""
        key = (provider, operation, outcome)
        children = self._call_children.get(key)
        if children is None:  # bounded: providers x operations x outcomes
            children = self._call_children[key] = (
                self.provider_calls.labels(provider, operation, outcome),
                self.provider_latency.labels(provider, operation),
                self.invoices_created.labels(provider)
                if operation == "create_invoice" and outcome == "success" else None)
        calls, latency, created = children
        calls.inc()
        if outcome != "skipped":
            latency.observe(seconds)
        if created is not None:
            created.inc()

    def set_probe(self, provider: str, healthy: bool, seconds: float) -> None:
        """Record the latest probe of ``provider``."""
        self.provider_up.labels(provider).set(1 if healthy else 0)
        self.probe_latency.labels(provider).set(seconds)

    def set_breaker(self, provider: str, state: str) -> None:
        """Record the breaker state of ``provider``."""
        for candidate in BREAKER_STATES:
            self.breaker_state.labels(provider, candidate).set(1 if candidate == state else 0)

    def set_leader(self, leading: bool) -> None:
        """Record whether this instance leads."""
        self.leader.set(1 if leading else 0)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class _LagTotal:
    """``lngate_event_loop_lag_seconds_total``, read from the monitor at each scrape."""

    def __init__(self, total: Callable[[], float]) -> None:
        self._total = total

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("lngate_event_loop_lag_seconds",
                                  "Summed event-loop lateness.", value=self._total())
