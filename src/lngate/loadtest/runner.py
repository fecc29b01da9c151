"""One ``lngate loadtest`` run: check the target, prepare, drive it, judge, report, record.

Exit status: 0 every objective met; 1 an objective missed; 2 the run was refused or could not
start (a non-loopback target without ``--allow-remote``, a gateway that does not answer, a
demo-only scenario against a real gateway, real invoices not confirmed, missing credentials).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lngate import __version__
from lngate.loadtest.results import Objective, Results, Verdict
from lngate.loadtest.scenarios import SCENARIOS, Client, Scenario, ScenarioError
from lngate.loadtest.schedule import ScheduleReport, planned_requests, run_open_loop
from lngate.loadtest.target import TargetRefused, is_demo, reachable, require_loopback

EXIT_PASSED, EXIT_MISSED, EXIT_REFUSED = 0, 1, 2
DEFAULT_OBJECTIVES = {"invoice": 3000.0, "webhook": 500.0, "health": 1000.0}
"""p99 targets in ms, from the original plan: invoice < 3 s, webhook < 500 ms, health < 1 s."""
LAG_WARNING_MS = 100.0


@dataclass(frozen=True, slots=True)
class LoadTestOptions:
    """Everything a run needs (the command line's options)."""

    scenario: str
    url: str = "http://127.0.0.1:8000"
    rate: float = 5.0
    duration: float = 30.0
    objective_ms: float | None = None
    """p99 target of the scenario's objective (``None``: its default)."""
    max_error_rate: float = 0.01
    json_report: Path | None = None
    admin_token: str | None = None
    webhook_secret: str | None = None
    allow_remote: bool = False
    assume_yes: bool = False
    timeout: float = 10.0
    max_in_flight: int = 1000
    amount_sats: int = 100


async def run_loadtest(options: LoadTestOptions, *, confirm: Callable[[str], bool],
                       console: Console, errors: Console) -> int:
    """Run the load test; the exit status. ``confirm`` asks the operator a yes/no question."""
    scenario = SCENARIOS[options.scenario](options.amount_sats)
    try:
        await require_loopback(options.url, allow_remote=options.allow_remote)
    except TargetRefused as exc:
        errors.print(f"[red]refused:[/red] {exc}")
        return EXIT_REFUSED
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        problem = await reachable(session, options.url, timeout=options.timeout)
        if problem:
            errors.print(f"[red]cannot load the gateway:[/red] {problem}")
            return EXIT_REFUSED
        demo = await is_demo(session, options.url, timeout=options.timeout)
        planned = planned_requests(options.rate, options.duration)
        refusal = _refusal(scenario, demo, planned, options, confirm)
        if refusal:
            errors.print(f"[red]refused:[/red] {refusal}")
            return EXIT_REFUSED
        client = Client(session, options.url, timeout=options.timeout,
                        admin_token=options.admin_token, webhook_secret=options.webhook_secret)
        try:
            if scenario.name == "webhook":
                errors.print(f"preparing {planned} paid demo orders (not timed)...")
            await scenario.prepare(client, planned)
        except ScenarioError as exc:
            errors.print(f"[red]cannot run {scenario.name}:[/red] {exc}")
            return EXIT_REFUSED
        started_at = datetime.now(UTC)
        results = Results()
        schedule = await _drive(scenario, client, results, options, planned, errors)
        report = build_report(options, scenario, demo, started_at, results, schedule)
        _print_results(console, report, results)
        if options.json_report is not None:
            options.json_report.write_text(json.dumps(report, indent=2))
            errors.print(f"JSON report: {options.json_report}")
        await _record(session, options, report, errors)
    return EXIT_PASSED if report["passed"] else EXIT_MISSED


def _refusal(scenario: Scenario, demo: bool, planned: int, options: LoadTestOptions,
             confirm: Callable[[str], bool]) -> str | None:
    if demo or not scenario.creates_invoices:
        return None
    if scenario.demo_only:
        return (f"{scenario.name} pays invoices at the demo wallet, and {options.url} is not in "
                "demo mode (a real provider is configured)")
    question = (f"{options.url} is NOT in demo mode: this run would create {planned} REAL "
                f"invoices of {options.amount_sats} sats at its provider(s). They cannot be "
                "deleted; unpaid, they expire. Continue?")
    if options.assume_yes or confirm(question):
        return None
    return "not confirmed; nothing was created"


async def _drive(scenario: Scenario, client: Client, results: Results,
                 options: LoadTestOptions, planned: int, errors: Console) -> ScheduleReport:
    async def fire(index: int) -> None:
        results.add(await scenario.run(client, index))

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("{task.fields[live]}"),
                        TimeElapsedColumn(), console=errors, refresh_per_second=4)
    task = progress.add_task(f"{scenario.name} at {options.rate:g}/s", total=planned,
                             live="")

    def refresh() -> None:
        p50, p99 = results.percentile_ms(50), results.percentile_ms(99)
        progress.update(task, completed=results.done, live=(
            f"p50 {_ms(p50)}  p99 {_ms(p99)}  errors {results.error_count}"))

    async def fire_and_show(index: int) -> None:
        await fire(index)
        refresh()

    with progress:
        schedule = await run_open_loop(
            fire_and_show, rate=options.rate, duration=options.duration,
            max_in_flight=options.max_in_flight, drain_timeout=options.timeout * 2,
            on_drop=results.dropped)
        refresh()
    return schedule


def build_report(options: LoadTestOptions, scenario: Scenario, demo: bool,
                 started_at: datetime, results: Results,
                 schedule: ScheduleReport) -> dict[str, Any]:
    """The run's JSON report (also what is recorded on the gateway)."""
    objective = Objective(scenario.objective,
                          options.objective_ms or DEFAULT_OBJECTIVES[scenario.objective],
                          options.max_error_rate)
    verdicts = results.verdicts(objective)
    return {
        "tool": f"lngate loadtest {__version__}", "target": options.url,
        "scenario": scenario.name, "demo": demo, "rate": options.rate,
        "duration_s": options.duration, "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        **results.summary(),
        "schedule": {"planned": schedule.planned, "sent": schedule.sent,
                     "dropped": schedule.dropped, "unfinished": schedule.unfinished,
                     "max_send_lag_ms": round(schedule.max_lag_ms, 3),
                     "peak_in_flight": schedule.peak_in_flight},
        "objectives": [_verdict_json(v) for v in verdicts],
        "passed": all(v.passed for v in verdicts),
        "leaves": scenario.leaves(demo, schedule.sent),
    }


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {"name": verdict.name, "target": verdict.target, "actual": verdict.actual,
            "passed": verdict.passed}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _print_results(console: Console, report: dict[str, Any], results: Results) -> None:
    table = Table(title=f"{report['scenario']}: {report['requests']} requests at "
                        f"{report['rate']:g}/s for {report['duration_s']:g} s "
                        f"({'demo' if report['demo'] else 'REAL provider'})")
    for column in ("", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if not column else "right")
    latency = report["latency_ms"]
    for name, stats in [("all", latency["overall"]), *latency["steps"].items()]:
        table.add_row(name, str(stats["n"]), *(_cell(stats[k]) for k in
                                               ("p50", "p90", "p99", "max")))
    console.print(table)
    if results.errors:
        kinds = ", ".join(f"{kind} × {count}" for kind, count in results.errors.most_common())
        console.print(f"errors: {kinds}")
    schedule = report["schedule"]
    if schedule["max_send_lag_ms"] > LAG_WARNING_MS:
        console.print(f"[yellow]the tester itself fell behind its schedule by up to "
                      f"{schedule['max_send_lag_ms']:.0f} ms (a busy machine): the rate was "
                      "lower than asked at times[/yellow]")
    for verdict in report["objectives"]:
        mark = "[green]met[/green]" if verdict["passed"] else "[red]MISSED[/red]"
        console.print(f"{verdict['name']}: {verdict['actual']} (objective {verdict['target']})"
                      f" {mark}")
    console.print(f"left behind: {report['leaves']}")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def _record(session: aiohttp.ClientSession, options: LoadTestOptions,
                  report: dict[str, Any], errors: Console) -> None:
    """Record the run's summary on the gateway (its history), when an admin token is given."""
    if not options.admin_token:
        errors.print("not recorded on the gateway (no --admin-token / ADMIN_TOKEN)")
        return
    try:
        async with session.post(
            options.url.rstrip("/") + "/api/admin/loadtests", json=report,
            headers={"Authorization": f"Bearer {options.admin_token}"},
            timeout=aiohttp.ClientTimeout(total=options.timeout),
        ) as response:
            body = await response.json(content_type=None)
            if response.status == 201 and isinstance(body, dict):
                errors.print(f"recorded on the gateway as run {body.get('id')} "
                             "(GET /api/admin/loadtests)")
                return
            detail = body.get("error") if isinstance(body, dict) else None
            errors.print(f"[yellow]not recorded: the gateway answered {response.status}"
                         f"{': ' + str(detail) if detail else ''}[/yellow]")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        errors.print(f"[yellow]not recorded: {type(exc).__name__}[/yellow]")
