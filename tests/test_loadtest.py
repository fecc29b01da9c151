"""`lngate loadtest` against a real `lngate serve` process: every scenario passes at a low rate
and is recorded in the gateway's history, a missed objective exits non-zero, a non-loopback
target is refused, a gateway not in demo mode is detected before anything is created; and the
open-loop scheduler keeps its rate when the target is slow."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lngate.loadtest.schedule import run_open_loop
from tests.test_serve import Served, free_port, served

ADMIN_TOKEN = "admin-token-for-the-load-test-0123"
WEBHOOK_SECRET = "webhook-secret-for-the-load-test-0123"
GATEWAY_ENV = {"ADMIN_TOKEN": ADMIN_TOKEN, "LNBITS_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "RATE_LIMIT": "100000/minute"}


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A gateway in pure demo mode, with an admin token and a webhook secret."""
    with served(tmp_path_factory.mktemp("demo"), **GATEWAY_ENV) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def real_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A gateway with a real provider configured (LNbits on a port nobody listens on)."""
    with served(tmp_path_factory.mktemp("real"),
                LNBITS_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                LNBITS_INVOICE_KEY="invoice-key-nobody-checks", **GATEWAY_ENV) as gateway:
        yield gateway


def loadtest(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run `lngate loadtest ARGS` as the operator would."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("ADMIN_TOKEN", "LNBITS_WEBHOOK_SECRET")}
    return subprocess.run([sys.executable, "-m", "lngate", "loadtest", *args],
                          env={**base, **env}, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def history(gateway: Served) -> list[dict]:  # type: ignore[type-arg]
    answer = httpx.get(f"{gateway.url}/api/admin/loadtests",
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["runs"]


@pytest.mark.parametrize("scenario", ["health", "create-invoice", "order-and-pay", "webhook"])
def test_each_scenario_passes_at_a_low_rate_and_is_recorded(
    demo_gateway: Served, tmp_path: Path, scenario: str,
) -> None:
    """A short run at 4 requests a second meets its objectives, exits 0, writes its JSON
    report and appears in the gateway's load test history."""
    report_path = tmp_path / "report.json"
    done = loadtest(scenario, "--url", demo_gateway.url, "--rate", "4", "--duration", "2",
                    "--json-report", str(report_path), ADMIN_TOKEN=ADMIN_TOKEN,
                    LNBITS_WEBHOOK_SECRET=WEBHOOK_SECRET)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["demo"]
    assert (report["requests"], report["errors"], report["schedule"]["sent"]) == (8, 0, 8)
    assert report["latency_ms"]["overall"]["p99"] is not None
    assert "recorded on the gateway" in done.stderr
    latest = history(demo_gateway)[0]
    assert (latest["scenario"], latest["requests"], latest["passed"]) == (scenario, 8, True)
    assert latest["summary"]["started_at"] == report["started_at"]


def test_a_missed_objective_exits_non_zero(demo_gateway: Served, tmp_path: Path) -> None:
    """An objective no gateway can meet (p99 under a microsecond) fails the run: exit 1."""
    report_path = tmp_path / "report.json"
    done = loadtest("health", "--url", demo_gateway.url, "--rate", "4", "--duration", "1",
                    "--slo-health-ms", "0.001", "--json-report", str(report_path))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert not report["passed"]
    assert [v["passed"] for v in report["objectives"]] == [False, True]
    assert "MISSED" in done.stdout


def test_errors_over_the_allowed_rate_exit_non_zero(demo_gateway: Served) -> None:
    """Webhook calls with a wrong secret are all errors (401): the error-rate objective fails."""
    done = loadtest("webhook", "--url", demo_gateway.url, "--rate", "4", "--duration", "1",
                    ADMIN_TOKEN=ADMIN_TOKEN, LNBITS_WEBHOOK_SECRET="not-the-gateway-secret")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "http_401" in done.stdout


def test_a_non_loopback_target_is_refused() -> None:
    """A target outside loopback is refused (exit 2) unless --allow-remote is given."""
    done = loadtest("health", "--url", "http://192.0.2.10:8000", "--duration", "1")
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "--allow-remote" in done.stderr


def test_a_gateway_not_in_demo_mode_is_asked_about_before_real_invoices(
    real_gateway: Served,
) -> None:
    """Against a gateway with a real provider, create-invoice says how many REAL invoices it
    would create and stops when the operator declines; nothing reaches the create route."""
    done = loadtest("create-invoice", "--url", real_gateway.url, "--rate", "5", "--duration",
                    "2", stdin="n\n")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "would create 10 REAL invoices" in done.stdout + done.stderr
    assert "not confirmed" in done.stderr
    metrics = httpx.get(f"{real_gateway.url}/metrics", timeout=10).text
    served = [line for line in metrics.splitlines()
              if line.startswith("lngate_http_requests_total{")
              and 'route="/api/create-invoice"' in line]
    assert served == []


def test_demo_only_scenarios_are_refused_on_a_real_gateway(real_gateway: Served) -> None:
    """order-and-pay needs the demo wallet: against a real gateway it is refused at once."""
    done = loadtest("order-and-pay", "--url", real_gateway.url, "--duration", "1", "--yes")
    assert done.returncode == 2
    assert "not in demo mode" in done.stderr


def test_the_history_api_refuses_bad_input_and_strangers(demo_gateway: Served,
                                                        real_gateway: Served) -> None:
    """The history is admin-only, a malformed report is a 400 (never a 500), and the quiet
    demo payment exists in demo mode only."""
    url = f"{demo_gateway.url}/api/admin/loadtests"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.post(url, json={}, headers={"Authorization": "Bearer nope"},
                      timeout=10).status_code == 401
    for body in ([], {"scenario": "health"}, {"scenario": "Bad Name!"},
                 {"scenario": "health", "started_at": "yesterday"}):
        answer = httpx.post(url, json=body, headers=admin, timeout=10)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_loadtest"
    assert httpx.get(url, params={"limit": "0"}, headers=admin, timeout=10).status_code == 400
    quiet = "/api/admin/loadtests/demo-payments/" + "ab" * 32
    assert httpx.post(demo_gateway.url + quiet, headers=admin, timeout=10).status_code == 404
    assert httpx.post(real_gateway.url + quiet, headers=admin,
                      timeout=10).json()["code"] == "http_404"


async def test_the_open_loop_keeps_its_rate_when_the_target_is_slow() -> None:
    """With a target taking 0.5 s per request, 40 requests at 40/s all leave within about a
    second, on schedule (a closed loop would need 20 s)."""
    sent_at: list[float] = []

    async def slow_target(_index: int) -> None:
        sent_at.append(time.monotonic())
        await asyncio.sleep(0.5)

    started = time.monotonic()
    report = await run_open_loop(slow_target, rate=40, duration=1)
    assert report.sent == 40 and report.dropped == 0
    assert sent_at[-1] - started < 1.2
    assert report.peak_in_flight >= 15  # the earlier ones had not answered
    for i, moment in enumerate(sent_at):
        assert moment - started >= i / 40 - 0.005  # never early


async def test_the_open_loop_drops_rather_than_waits_beyond_its_bound() -> None:
    """With max_in_flight reached, a request due is counted as dropped, not delayed."""
    dropped: list[int] = []

    async def stuck(_index: int) -> None:
        await asyncio.sleep(5)

    report = await run_open_loop(stuck, rate=50, duration=0.4, max_in_flight=5,
                                 drain_timeout=0.1, on_drop=dropped.append)
    assert (report.sent, report.dropped, report.unfinished) == (5, 15, 5)
    assert dropped == list(range(5, 20))
