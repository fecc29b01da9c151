#!/usr/bin/env python3
"""Reconciler cost against the number of pending invoices: the previous schedule vs the new one.

For each ``--sizes`` count N, a fresh SQLite database is seeded directly with N unpaid pending
invoices of one hour, created evenly over the last hour, plus the N/6 that expired unpaid in the
last ten minutes (both schedules still check those for a late payment): the steady state of a
shop with N invoices waiting. Then the gateway's own reconciler loop (``run_reconciler``, with
the settings' defaults, built by ``build_gateway`` like ``lngate serve`` does, with the
provider-call recorder running) runs for ``--warmup`` seconds, then is measured for ``--window``
seconds, against the instantaneous LNbits upstream (``_instant_upstream.py``, its own process:
every look-up answers "pending").

* ``old``: the source of ``--old-ref`` (the last commit that re-checked every pending invoice
  every interval), taken with ``git archive``.
* ``new``: the working tree. Its invoices are seeded with the ``next_check_at`` the schedule
  would have given them by now (as if the reconciler had been running), so the window measures
  the steady state, not a start-up backlog.

Each run is its own process; measured there: CPU seconds of that process (``time.process_time``:
every thread, including SQLite's), look-ups (``settle`` calls), passes and the longest one.
Reported per minute of window, and the old/new ratio of the same run. The machine is shared:
CPU seconds and ratios are the figures to quote, not wall-clock times. Writes the raw results to
``benchmarks/results/`` and the chart to ``docs/img/reconciler_curves.png``.

    uv run --frozen python benchmarks/bench_reconciler.py                       # ~15 min
    uv run --frozen python benchmarks/bench_reconciler.py --sizes 10 1000 --window 20 --warmup 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    REPO,
    ManagedProcess,
    clean_env,
    cleanup_src,
    free_port,
    loadavg,
    log,
    machine_info,
    print_table,
    save_results,
    snapshot_src,
)

OLD_REF = "e36f8d1"
"""The last commit whose reconciler re-checked every pending invoice every interval."""
CHART = REPO / "docs" / "img" / "reconciler_curves.png"
INVOICE_SECONDS = 3600
EXPIRED_MARGIN = 600


# ----------------------------------------------------------------------------- one run (child)


async def child(args: argparse.Namespace) -> dict[str, object]:
    """Seed, run the reconciler loop for the window, measure (runs in its own process)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

    from lngate.bootstrap import build_gateway, utcnow
    from lngate.services import reconciler
    from lngate.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-reconciler-"))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite:///{workdir / 'gateway.sqlite3'}",
        lnbits_endpoint=f"http://127.0.0.1:{args.upstream_port}",
        lnbits_invoice_key="bench-invoice-key", lnbits_node_pubkey=args.node_pubkey,
        lightning_test_mode=False, email_folder=workdir / "mail")
    gateway = await build_gateway(settings)
    try:
        seeded_at = time.perf_counter()
        await seed(gateway.db, args.pending, reconciler, scheduled=args.variant == "new")
        seed_seconds = time.perf_counter() - seeded_at

        lookups = 0
        passes: list[float] = []
        real_settle = gateway.settler.settle

        async def counting_settle(payment_hash: str, *, source: str):  # type: ignore[no-untyped-def]
            nonlocal lookups
            lookups += 1
            return await real_settle(payment_hash, source=source)

        real_pass = reconciler.reconcile_once
        running: list[float] = []  # the start of the pass in progress

        async def timed_pass(**kwargs):  # type: ignore[no-untyped-def]
            running.append(time.perf_counter())
            report = await real_pass(**kwargs)
            passes.append(time.perf_counter() - running.pop())
            return report

        reconciler.reconcile_once = timed_pass  # the loop calls the module's function
        recorder = asyncio.create_task(gateway.recorder.run())
        loop = asyncio.create_task(reconciler.run_reconciler(
            db=gateway.db, settle=counting_settle, clock=utcnow,
            config=gateway.reconciler_config))
        await asyncio.sleep(args.warmup)  # past the start-up pass, into the steady state
        passes.clear()
        cpu_before, wall_before, lookups_before = time.process_time(), time.perf_counter(), lookups
        await asyncio.sleep(args.window)
        cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - wall_before
        in_window = lookups - lookups_before
        unfinished = [time.perf_counter() - start for start in running]
        loop.cancel()
        recorder.cancel()
        await asyncio.gather(loop, recorder, return_exceptions=True)
        config = gateway.reconciler_config
        lease = getattr(config, "lease", None)
        lease_seconds = (lease.total_seconds() if hasattr(lease, "total_seconds")
                         else config.interval)  # the old default lease was the interval
        return {
            "variant": args.variant, "pending": args.pending,
            "expired_in_margin": args.pending // 6, "window_s": wall, "cpu_s": cpu,
            "cpu_s_per_min": cpu * 60 / wall, "lookups": in_window,
            "lookups_per_min": in_window * 60 / wall,
            "cpu_ms_per_lookup": cpu * 1000 / in_window if in_window else None,
            "passes_finished": len(passes), "pass_unfinished_s": unfinished,
            "longest_pass_s": max(passes + unfinished, default=0.0),
            "lease_s": lease_seconds,
            "passes_over_lease": sum(p > lease_seconds for p in passes + unfinished),
            "seed_s": seed_seconds,
        }
    finally:
        await gateway.aclose()
        shutil.rmtree(workdir, ignore_errors=True)


async def seed(db, pending: int, reconciler, *, scheduled: bool) -> None:  # type: ignore[no-untyped-def]
    """N pending invoices created evenly over the last hour, N/6 expired in the last 10 min."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from lngate.store.tables import invoices

    now = datetime.now(UTC)
    config = reconciler.ReconcilerConfig() if scheduled else None
    rows = []
    expired = pending // 6
    for i in range(pending + expired):
        if i < pending:
            age = (i + 0.5) * INVOICE_SECONDS / pending
            state = "pending"
        else:
            age = INVOICE_SECONDS + (i - pending + 0.5) * EXPIRED_MARGIN / expired
            state = "expired"
        created = now - timedelta(seconds=age)
        expires = created + timedelta(seconds=INVOICE_SECONDS)
        row = {"payment_hash": os.urandom(32).hex(), "provider": "lnbits",
               "provider_ref": "bench", "bolt11": "lnbc1bench", "amount_msat": 100_000,
               "description": "lngate benchmark", "state": state, "is_test": False,
               "created_at": created, "expires_at": expires, "paid_late": False}
        if config is not None:
            row["next_check_at"] = next_due(config, created, expires, now)
        rows.append(row)
    for start in range(0, len(rows), 5000):
        async with db.transaction() as conn:
            await conn.execute(insert(invoices), rows[start:start + 5000])


def next_due(config, created, expires, now):  # type: ignore[no-untyped-def]
    """The first check the schedule gives after ``now`` (the earlier ones are done)."""
    when = created + config.first_check
    while when <= now:
        following = config.next_check(created_at=created, expires_at=expires, now=when)
        if following is None:
            return None
        when = following
    return when


# ----------------------------------------------------------------------------- parent


def run_child(variant: str, src: Path, pending: int, window: float, warmup: float, port: int,
              pubkey: str) -> dict[str, object]:
    argv = [sys.executable, __file__, "--child", "--variant", variant, "--src", str(src),
            "--pending", str(pending), "--window", str(window), "--warmup", str(warmup),
            "--upstream-port", str(port), "--node-pubkey", pubkey]
    done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(),
                          timeout=(window + warmup) * 4 + 600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} {pending}: the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def old_source(ref: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="lngate-bench-src-old-"))
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "src"], cwd=REPO,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def start_upstream() -> tuple[ManagedProcess, int, str]:
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="lngate-bench-upstream-")) / "upstream.log"
    upstream = ManagedProcess(
        "upstream", [sys.executable, str(REPO / "benchmarks" / "_instant_upstream.py"),
                     "--port", str(port), "--pool", "1"],
        env=clean_env(), log_path=log_path, stdout=subprocess.PIPE)
    assert upstream.proc.stdout is not None
    line = upstream.proc.stdout.readline().decode().split()
    if not line or line[0] != "ready":
        upstream.stop()
        raise SystemExit(f"the instant upstream did not start:\n{upstream.log_tail()}")
    return upstream, port, line[2]


def draw(results: list[dict[str, object]], path: Path, cap_per_min: float) -> None:
    """Two panels, log-log: look-ups and CPU seconds per minute against pending invoices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lookups_ax, cpu_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"old": ("every pending invoice every 15 s (before)", "#c0392b", "o"),
              "new": ("age-based schedule, 20 look-ups/s cap (now)", "#2471a3", "s")}
    for variant, (label, colour, marker) in styles.items():
        rows = sorted((r for r in results if r["variant"] == variant),
                      key=lambda r: r["pending"])  # type: ignore[arg-type,return-value]
        xs = [r["pending"] for r in rows]
        lookups_ax.plot(xs, [max(r["lookups_per_min"], 0.1) for r in rows],  # type: ignore[type-var]
                        marker=marker, color=colour, label=label)
        cpu_ax.plot(xs, [max(r["cpu_s_per_min"], 0.001) for r in rows],  # type: ignore[type-var]
                    marker=marker, color=colour, label=label)
    lookups_ax.axhline(cap_per_min, color="grey", linestyle=":", linewidth=1)
    lookups_ax.annotate("cap: 20/s per provider", (10, cap_per_min * 1.15), color="grey",
                        fontsize=8)
    cpu_ax.axhline(60, color="grey", linestyle=":", linewidth=1)
    cpu_ax.annotate("one full core", (10, 60 * 1.15), color="grey", fontsize=8)
    for ax, title in ((lookups_ax, "provider look-ups per minute"),
                      (cpu_ax, "reconciler CPU seconds per minute")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pending invoices (plus 1/6 expired in the late-payment margin)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    lookups_ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("lngate reconciler: cost against pending invoices (SQLite, instant upstream)",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def ratio(old: object, new: object) -> str:
    """``old / new`` as "12×", or "-" when the new figure is zero."""
    return f"{float(old) / float(new):,.0f}×" if float(new) > 0 else "-"  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10_000, 100_000])
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds the reconciler runs per measurement")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds the reconciler runs before the window")
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--chart", type=Path, default=CHART, help="where to write the PNG")
    parser.add_argument("--no-chart", action="store_true")
    # one run, in its own process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--pending", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--node-pubkey", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        sys.path.insert(0, args.src)  # before anything imports lngate
        try:
            import uvloop

            result = uvloop.run(child(args))
        except ImportError:
            result = asyncio.run(child(args))
        print(json.dumps(result), flush=True)
        return

    old_src = old_source(args.old_ref)
    new_src = snapshot_src(None) / "src"  # edits made meanwhile do not reach the runs
    upstream, port, pubkey = start_upstream()
    results: list[dict[str, object]] = []
    info = machine_info()
    try:
        for pending in args.sizes:
            for variant, src in (("old", old_src), ("new", new_src)):
                log(f"{variant}: {pending} pending, {args.window:g} s (load {loadavg()})")
                result = run_child(variant, src, pending, args.window, args.warmup, port,
                                   pubkey)
                result["loadavg_after"] = loadavg()
                results.append(result)
                log(f"  {result['lookups_per_min']:.0f} look-ups/min, "
                    f"{result['cpu_s_per_min']:.2f} CPU s/min, longest pass "
                    f"{result['longest_pass_s']:.1f} s")
    finally:
        upstream.stop()
        cleanup_src()
        shutil.rmtree(old_src.parent, ignore_errors=True)
        if upstream.log_path is not None:
            shutil.rmtree(upstream.log_path.parent, ignore_errors=True)
    rows = []
    by_key = {(r["variant"], r["pending"]): r for r in results}
    for pending in args.sizes:
        old, new = by_key[("old", pending)], by_key[("new", pending)]
        for r in (old, new):
            per_lookup = r["cpu_ms_per_lookup"]
            rows.append([f"{pending:,}", r["variant"], f"{r['lookups_per_min']:,.0f}",
                         f"{r['cpu_s_per_min']:.2f}",
                         "-" if per_lookup is None else f"{per_lookup:.2f}",
                         f"{r['longest_pass_s']:.1f}", f"{r['passes_over_lease']}",
                         r["loadavg_after"]])
        rows.append(["", "old/new", ratio(old["lookups_per_min"], new["lookups_per_min"]),
                     ratio(old["cpu_s_per_min"], new["cpu_s_per_min"]), "", "", "", ""])
    print(f"\n{info['date']}, commit {info['commit']}, {info['cores']} cores {info['cpu']}, "
          f"window {args.window:g} s after {args.warmup:g} s, old = {args.old_ref}")
    print_table("Reconciler: cost against pending invoices (per minute of window)",
                ["pending", "schedule", "look-ups/min", "CPU s/min", "CPU ms/look-up",
                 "longest pass s", "passes over lease", "load after"], rows)
    path = save_results("reconciler", {"machine": info, "window_s": args.window,
                                       "old_ref": args.old_ref, "results": results})
    log(f"raw results: {path}")
    if not args.no_chart:
        draw(results, args.chart, cap_per_min=20 * 60)
        log(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
