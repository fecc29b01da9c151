"""deploy/: the Prometheus alert rules and the Grafana dashboard parse, and name only metrics,
labels and label values that a running gateway really exports on ``/metrics``."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import make_settings, running_gateway
from tests.web.payments import order_body

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/lngate.json"

PROMETHEUS_METRICS = {"up"}
"""Made by Prometheus itself for every scrape target, not by the gateway."""
PROMETHEUS_LABELS = {"job", "instance"}
"""Added by Prometheus to every scraped sample."""
FUNCTIONS = {"sum", "min", "max", "avg", "count", "rate", "irate", "increase",
             "histogram_quantile", "min_over_time", "max_over_time", "absent", "clamp_min"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[0-9smhdw:]+\]")
_TOKEN = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_DURATION = re.compile(r"[0-9]+[smhd]")


@dataclass(frozen=True)
class Selector:
    """A metric named in a PromQL expression, with its label matchers ``(label, op, value)``."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of a PromQL expression; raises on an unknown function.

    A small reader for the expressions we write (functions, aggregations with ``by``,
    selectors with matchers, ranges, binary operators), not a PromQL parser.
    """
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    text = _RANGE.sub("", _GROUPING.sub("", expr))
    found = []
    for name, braces, call in _TOKEN.findall(text):
        if call and not braces:
            assert name in FUNCTIONS, f"unknown function {name!r} in {expr!r}"
        elif name not in KEYWORDS:
            found.append(Selector(name, tuple(_MATCHER.findall(braces or ""))))
    return found


def rule_expressions() -> Iterator[tuple[str, str]]:
    """``(alert name, expr)`` for every rule of alerts.yml."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` for every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_alert_rules_are_well_formed() -> None:
    """alerts.yml is YAML in Prometheus' rule-file shape: unique alert names, an expression, a
    severity, a summary and a description for every rule, and valid ``for`` durations."""
    document = yaml.safe_load(RULES.read_text())
    names = []
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            names.append(rule["alert"])
            assert rule["expr"].strip() and selectors(rule["expr"])
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert _DURATION.fullmatch(rule.get("for", "0s")), rule["alert"]
    assert len(names) == len(set(names))
    assert {"LngateProviderFailures", "LngateProviderSlowResponse", "LngateProviderDown",
            "LngateRequestErrors", "LngateOutboxBacklog"} <= set(names)


def test_dashboard_is_well_formed() -> None:
    """lngate.json is a Grafana dashboard: a uid, unique panel ids, panels on the 24-column
    grid, a query in every panel that is not a row, all on the Prometheus data source variable."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    [variable] = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    panels = list(dashboard_panels(dashboard["panels"]))
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${" + variable["name"] + "}"
            assert all(t["expr"].strip() for t in panel["targets"])


def test_the_reader_finds_metrics_and_refuses_unknown_functions() -> None:
    """The expression reader sees every selector (so a misspelt metric would be caught)."""
    found = selectors('sum by (provider) (rate(lngate_typo_total{outcome=~"a|b"}[5m])) > 0.8 '
                      "and on (provider) lngate_other")
    assert found == [Selector("lngate_typo_total", (("outcome", "=~", "a|b"),)),
                     Selector("lngate_other", ())]
    try:
        selectors("rates(lngate_x[5m])")
    except AssertionError as exc:
        assert "rates" in str(exc)
    else:
        raise AssertionError("an unknown function was accepted")


async def scrape(tmp_path: Path) -> str:
    """``/metrics`` of a demo gateway after invoices, an order, a payment and a 404."""
    async with running_gateway(make_settings(tmp_path)) as client:
        assert isinstance(client, httpx.AsyncClient)
        ids = []
        for amount in (21, 210, 2100):
            created = await client.post("/api/create-invoice",
                                        json={"amount": amount, "description": "metrics"})
            ids.append(created.json()["invoice"]["id"])
        assert (await client.post("/api/orders", json=order_body("dazpay"))).status_code == 201
        assert (await client.post(f"/api/demo/pay/{ids[0]}")).status_code == 200
        await client.get("/api/check-invoice", params={"id": ids[1]})
        await client.get("/no-such-page")
        response = await client.get("/metrics")
        assert response.status_code == 200
        return response.text


async def test_every_metric_named_is_exported(tmp_path: Path) -> None:
    """Every metric, label and exact label value the rules and the dashboard name exists in a
    running gateway's /metrics (histogram ``_bucket``/``_count``/``_sum`` and counter ``_total``
    samples included); and the dashboard shows every family the gateway exports."""
    labels: dict[str, set[str]] = defaultdict(set)
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    families = set()
    for family in text_string_to_metric_families(await scrape(tmp_path)):
        families.add(family.name)
        for sample in family.samples:
            labels[sample.name] |= set(sample.labels)
            for label, value in sample.labels.items():
                values[sample.name, label].add(value)
    assert {"lngate_provider_calls_total", "lngate_provider_call_duration_seconds_bucket",
            "lngate_outbox_backlog", "lngate_provider_up"} <= set(labels)
    # counters' and histograms' creation times (``<family>_created``) are not worth a panel
    families -= {f for f in families if f.endswith("_created") and f[:-8] in families}

    used_families = set()
    for source, expr in [*rule_expressions(), *dashboard_expressions()]:
        for selector in selectors(expr):
            if selector.metric in PROMETHEUS_METRICS:
                assert {m[0] for m in selector.matchers} <= PROMETHEUS_LABELS, source
                continue
            assert selector.metric in labels, f"{source}: {selector.metric} is not exported"
            used_families |= {f for f in families if selector.metric.startswith(f)}
            for label, op, value in selector.matchers:
                assert label in labels[selector.metric] | PROMETHEUS_LABELS, \
                    f"{source}: {selector.metric} has no label {label!r}"
                if op == "=" and label in labels[selector.metric]:
                    assert value in values[selector.metric, label], \
                        f"{source}: {selector.metric}{{{label}={value!r}}} never exported"
    dashboard_families = {f for f in families for _, expr in dashboard_expressions()
                          for s in selectors(expr) if s.metric.startswith(f)}
    assert dashboard_families == families, families - dashboard_families
    assert used_families == families
