"""Overload benchmark: twice the capacity offered, open loop; served, refused, lag, recovery.

Run: ``.venv/bin/python benchmarks/bench_overload.py [--over 8] [--after 8] [--repeat 2]``

1. *Capacity*, measured again before each round (the machine is shared; its capacity moves
   from minute to minute): one worker (SQLite) in front of the instantaneous upstream
   (``benchmarks/_instant_upstream.py``), ``wrk`` (else the asyncio generator) closed loop at
   20 connections: invoices/s = C.
2. For each variant, interleaved in one run: a fresh gateway, then an open-loop load
   (``benchmarks/_openloop.py``: requests start at their due times, answered or not) of
   ``0.5 × C`` for ``--warmup`` s, ``2 × C`` for ``--over`` s, ``0.5 × C`` for ``--after`` s.
   Variants: ``admission`` (``MAX_CREATES_IN_FLIGHT``, default 64) and ``baseline``, the same
   gateway with admission off (``MAX_CREATES_IN_FLIGHT=0``); with ``--compare-ref REF``, also
   that commit's gateway with the same ``MAX_CREATES_IN_FLIGHT`` (a commit from before the
   door ignores it), to show what the change under test does. Each gateway's closed-loop
   warm-up also gives its capacity just before its run.
3. Reported per variant: served/s during the 2× phase (answers 200 completed in it) and its
   ratio to C; the gateway's cores in the 2× phase and the creates it served per CPU second
   then over those it served per CPU second at capacity (its closed-loop warm-up): on a shared
   machine the gateway gets the CPU it can, and this ratio says whether the door kept its CPU
   for creates; refusals at the door (status, with ``Retry-After``, latency p50/p99); 503s
   because a breaker was open (``circuit_open`` among the providers' codes; must be 0) and
   breakers opened (the gateway's log); other errors; the largest event-loop lag
   (``lngate_event_loop_lag_max_seconds``, scraped every 0.5 s) and the share of time the loop
   lagged (rate of ``lngate_event_loop_lag_seconds_total``); recovery after the load drops: the
   time until every later 0.25 s slice of requests is ≥ 99 % answered 200 with a p99 under
   0.5 s (and what the last slice short of that was: its share of 200s, p99 and other answers);
   the open-loop generator's own cores in the 2× phase (on this shared machine they are CPU
   the gateway did not get); the 200s' latency p50/p99 in each phase; and the latency of the
   first request on each connection the generator opened in the 2x phase (it waits for the
   server to accept the connection as well as to answer it); and the cores the hypervisor
   stole from this virtual machine during the open loop (``/proc/stat``), which make a run
   offered a multiple of a C the machine no longer has.

4. *The door's cost* (``--door-cost``, on by default): the gateway's CPU per create served
   (closed loop, instantaneous upstream) and per request refused at the door (closed loop,
   ``--door-connections`` at once, against a gateway whose upstream accepts and never answers,
   so ``--limit`` creates hang in flight and every other request is refused), and from the two
   the most a process that refuses in its own CPU can serve while offered ``--factor`` x C:
   ``S / C = (1 - f r / c) c / (c - r)`` (c: CPU per create, r: per refusal, f: the factor).

The gateway's CPU comes from /proc; the load average is printed: the machine is shared, so
compare the variants within one run, never across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR,
    REPO,
    GatewayProcess,
    cleanup_src,
    fmt,
    loadavg,
    log,
    log_problems,
    machine_info,
    percentile,
    print_table,
    save_results,
    snapshot_src,
    src_label,
    steal_seconds,
)
from bench_create_invoice import EXPIRY, MEMO, Upstream, load_python, load_wrk  # noqa: E402

SLICE = 0.25
RECOVERED_SHARE = 0.99
RECOVERED_P99 = 0.5


class Scraper(threading.Thread):
    """Reads the gateway's /metrics every ``interval`` seconds while a load runs."""

    def __init__(self, url: str, cpu: Callable[[], float], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.url, self.cpu, self.interval = url, cpu, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.cpu_samples: list[tuple[float, float]] = []
        """(seconds since start, the gateway's CPU seconds so far), at every scrape"""
        self.stopped = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.cpu_samples.append((time.monotonic() - self.t0, self.cpu()))
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    text = resp.read().decode()
                self.samples.append((time.monotonic() - self.t0, _parse(text)))
            except OSError:
                pass
            self.stopped.wait(self.interval)


def _parse(text: str) -> dict[str, float]:
    wanted = ("lngate_event_loop_lag_max_seconds", "lngate_event_loop_lag_seconds_total",
              "lngate_circuit_breaker_state", "lngate_creates_in_flight")
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def breaker_opens(log_path: Path) -> tuple[int, int]:
    """(breakers opened, attempts abandoned for our own overload: logged at most once a second)
    from the gateway's JSON log."""
    opened = overloaded = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if '"breaker_state_changed"' in line and '"new": "open"' in line:
            opened += 1
        elif '"create_attempt_overloaded"' in line:
            overloaded += 1
    return opened, overloaded


def measure_capacity(upstream: Upstream, args: argparse.Namespace, loader, workdir: Path,
                     body: str) -> float:
    upstream.control("/_bench/reset", "POST")
    gateway = GatewayProcess(gateway_settings(upstream, args.limit))
    try:
        url = f"{gateway.url}/api/create-invoice"
        loader(url, body, 20, 2.0, workdir)  # warm-up
        result = loader(url, body, 20, args.capacity_seconds, workdir)
    finally:
        gateway.stop()
        gateway.cleanup()
    ok = int(result["requests"]) - int(result["non2xx"])
    return ok / float(result["elapsed"])


class SilentUpstream:
    """A listening socket that accepts connections and never answers: creates hang in flight."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.held: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        for conn in [*self.held, self.sock]:
            conn.close()


def door_cost(upstream: Upstream, args: argparse.Namespace, loader, workdir: Path,
              body: str) -> dict[str, float]:
    """CPU ms per create served and per request refused at the door, and the ceiling they set
    on what one process can serve at ``args.factor`` x C (see the module's docstring)."""
    upstream.control("/_bench/reset", "POST")
    serving = GatewayProcess(gateway_settings(upstream, args.limit))
    try:
        url = f"{serving.url}/api/create-invoice"
        loader(url, body, 20, 2.0, workdir)  # warm-up
        cpu0 = serving.cpu_seconds()
        served = loader(url, body, 20, args.capacity_seconds, workdir)
        create_ms = (serving.cpu_seconds() - cpu0) * 1000 / (
            int(served["requests"]) - int(served["non2xx"]))
    finally:
        serving.stop()
        serving.cleanup()
    silent = SilentUpstream()
    # the hung creates must stay in flight for the whole measure (no timeout, so no breaker
    # opening and answering the others itself): every other request meets the door
    refusing = GatewayProcess({**gateway_settings(upstream, args.limit),
                               "LNBITS_ENDPOINT": silent.url, "CREATE_DEADLINE_SECONDS": "60",
                               "ATTEMPT_TIMEOUT_DEFAULT": "60", "ATTEMPT_TIMEOUT_CEILING": "60",
                               "PROVIDER_TIMEOUT_SECONDS": "60"})
    try:
        url = f"{refusing.url}/api/create-invoice"
        loader(url, body, args.door_connections, 2.0, workdir)  # warm-up: the slots fill
        cpu0 = refusing.cpu_seconds()
        refused = loader(url, body, args.door_connections, args.capacity_seconds, workdir)
        refusal_ms = (refusing.cpu_seconds() - cpu0) * 1000 / int(refused["requests"])
    finally:
        refusing.stop()
        refusing.cleanup()
        silent.close()
    c, r, f = create_ms, refusal_ms, args.factor
    ceiling = max(0.0, (1 - f * r / c) * c / (c - r)) if c > r else 0.0
    return {"create_cpu_ms": c, "refusal_cpu_ms": r, "refusals": int(refused["non2xx"]),
            "requests": int(refused["requests"]), "served_ceiling_ratio": ceiling}


def gateway_settings(upstream: Upstream, limit: int) -> dict[str, str]:
    return {"LNBITS_ENDPOINT": upstream.url, "LNBITS_INVOICE_KEY": "bench-invoice-key",
            "LNBITS_NODE_PUBKEY": upstream.pubkey, "MAX_CREATES_IN_FLIGHT": str(limit)}


def extract_ref(ref: str) -> Path:
    """``src/`` of git ``ref`` in a temporary folder (removed by the caller)."""
    target = Path(tempfile.mkdtemp(prefix="lngate-bench-overload-ref-"))
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "src"], cwd=REPO,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def overload_run(variant: str, limit: int, capacity: float, upstream: Upstream,
                 args: argparse.Namespace, loader, workdir: Path, body: str,
                 src: Path | None = None) -> dict[str, object]:
    upstream.control("/_bench/reset", "POST")
    settings = gateway_settings(upstream, limit)
    if src is not None:
        settings["PYTHONPATH"] = str(src)
    gateway = GatewayProcess(settings)
    low, high = args.after_factor * capacity, args.factor * capacity
    phases = [(low, args.warmup), (high, args.over), (low, args.after)]
    out = workdir / f"openloop-{variant}.json"
    try:
        url = f"{gateway.url}/api/create-invoice"
        # warm-up (connections, caches, timeouts) and this gateway's closed-loop capacity now:
        # the machine is shared, its capacity moves between runs
        cpu_warm = gateway.cpu_seconds()
        warm = loader(url, body, 20, args.local_capacity_seconds, workdir)
        served_warm = int(warm["requests"]) - int(warm["non2xx"])
        local_capacity = served_warm / float(warm["elapsed"])
        capacity_per_cpu = served_warm / (gateway.cpu_seconds() - cpu_warm)
        scraper = Scraper(f"{gateway.url}/metrics", gateway.cpu_seconds)
        cpu0 = gateway.cpu_seconds()
        scraper.start()
        started = time.monotonic() - scraper.t0
        steal0 = steal_seconds()
        subprocess.run(
            [sys.executable, str(BENCH_DIR / "_openloop.py"), url, "--body", body,
             "--phases", ",".join(f"{r:.1f}:{d:g}" for r, d in phases), "--out", str(out)],
            check=True, timeout=sum(d for _, d in phases) + 120)
        stolen = steal_seconds() - steal0
        scraper.stopped.set()
        scraper.join()
        cpu = gateway.cpu_seconds() - cpu0
    finally:
        gateway.stop()
        opened, overloaded_logs = breaker_opens(gateway.workdir / "gateway.log")
        # what a 500 (or any error) was: the log goes with the gateway's folder
        errors = log_problems(gateway.workdir / "gateway.log", ("error", "critical"), detail=True)
        gateway.cleanup()
    data = json.loads(out.read_text())
    result = analyse(variant, limit, capacity, data, scraper.samples, started, opened,
                     overloaded_logs, cpu)
    (o0, o1, _rate) = data["phases"][1]
    over_cpu = cpu_between(scraper.cpu_samples, started + o0, started + o1)
    # On a shared machine the gateway gets what CPU it can: compare the creates it served per
    # CPU second while offered the excess with those it served per CPU second at capacity
    result["over_cores"] = over_cpu / (o1 - o0) if over_cpu else float("nan")
    result["capacity_per_cpu_s"] = capacity_per_cpu
    result["served_per_cpu_ratio"] = (float(result["served_over_per_s"]) * (o1 - o0) / over_cpu
                                      / capacity_per_cpu) if over_cpu else float("nan")
    result["local_capacity_per_s"] = local_capacity
    result["served_over_local_ratio"] = float(result["served_over_per_s"]) / local_capacity
    result["log_errors"] = errors
    # the hypervisor's share of the machine during the open loop: a run where it took cores
    # measured a machine slower than the C it was offered a multiple of
    result["steal_cores"] = stolen / (data["phases"][-1][1] - data["phases"][0][0])
    return result


def cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds used between the samples nearest inside ``start`` and ``end`` (scaled to
    the whole span); 0 without two samples in it."""
    inside = [(t, c) for t, c in samples if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return 0.0
    (t_a, c_a), (t_b, c_b) = inside[0], inside[-1]
    return (c_b - c_a) * (end - start) / (t_b - t_a)


def analyse(variant: str, limit: int, capacity: float, data: dict, samples: list,
            started: float, opened: int, overloaded_logs: int, cpu: float) -> dict[str, object]:
    (w0, w1, _), (o0, o1, high), (a0, a1, low) = data["phases"]
    requests = data["requests"]
    served_over = sum(1 for p, due, lat, status, *_ in requests
                      if status == 200 and lat is not None and o0 <= due + lat < o1)
    refused = [r for r in requests if r[3] in (429, 503) and r[4] == "overloaded"]
    breaker_503 = [r for r in requests if r[3] == 503 and "circuit_open" in (r[4] or "")]
    others: dict[str, int] = {}
    for r in requests:
        if r[3] != 200 and r not in refused:
            key = f"{r[3]} {r[4]}"
            others[key] = others.get(key, 0) + 1
    refused_ms = sorted(r[2] * 1000 for r in refused if r[2] is not None)
    # the first request on each connection opened in the 2x phase: waits for the server to
    # accept the connection as well as to answer (answers of any status)
    fresh_ms = sorted(r[2] * 1000 for r in requests
                      if r[0] == 1 and len(r) > 6 and r[6] and r[2] is not None)

    def ok_latency(phase: int, q: float) -> float:
        values = [r[2] * 1000 for r in requests if r[0] == phase and r[3] == 200]
        return percentile(values, q)

    # recovery: slices of requests (by due time) after the drop
    slices: list[bool] = []
    last_bad = ""
    t = a0
    while t < a1 - 1e-9:
        chunk = [r for r in requests if t <= r[1] < t + SLICE]
        oks = [r[2] for r in chunk if r[3] == 200 and r[2] is not None]
        good = bool(chunk) and len(oks) >= RECOVERED_SHARE * len(chunk) and (
            percentile(oks, 99) <= RECOVERED_P99)
        slices.append(good)
        if not good:
            # why the recovery ends where it does: the last slice that was not yet served well
            statuses: dict[str, int] = {}
            for r in chunk:
                if r[3] != 200:
                    key = f"{r[3]} {r[4]}".strip()
                    statuses[key] = statuses.get(key, 0) + 1
            last_bad = (f"+{t - a0:.2f} s: {len(oks)} of {len(chunk)} answered 200, p99 "
                        f"{fmt(percentile(oks, 99) * 1000)} ms"
                        + "".join(f", {v} x {k}" for k, v in sorted(statuses.items())))
        t += SLICE
    recovery: float | None = None
    for i in range(len(slices)):
        if all(slices[i:]):
            recovery = i * SLICE
            break

    # the loop's lag while overloaded and after: the gauge's max over the 2x and after phases
    in_load = [s for at, s in samples if started + o0 <= at <= started + a1 + 1]
    lag_max = max((s["lngate_event_loop_lag_max_seconds"] for s in in_load
                   if "lngate_event_loop_lag_max_seconds" in s), default=float("nan"))
    over = [(at, s) for at, s in samples if started + o0 <= at <= started + o1]
    lag_share = float("nan")
    if len(over) >= 2:
        (t_a, s_a), (t_b, s_b) = over[0], over[-1]
        key = "lngate_event_loop_lag_seconds_total"
        if key in s_a and key in s_b:
            lag_share = (s_b[key] - s_a[key]) / (t_b - t_a)
    return {
        "variant": variant, "limit": limit, "capacity_per_s": capacity,
        "offered_over_per_s": high, "offered_after_per_s": low,
        "served_over_per_s": served_over / (o1 - o0),
        "served_over_ratio": served_over / (o1 - o0) / capacity,
        "refused": len(refused),
        "refused_with_retry_after": sum(1 for r in refused if r[5]),
        "refused_statuses": sorted({r[3] for r in refused}),
        "refused_p50_ms": percentile(refused_ms, 50), "refused_p99_ms": percentile(refused_ms, 99),
        "breaker_503": len(breaker_503), "breakers_opened": opened,
        "overloaded_attempt_logs": overloaded_logs,
        "other_non_200": others,
        "lag_max_s": lag_max, "lag_share_over": lag_share,
        "recovery_s": recovery, "recovery_last_bad_slice": last_bad,
        "generator_cores": [cpu / (end - begin) for cpu, (begin, end, _rate)
                            in zip(data.get("cpu_seconds", []), data["phases"])],
        "new_connections_over": len(fresh_ms),
        "new_connection_p50_ms": percentile(fresh_ms, 50),
        "new_connection_p99_ms": percentile(fresh_ms, 99),
        "ok_p50_ms": [ok_latency(i, 50) for i in range(3)],
        "ok_p99_ms": [ok_latency(i, 99) for i in range(3)],
        "gateway_cpu_s": cpu, "loadavg": loadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity-seconds", type=float, default=6.0)
    parser.add_argument("--capacity", type=float, help="skip measuring: invoices/s")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the low rate first")
    parser.add_argument("--over", type=float, default=8.0, help="seconds at factor x capacity")
    parser.add_argument("--after", type=float, default=8.0, help="seconds at the low rate after")
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--after-factor", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=64, help="MAX_CREATES_IN_FLIGHT")
    parser.add_argument("--local-capacity-seconds", type=float, default=3.0,
                        help="closed-loop warm-up of each gateway, also its capacity then")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-door-cost", dest="door_cost", action="store_false",
                        help="skip measuring the CPU of a refusal against that of a create")
    parser.add_argument("--door-connections", type=int, default=100,
                        help="connections of the door-cost load (above --limit)")
    parser.add_argument("--pool", type=int, default=60_000)
    parser.add_argument("--amount", type=int, default=100)
    parser.add_argument("--compare-ref", default=None,
                        help="also run the gateway of this git ref (e.g. main), same --limit")
    parser.add_argument("--ref", default=None, help="git ref to take src/ from (default: the "
                        "working tree, copied at the start)")
    args = parser.parse_args()

    snapshot_src(args.ref)
    other_src = extract_ref(args.compare_ref) if args.compare_ref else None
    loader = load_wrk if shutil.which("wrk") else load_python
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-overload-"))
    body = json.dumps({"amount": args.amount, "description": MEMO, "expiry": EXPIRY})
    results: list[dict[str, object]] = []
    door: dict[str, float] | None = None
    log(f"source: {src_label()}; load average {loadavg()}")
    log(f"signing a pool of {args.pool} invoices for the instantaneous upstream")
    upstream = Upstream(args.pool, args.amount, workdir)
    try:
        capacity = 0.0
        for repeat in range(args.repeat):
            # measured again before each round: the machine is shared and its capacity moves
            capacity = args.capacity or measure_capacity(upstream, args, loader, workdir, body)
            log(f"capacity: {capacity:.0f} invoices/s (1 worker, 20 connections, closed loop)")
            order: list[tuple[str, int, Path | None]] = [
                ("admission", args.limit, None), ("baseline", 0, None)]
            if other_src is not None:
                order.append((f"git {args.compare_ref}", args.limit, other_src))
            if repeat % 2:
                order.reverse()
            for variant, limit, src in order:
                log(f"run {repeat + 1}/{args.repeat}, {variant}: {args.after_factor:g}x "
                    f"{args.warmup:g} s, {args.factor:g}x {args.over:g} s, {args.after_factor:g}x "
                    f"{args.after:g} s; load average {loadavg()}")
                result = overload_run(variant, limit, capacity, upstream, args, loader,
                                      workdir, body, src)
                result["run"] = repeat + 1
                results.append(result)
                log(f"  served {result['served_over_per_s']:.0f}/s "
                    f"({result['served_over_ratio']:.2f} x C), refused {result['refused']}, "
                    f"breaker 503s {result['breaker_503']}, breakers opened "
                    f"{result['breakers_opened']}, recovery {result['recovery_s']}, "
                    f"other {result['other_non_200']}")
        if args.door_cost:
            log("door cost: CPU per create served, then per request refused (upstream silent)")
            door = door_cost(upstream, args, loader, workdir, body)
            log(f"  {door['create_cpu_ms']:.3f} ms per create, {door['refusal_cpu_ms']:.3f} ms "
                f"per refusal ({door['refusals']} of {door['requests']} refused)")
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if other_src is not None:
            shutil.rmtree(other_src.parent, ignore_errors=True)
        cleanup_src()

    print(f"\nmachine: {machine_info()}, load average at the end {loadavg()}")
    print(f"capacity C measured before each round (last {capacity:.0f} invoices/s); offered "
          f"{args.factor:g} x C for {args.over:g} s "
          f"after {args.warmup:g} s at {args.after_factor:g} x C, then {args.after_factor:g} x C "
          f"for {args.after:g} s")
    print_table(
        "Overload: one worker, instantaneous upstream, open loop",
        ["run", "variant", "C", "served/s at 2x (x C)", "C just before (served x it)",
         "gateway cores at 2x", "generator cores at 2x", "served per CPU s at 2x / at capacity",
         "refused (status, Retry-After)",
         "refusal p50 / p99 ms", "breaker 503s", "breakers opened", "other non-200",
         "max loop lag s", "lagging share", "recovery s", "200s p50/p99 ms at 2x",
         "200s p99 ms after", "first request on a new connection at 2x: n, p50 / p99 ms",
         "cores stolen by the hypervisor"],
        [[r["run"], r["variant"], f"{r['capacity_per_s']:.0f}",
          f"{r['served_over_per_s']:.0f} ({r['served_over_ratio']:.2f})",
          f"{r['local_capacity_per_s']:.0f} ({r['served_over_local_ratio']:.2f})",
          fmt(r["over_cores"], 2),
          fmt(r["generator_cores"][1], 2) if len(r["generator_cores"]) > 1 else "-",
          fmt(r["served_per_cpu_ratio"], 2),
          f"{r['refused']} ({'/'.join(map(str, r['refused_statuses'])) or '-'}, "
          f"{r['refused_with_retry_after']})",
          f"{fmt(r['refused_p50_ms'])} / {fmt(r['refused_p99_ms'])}",
          r["breaker_503"], r["breakers_opened"],
          ", ".join(f"{k}: {v}" for k, v in sorted(r["other_non_200"].items())) or "0",
          fmt(r["lag_max_s"], 2), fmt(r["lag_share_over"], 2),
          "not within the phase" if r["recovery_s"] is None else fmt(r["recovery_s"], 2),
          f"{fmt(r['ok_p50_ms'][1])} / {fmt(r['ok_p99_ms'][1])}",
          fmt(r["ok_p99_ms"][2]),
          f"{r['new_connections_over']}, {fmt(r['new_connection_p50_ms'])} / "
          f"{fmt(r['new_connection_p99_ms'])}", fmt(r["steal_cores"], 2)]
         for r in results])
    for r in results:
        if r["recovery_last_bad_slice"]:
            print(f"  run {r['run']} {r['variant']}: last slice after the drop not yet served "
                  f"well: {r['recovery_last_bad_slice']}")
        for error, count in r["log_errors"].items():
            print(f"  run {r['run']} {r['variant']}: {count} x {error}")
    if door is not None:
        print(f"\nThe door's cost: {door['create_cpu_ms']:.3f} CPU ms per create served, "
              f"{door['refusal_cpu_ms']:.3f} per request refused ({door['refusals']} of "
              f"{door['requests']} refused; r / c = "
              f"{door['refusal_cpu_ms'] / door['create_cpu_ms']:.2f}): a process refusing in its "
              f"own CPU serves at most {door['served_ceiling_ratio']:.2f} x C while offered "
              f"{args.factor:g} x C")
    path = save_results("overload", {"machine": machine_info(), "source": src_label(),
                                     "args": vars(args), "results": results, "door": door})
    log(f"raw results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
