#!/usr/bin/env python3
"""Create-invoice benchmark: CPU per invoice beside a floor, capacity, and added latency.

Part ``direct``: create-invoice through the gateway vs directly against the same real LNbits
1.6.2 (FakeWallet) peer. The gateway runs as a real server (``python -m lngate serve``) with
LNBITS_* pointing at the peer's merchant wallet; beside it, two floor apps forward to the same
LNbits and do nothing else (``_floor_app.py``: FastAPI + aiohttp, and the same as a bare ASGI
callable). One keep-alive aiohttp session sends ``--calls`` sequential turns after ``--warmup``
turns, each turn one call to each of the four, in every order in turn. Reports p50/p99 of direct
and gateway, their ratio, the median of the paired differences (the latency the gateway adds),
the floors' own additions beside it (what a hop through uvicorn and aiohttp costs here before any
work), the gateway's LNbits call as its recorder timed it, and the gateway's CPU ms per request.
Targets: gateway p50 <= 1.10 x direct p50, and <= 1.5 ms added.

Part ``capacity``: the gateway's own capacity with an instantaneous upstream: an
LNbits-compatible aiohttp server in a separate process answering ``POST /api/v1/payments`` at
once from a pool of invoices signed before the run. ``wrk`` (or, without it, an asyncio
closed-loop generator in its own process) drives ``--connections`` connections for
``--duration`` s against each of ``--configs``: the floor (``_floor_app.py``: a FastAPI +
aiohttp proxy to the same upstream that stores and checks nothing, served like the gateway),
the gateway on SQLite in one process, and on PostgreSQL (a fresh database per run) with two
workers. Reports invoices/s (2xx answers per second, cross-checked against the rows stored),
latency, the server's CPU ms per invoice (all its processes and threads, background loops
included, from /proc) beside the floor's of the same repeat, and how busy the whole machine
was. Targets: <= 0.75 CPU ms per invoice; >= 1,200 invoices/s on one SQLite process, >= 1,500 on
two PostgreSQL workers. ``--profile`` adds a run with py-spy attached to a 1-worker gateway and
prints where its time goes.

Every configuration is run ``--repeat`` times (interleaved) and all runs are shown: loopback
figures move by up to +-35 % between periods on this kind of machine, so compare within a run.
Everything is on 127.0.0.1 and every process started here is stopped at the end.

    .venv/bin/python benchmarks/bench_create_invoice.py                 # both parts
    .venv/bin/python benchmarks/bench_create_invoice.py --part capacity --profile
    .venv/bin/python benchmarks/bench_create_invoice.py --part capacity --configs floor sqlite1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR,
    GATEWAY_ENV,
    HOST,
    GatewayProcess,
    ManagedProcess,
    cleanup_src,
    fmt,
    free_port,
    http_get,
    loadavg,
    log,
    log_problems,
    machine_busy_seconds,
    machine_info,
    percentile,
    print_table,
    process_cpu_seconds,
    save_results,
    set_gateway_env,
    snapshot_src,
    src_label,
    src_path,
)

MEMO = "lngate benchmark"
EXPIRY = 3600


# ============================================================================ part (a): direct


async def direct_vs_gateway(lnbits_url: str, inkey: str, gateway: GatewayProcess,
                            floors: dict[str, str], *, calls: int, warmup: int,
                            amount: int) -> dict[str, Any]:
    import aiohttp

    direct_body = json.dumps({"out": False, "amount": amount, "memo": MEMO,
                              "expiry": EXPIRY}).encode()
    gateway_body = json.dumps({"amount": amount, "description": MEMO,
                               "expiry": EXPIRY}).encode()
    direct_headers = {"X-Api-Key": inkey, "Content-Type": "application/json",
                      "Accept": "application/json"}
    gateway_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    targets = {
        "direct": (f"{lnbits_url}/api/v1/payments", direct_body, direct_headers),
        **{kind: (f"{url}/api/create-invoice", gateway_body, gateway_headers)
           for kind, url in floors.items()},
        "gateway": (f"{gateway.url}/api/create-invoice", gateway_body, gateway_headers),
    }
    times: dict[str, list[float]] = {kind: [] for kind in targets}
    errors: Counter[str] = Counter()
    # Every order in turn, so that none is always first (a warmer LNbits) or last.
    orders = list(itertools.permutations(targets))

    connector = aiohttp.TCPConnector(limit=4, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(kind: str) -> float:
            url, body, headers = targets[kind]
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                raw = await resp.read()
            elapsed = time.perf_counter() - started
            ok = resp.status in (200, 201)
            if ok and kind == "gateway":
                ok = json.loads(raw).get("provider") == "lnbits"
            if not ok:
                errors[f"{kind} HTTP {resp.status}: {raw[:400].decode(errors='replace')}"] += 1
            return elapsed

        cpu_before = 0.0
        for i in range(warmup + calls):
            if i == warmup:
                cpu_before = gateway.cpu_seconds()
            for kind in orders[i % len(orders)]:
                elapsed = await one(kind)
                if i >= warmup:
                    times[kind].append(elapsed)
            if (i + 1 - warmup) % 50 == 0 and i >= warmup:
                log(f"  {i + 1 - warmup}/{calls} turns")
        gateway_cpu = gateway.cpu_seconds() - cpu_before

    d, f, b, g = times["direct"], times["floor"], times["floor_bare"], times["gateway"]
    return {
        "calls": calls,
        "direct_p50_ms": percentile(d, 50) * 1000,
        "direct_p99_ms": percentile(d, 99) * 1000,
        "gateway_p50_ms": percentile(g, 50) * 1000,
        "gateway_p99_ms": percentile(g, 99) * 1000,
        "ratio_p50": percentile(g, 50) / percentile(d, 50),
        "ratio_p99": percentile(g, 99) / percentile(d, 99),
        "added_median_ms": _median_difference_ms(g, d),
        "floor_p50_ms": percentile(f, 50) * 1000,
        "floor_added_median_ms": _median_difference_ms(f, d),
        "gateway_over_floor_median_ms": _median_difference_ms(g, f),
        "floor_bare_added_median_ms": _median_difference_ms(b, d),
        "gateway_cpu_ms_per_call": gateway_cpu * 1000 / calls,
        "errors": dict(errors),
        "loadavg": loadavg(),
        "gateway_times": g,
        "direct_times": d,
    }


def _median_difference_ms(later: list[float], earlier: list[float]) -> float:
    """The median of the paired differences ``later - earlier``, in ms."""
    return statistics.median(a - b for a, b in zip(later, earlier, strict=True)) * 1000


def direct_run(peer: Any, args: argparse.Namespace, repeat: int,
               source: str) -> dict[str, object]:
    """One gateway (from the working tree's copy, or the baseline ref) and both floor apps
    against the peer, interleaved with direct calls."""
    log(f"[direct] run {repeat}/{args.repeat} ({source}): starting the gateway and the floor apps")
    settings = {
        "LNBITS_ENDPOINT": peer.url,
        "LNBITS_INVOICE_KEY": peer.merchant_inkey,
        "LNBITS_NODE_PUBKEY": peer.payee_pubkey,
    }
    if source == "base":
        settings["PYTHONPATH"] = str(BASELINE_SRC["path"])
    gateway = GatewayProcess(settings)
    floors = {"floor": Floor(peer.url, gateway.workdir, api_key=peer.merchant_inkey),
              "floor_bare": Floor(peer.url, gateway.workdir, api_key=peer.merchant_inkey,
                                  bare=True)}
    try:
        log(f"[direct] run {repeat}: {args.warmup} warm-up + {args.calls} interleaved turns "
            "(direct, floor app, bare floor app, gateway)")
        result = asyncio.run(direct_vs_gateway(
            peer.url, peer.merchant_inkey, gateway,
            {kind: floor.url for kind, floor in floors.items()}, calls=args.calls,
            warmup=args.warmup, amount=args.amount))
    finally:
        for floor in floors.values():
            floor.stop()
        gateway.stop()
        problems = log_problems(gateway.workdir / "gateway.log")
        failed_calls: Counter[str] = Counter()
        upstream_ms: list[float] = []
        with contextlib.suppress(Exception):
            for row in gateway.provider_calls():
                if row["outcome"] != "success":
                    message = re.sub(r"\d+(\.\d+)? s\b", "N s",
                                     str(row["error_message"])[:100])
                    failed_calls[f"{row['provider']} {row['operation']} {row['outcome']}"
                                 f": {row['error_type']}: {message}"] += 1
                elif row["operation"] == "create_invoice":
                    upstream_ms.append(float(row["duration_ms"]))  # type: ignore[arg-type]
        gateway.cleanup()
    gateway_times, direct_times = result.pop("gateway_times"), result.pop("direct_times")
    # The recorder's rows are in call order; the last ``calls`` are the measured ones. The
    # gateway's own time is what its client waited beyond the LNbits call it timed itself.
    upstream_ms = upstream_ms[-len(gateway_times):]
    if len(upstream_ms) == len(gateway_times):
        result["gateway_upstream_p50_ms"] = statistics.median(upstream_ms)
        result["upstream_over_direct_median_ms"] = statistics.median(
            u - d * 1000 for u, d in zip(upstream_ms, direct_times, strict=True))
        result["gateway_own_median_ms"] = statistics.median(
            g * 1000 - u for g, u in zip(gateway_times, upstream_ms, strict=True))
    result["run"] = f"{repeat}" if source == "current" else f"{repeat}@base"
    result["source"] = source
    result["log_problems"] = problems
    result["failed_provider_calls"] = dict(failed_calls)
    return result


def run_direct(args: argparse.Namespace) -> list[dict[str, object]]:
    from tests.peers.lnbits_peer import LNbitsPeer

    results: list[dict[str, object]] = []
    log("starting the LNbits 1.6.2 FakeWallet peer (first run installs it, ~1 min)")
    peer = LNbitsPeer(log=lambda m: log(f"lnbits-peer: {m}"))
    try:
        peer.launch()
        sources = ["current", "base"] if "path" in BASELINE_SRC else ["current"]
        for repeat in range(1, args.repeat + 1):
            for source in sources if repeat % 2 else list(reversed(sources)):
                result = direct_run(peer, args, repeat, source)
                results.append(result)
                log(f"[direct] run {repeat} ({source}): direct p50 "
                    f"{result['direct_p50_ms']:.2f} ms, gateway p50 "
                    f"{result['gateway_p50_ms']:.2f} ms, ratio {result['ratio_p50']:.3f}, "
                    f"added {result['added_median_ms']:.2f} ms (floor app "
                    f"{result['floor_added_median_ms']:.2f} ms, bare floor "
                    f"{result['floor_bare_added_median_ms']:.2f} ms)")
    finally:
        peer.close()
    return results


# ============================================================================ part (b): capacity


class Upstream(ManagedProcess):
    """The instantaneous LNbits-compatible upstream (benchmarks/_instant_upstream.py)."""

    def __init__(self, pool: int, amount: int, workdir: Path) -> None:
        self.port = free_port()
        super().__init__(
            "upstream",
            [sys.executable, str(BENCH_DIR / "_instant_upstream.py"), "--src", str(src_path()),
             "--port", str(self.port),
             "--pool", str(pool), "--amount-sat", str(amount), "--memo", MEMO,
             "--expiry", str(EXPIRY)],
            log_path=workdir / "upstream.log", stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()  # blocks while the pool is signed
        if len(line) != 3 or line[0] != "ready":
            self.stop()
            raise RuntimeError(f"upstream did not start: {line}\n{self.log_tail()}")
        self.pubkey = line[2]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def control(self, path: str, method: str = "GET") -> dict[str, int]:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST"
                                     else None)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())


POSTGRES_URL = os.environ.get("LNGATE_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


class Floor(ManagedProcess):
    """The floor app (benchmarks/_floor_app.py): FastAPI + aiohttp, nothing else."""

    def __init__(self, upstream_url: str, workdir: Path, api_key: str = "floor",
                 bare: bool = False) -> None:
        self.port = free_port()
        name = "floor-bare" if bare else "floor"
        super().__init__(name, [sys.executable, str(BENCH_DIR / "_floor_app.py"),
                                "--port", str(self.port), "--upstream", upstream_url,
                                "--api-key", api_key, *(["--bare"] if bare else [])],
                         log_path=workdir / f"{name}.log")
        self.workdir = workdir
        deadline = time.monotonic() + 30
        while True:  # its lifespan says "ready" before uvicorn binds: wait for an answer
            with contextlib.suppress(OSError):  # any answer, even an error, means it serves
                with contextlib.suppress(urllib.error.HTTPError):
                    http_get(f"{self.url}/docs", timeout=1.0)
                break
            if not self.alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"floor app did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def worker_pids(self) -> list[int]:
        return [self.pid]

    def count_invoices(self) -> int | None:
        return None  # stores nothing

    def cleanup(self) -> None:
        pass


class PostgresGateway(GatewayProcess):
    """A gateway on a fresh PostgreSQL database of its own, dropped by :meth:`cleanup`."""

    def __init__(self, settings: dict[str, str], *, workers: int) -> None:
        self.database = f"lngate_bench_{os.getpid()}_{free_port()}"
        _pg_admin(f'CREATE DATABASE "{self.database}"')
        self.pg_url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + self.database
        try:
            # migrating a fresh database and two workers' start-ups take a while on a busy machine
            super().__init__({**settings, "DATABASE_URL": self.pg_url}, workers=workers,
                             start_timeout=180.0)
        except BaseException:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            raise

    def count_invoices(self) -> int:
        return int(_pg_fetch(self.pg_url, "SELECT count(*) FROM invoices"))

    def backend_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL backend serving this gateway's database."""
        pids = _pg_fetch(POSTGRES_URL, "SELECT array_agg(pid) FROM pg_stat_activity "
                         f"WHERE datname = '{self.database}'") or []
        return {int(pid): process_cpu_seconds(int(pid)) for pid in pids}  # type: ignore[union-attr]

    def cleanup(self) -> None:
        super().cleanup()
        _pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _pg_fetch(url: str, sql: str) -> object:
    import asyncpg

    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_admin(sql: str) -> None:
    _pg_fetch(POSTGRES_URL, sql)


BASELINE_SRC: dict[str, Path] = {}
"""src/ as of --baseline-ref, for the ``<config>@base`` runs."""


def snapshot_baseline(ref: str) -> None:
    """Extract src/ as of ``ref`` to a temporary folder (removed by :func:`drop_baseline`)."""
    target = Path(tempfile.mkdtemp(prefix="lngate-bench-base-"))
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "src"], cwd=BENCH_DIR.parent,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    BASELINE_SRC["path"] = target / "src"


def drop_baseline() -> None:
    if "path" in BASELINE_SRC:
        shutil.rmtree(BASELINE_SRC.pop("path").parent, ignore_errors=True)


CONFIGS = {
    "floor": ("floor", 1, "none"),
    "sqlite1": ("gateway", 1, "sqlite"),
    "sqlite2": ("gateway", 2, "sqlite"),
    "pg1": ("gateway", 1, "postgresql"),
    "pg2": ("gateway", 2, "postgresql"),
    "pg2redis": ("gateway", 2, "postgresql+redis"),
}
"""Capacity configurations: (what runs, processes, database)."""


_WRK_LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      io.write(string.format("status %%d %%d\\n", code, n))
    end
  end
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m[1]) * _UNITS[m[2]]


def load_wrk(url: str, body: str, connections: int, duration: float,
             workdir: Path) -> dict[str, object]:
    script = workdir / "post.lua"
    script.write_text(_WRK_LUA % body)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s",
            "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
    summary = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if summary is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, elapsed = int(summary[1]), _ms(summary[2]) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    statuses: dict[str, int] = {}
    for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.M):
        statuses[code] = statuses.get(code, 0) + int(n)
    return {
        "requests": requests,
        "non2xx": int(non2xx[1]) if non2xx else 0,
        "errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
        "elapsed": elapsed,
        "p50_ms": _ms(dist["50"]) if "50" in dist else None,
        "p99_ms": _ms(dist["99"]) if "99" in dist else None,
        "statuses": statuses,
        "raw": out,
    }


def load_python(url: str, body: str, connections: int, duration: float,
                _workdir: Path) -> dict[str, object]:
    argv = [sys.executable, str(BENCH_DIR / "_loadgen.py"), url, "--body", body,
            "--connections", str(connections), "--duration", str(duration)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def capacity_run(upstream: Upstream, config: str, args: argparse.Namespace, loader,
                 workdir: Path, *, profile_out: Path | None = None,
                 ablate: str = "") -> dict[str, object]:
    body = json.dumps({"amount": args.amount, "description": MEMO, "expiry": EXPIRY})
    upstream.control("/_bench/reset", "POST")
    name, _, variant = config.partition("@")
    kind, workers, database = CONFIGS[name]
    settings = {
        "LNBITS_ENDPOINT": upstream.url,
        "LNBITS_INVOICE_KEY": "bench-invoice-key",
        "LNBITS_NODE_PUBKEY": upstream.pubkey,
    }
    if database.endswith("+redis"):
        settings["REDIS_URL"] = args.redis_url
    if variant == "base":
        settings["PYTHONPATH"] = str(BASELINE_SRC["path"])
    if variant.startswith("no-"):  # e.g. pg2@no-ratelimit: one piece off in a capacity run
        ablate = variant.removeprefix("no-")
    if ablate:
        settings["PYTHONPATH"] = f"{BENCH_DIR / '_ablate'}:{src_path()}"
        settings["LNGATE_BENCH_ABLATE"] = ablate
    gateway: GatewayProcess | Floor
    if kind == "floor":
        gateway = Floor(upstream.url, workdir)
    elif database.startswith("postgresql"):
        gateway = PostgresGateway(settings, workers=workers)
    else:
        gateway = GatewayProcess(settings, workers=workers)
    spy: subprocess.Popen[bytes] | None = None
    try:
        url = f"{gateway.url}/api/create-invoice"
        loader(url, body, args.connections, args.warmup_seconds, workdir)  # warm-up, discarded
        stored_before = gateway.count_invoices() or 0
        served_before = upstream.control("/_bench/stats")
        if profile_out is not None:
            spy = subprocess.Popen(
                [args.py_spy, "record", "--pid", str(gateway.worker_pids()[0]), "--rate", "250",
                 "--duration", str(int(args.duration)), "--format", "raw", "--threads",
                 "--gil", "--nonblocking", "--output", str(profile_out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(0.5)
        gw_cpu0, up_cpu0, ld_cpu0 = (gateway.cpu_seconds(), process_cpu_seconds(upstream.pid),
                                     _children_cpu())
        pg_cpu0 = gateway.backend_cpu() if isinstance(gateway, PostgresGateway) else {}
        worker_cpu0 = {pid: process_cpu_seconds(pid) for pid in gateway.worker_pids()}
        busy0, total0 = machine_busy_seconds()
        load = loader(url, body, args.connections, args.duration, workdir)
        busy1, total1 = machine_busy_seconds()
        # the backends' CPU during the load (a backend opened meanwhile counts from zero)
        pg_cpu = (sum(cpu - pg_cpu0.get(pid, 0.0) for pid, cpu in gateway.backend_cpu().items())
                  if isinstance(gateway, PostgresGateway) else None)
        gw_cpu = gateway.cpu_seconds() - gw_cpu0
        # how the load fell on the workers: wrk's connections stay where they were accepted
        worker_cpu = sorted((process_cpu_seconds(pid) - cpu for pid, cpu in worker_cpu0.items()),
                            reverse=True)[:workers]
        up_cpu = process_cpu_seconds(upstream.pid) - up_cpu0
        ld_cpu = _children_cpu() - ld_cpu0
        if spy is not None:
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                log(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
            spy = None
        counted = gateway.count_invoices()
        stored = None if counted is None else counted - stored_before
        served = upstream.control("/_bench/stats")
    finally:
        if spy is not None:
            spy.kill()
            spy.wait()
        gateway.stop()
        problems = log_problems(gateway.workdir / "gateway.log") if kind == "gateway" else {}
        gateway.cleanup()
    ok = int(load["requests"]) - int(load["non2xx"])
    elapsed = float(load["elapsed"])
    machine_total = total1 - total0
    return {
        "config": config,
        "workers": workers,
        "database": database,
        "invoices_per_s": ok / elapsed,
        "ok": ok,
        "non2xx": load["non2xx"],
        "errors": load["errors"],
        "elapsed_s": elapsed,
        "stored": stored,
        "upstream_served": served["served"] - served_before["served"],
        "pool_exhausted": served["exhausted"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "gateway_cpu_ms_per_invoice": gw_cpu * 1000 / ok if ok else None,
        "gateway_cores": gw_cpu / elapsed,
        "worker_cores": [cpu / elapsed for cpu in worker_cpu],
        "postgres_cpu_ms_per_invoice": pg_cpu * 1000 / ok if ok and pg_cpu is not None else None,
        "postgres_cores": pg_cpu / elapsed if pg_cpu is not None else None,
        "upstream_cores": up_cpu / elapsed,
        "loadgen_cores": ld_cpu / elapsed,
        "machine_busy_pct": 100 * (busy1 - busy0) / machine_total if machine_total else None,
        "other_cores": ((busy1 - busy0) - gw_cpu - up_cpu - ld_cpu) / elapsed,
        "loadavg": loadavg(),
        "statuses": load.get("statuses", {}),
        "log_problems": problems,
    }


def run_capacity(args: argparse.Namespace) -> tuple[list[dict[str, object]], dict | None]:
    if args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk")):
        loader, loader_name = load_wrk, "wrk"
    else:
        if args.loadgen == "auto":
            log("wrk not found (apt-get install -y wrk); using the asyncio load generator")
        loader, loader_name = load_python, "asyncio"
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-cap-"))
    results: list[dict[str, object]] = []
    profile = None
    ablations: list[dict[str, object]] = []
    log(f"[capacity] signing a pool of {args.pool} invoices for the instantaneous upstream")
    upstream = Upstream(args.pool, args.amount, workdir)
    try:
        log(f"[capacity] upstream ready on {upstream.url}")
        for repeat in range(1, args.repeat + 1):
            # interleaved, and the order turned each repeat: no configuration always runs
            # first (or last) in a period of the shared machine's load
            order = args.configs if repeat % 2 else list(reversed(args.configs))
            for config in order:
                log(f"[capacity] run {repeat}/{args.repeat}, {config}: "
                    f"{args.warmup_seconds:g} s warm-up + {args.duration:g} s with {loader_name} "
                    f"at {args.connections} connections")
                try:
                    result = capacity_run(upstream, config, args, loader, workdir)
                except RuntimeError as exc:
                    log(f"[capacity]   {config} did not start: {str(exc)[-300:]}")
                    results.append({"config": config, "run": repeat, "loadgen": loader_name,
                                    "failed": str(exc).splitlines()[0][:200]})
                    continue
                result.update(run=repeat, loadgen=loader_name)
                results.append(result)
                log(f"[capacity]   {result['invoices_per_s']:.0f} invoices/s, "
                    f"{fmt(result['gateway_cpu_ms_per_invoice'], 2)} CPU ms/invoice "
                    f"(PostgreSQL {fmt(result.get('postgres_cpu_ms_per_invoice'), 2)}), "
                    f"non-2xx {result['non2xx']}, errors {result['errors']}, "
                    f"stored {result['stored']}, pool exhausted {result['pool_exhausted']}")
                if result["statuses"] and set(result["statuses"]) != {"200"}:
                    log(f"[capacity]   HTTP statuses: {result['statuses']}")
                if result["log_problems"]:
                    log(f"[capacity]   gateway log warnings/errors: {result['log_problems']}")
                if result["pool_exhausted"]:
                    log("[capacity]   WARNING: the invoice pool ran out: raise --pool")
        if args.ablations:
            ablations = run_ablations(upstream, args, loader, workdir)
        if args.profile:
            profile = run_profile(upstream, args, loader, workdir)
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results, profile, ablations


ABLATION_PIECES = ("ratelimit", "logs", "recorder", "insert", "db")
ABLATIONS = ("", *ABLATION_PIECES, "ratelimit,logs,recorder,db")


def run_ablations(upstream: Upstream, args: argparse.Namespace, loader,
                  workdir: Path) -> list[dict[str, object]]:
    """1-worker runs with one piece of the path switched off (benchmarks/_ablate), interleaved."""
    results = []
    for repeat in range(1, args.repeat + 1):
        for ablate in ABLATIONS:
            name = ablate or "baseline"
            log(f"[ablation] run {repeat}/{args.repeat}: {name}")
            result = capacity_run(upstream, "sqlite1", args, loader, workdir, ablate=ablate)
            result.update(run=repeat, ablate=name)
            results.append(result)
            log(f"[ablation]   {result['invoices_per_s']:.0f} invoices/s, "
                f"{fmt(result['gateway_cpu_ms_per_invoice'], 2)} CPU ms/invoice")
    return results


# ============================================================================ profiling


def run_profile(upstream: Upstream, args: argparse.Namespace, loader,
                workdir: Path) -> dict | None:
    if not args.py_spy or not Path(args.py_spy).exists():
        found = shutil.which("py-spy")
        if not found:
            log("[profile] py-spy not found: install it (e.g. `uv tool install py-spy`) or pass "
                "--py-spy PATH; skipping the profile")
            return None
        args.py_spy = found
    out = workdir / "profile.txt"
    log(f"[profile] {args.profile_config}, py-spy --gil at 250 Hz (non-blocking) for "
        f"{args.duration:g} s")
    result = capacity_run(upstream, args.profile_config, args, loader, workdir,
                          profile_out=out)
    log(f"[profile]   under py-spy: {result['invoices_per_s']:.0f} invoices/s")
    if not out.exists():
        return None
    keep = BENCH_DIR / "results"  # git-ignored
    keep.mkdir(parents=True, exist_ok=True)
    kept = keep / f"profile-1worker-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    shutil.copy(out, kept)
    summary = summarize_profile(out.read_text())
    summary["collapsed_stacks"] = str(kept)
    summary["invoices_per_s_under_profiler"] = result["invoices_per_s"]
    return summary


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_AREAS = [
    ("lngate.bolt11 (decode + validate)", ("lngate/bolt11/",)),
    ("coincurve (signature recovery)", ("coincurve/",)),
    ("lngate other", ("lngate/",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("aiosqlite + sqlite3", ("aiosqlite/", "sqlite3/")),
    ("aiohttp client", ("aiohttp/",)),
    ("uvicorn + httptools", ("uvicorn/", "httptools/")),
    ("starlette + fastapi", ("starlette/", "fastapi/")),
    ("structlog + logging", ("structlog/", "logging/")),
    ("limits (rate limit)", ("limits/",)),
    ("pydantic", ("pydantic",)),
    ("json / orjson", ("json/", "orjson")),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("threading / queue", ("threading.py", "queue.py", "concurrent/")),
]


def _area(file: str) -> str:
    for name, markers in _AREAS:
        if any(marker in file for marker in markers):
            return name
    return "other"


def summarize_profile(collapsed: str, top: int = 25) -> dict[str, object]:
    """Self and inclusive sample shares per function and per area, from py-spy's raw output.

    With ``--threads`` each stack starts with the thread; the event loop's thread is the one
    running uvicorn. Recorded with ``--gil``: only the thread holding the GIL is sampled, so the
    shares are of the Python interpreter's time (C code that releases the GIL, such as SQLite's
    own work in aiosqlite's thread or socket I/O, is not in them; idle time is not either).
    """
    total = 0
    by_thread: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_area: Counter[str] = Counter()
    incl_area: Counter[str] = Counter()
    lngate_incl: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        if thread != "?":
            frames = frames[1:]
        parsed = []
        for frame in frames:
            m = _FRAME.match(frame)
            if m:
                parsed.append((m["func"], m["file"]))
        if not parsed:
            continue
        total += count
        by_thread[thread] += count
        func, file = parsed[-1]
        short = _short(file)
        self_fn[f"{func} ({short})"] += count
        self_area[_area(file)] += count
        seen_fn, seen_area = set(), set()
        for func, file in parsed:
            key = f"{func} ({_short(file)})"
            if key not in seen_fn:
                seen_fn.add(key)
                incl_fn[key] += count
                if "lngate/" in file:
                    lngate_incl[key] += count
            area = _area(file)
            if area not in seen_area:
                seen_area.add(area)
                incl_area[area] += count

    def share(counter: Counter[str], n: int = top) -> list[tuple[str, float]]:
        return [(k, 100 * v / total) for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "threads": share(by_thread, 10),
        "self_by_area": share(self_area, 30),
        "inclusive_by_area": share(incl_area, 30),
        "self_by_function": share(self_fn),
        "inclusive_lngate_functions": share(lngate_incl),
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3.12/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# ============================================================================ main

TARGET_CPU_MS = 0.75
TARGET_RATE = {"sqlite1": 1200, "pg2": 1500, "pg2redis": 1500}


def print_capacity(capacity: list[dict[str, object]], args: argparse.Namespace) -> None:
    """The capacity table, the CPU per invoice beside the floor's, and the targets."""
    ran = [r for r in capacity if "failed" not in r]
    for r in capacity:
        if "failed" in r:
            print(f"\n{r['config']} run {r['run']} did not start: {r['failed']}")
    if not ran:
        return
    print_table(
        f"Capacity, instantaneous upstream, {args.connections} connections, {args.duration:g} s "
        f"({ran[0]['loadgen']}); floor = FastAPI + aiohttp proxy, no storage",
        ["run", "config", "processes", "database", "invoices/s", "p50 ms", "p99 ms",
         "CPU ms/invoice", "PG CPU ms/invoice", "server cores", "cores per worker", "PG cores",
         "upstream cores", "loadgen cores", "other cores",
         "machine busy %", "non-2xx", "errors", "stored", "load"],
        [[r["run"], r["config"], r["workers"], r["database"], fmt(r["invoices_per_s"], 0),
          fmt(r["p50_ms"], 1), fmt(r["p99_ms"], 1), fmt(r["gateway_cpu_ms_per_invoice"], 3),
          fmt(r.get("postgres_cpu_ms_per_invoice"), 3), fmt(r["gateway_cores"], 2),
          " / ".join(fmt(c, 2) for c in r.get("worker_cores", [])) or "-",
          fmt(r.get("postgres_cores"), 2), fmt(r["upstream_cores"], 2), fmt(r["loadgen_cores"], 2),
          fmt(r["other_cores"], 2), fmt(r["machine_busy_pct"], 0), r["non2xx"], r["errors"],
          "-" if r["stored"] is None else r["stored"], r["loadavg"]]
         for r in ran])
    floors = {r["run"]: float(r["gateway_cpu_ms_per_invoice"]) for r in ran
              if r["config"] == "floor" and r["gateway_cpu_ms_per_invoice"]}
    print()
    for config in dict.fromkeys(r["config"] for r in ran):
        if config == "floor":
            continue
        rows = [r for r in ran if r["config"] == config]
        cpu = [float(r["gateway_cpu_ms_per_invoice"]) for r in rows]
        rates = [float(r["invoices_per_s"]) for r in rows]
        beside = [f"{float(r['gateway_cpu_ms_per_invoice']):.3f} vs floor "
                  f"{floors[r['run']]:.3f} (+{float(r['gateway_cpu_ms_per_invoice']) - floors[r['run']]:.3f})"
                  for r in rows if r["run"] in floors]
        line = (f"{config}: CPU ms/invoice {min(cpu):.3f} .. {max(cpu):.3f} (target <= "
                f"{TARGET_CPU_MS}: {'MET' if max(cpu) <= TARGET_CPU_MS else 'NOT MET'})")
        if beside:
            line += "; per run: " + ", ".join(beside)
        pg = [float(r["postgres_cpu_ms_per_invoice"]) for r in rows
              if r.get("postgres_cpu_ms_per_invoice") is not None]
        if pg:
            line += f"; PostgreSQL CPU ms/invoice {min(pg):.3f} .. {max(pg):.3f}"
        line += f"; {min(rates):.0f} .. {max(rates):.0f} invoices/s"
        if config in TARGET_RATE:
            target = TARGET_RATE[config]
            line += f" (target >= {target}: {'MET' if min(rates) >= target else 'NOT MET'})"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Create-invoice benchmarks: gateway vs direct LNbits, and the gateway's "
        "CPU per invoice and capacity with an instantaneous upstream, beside a floor app.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--part", choices=("all", "direct", "capacity"), default="all")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--amount", type=int, default=100, help="invoice amount in sats")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for every gateway started (repeatable), e.g. "
                        "RECONCILE_INTERVAL_SECONDS=3600")
    group = parser.add_argument_group("direct vs gateway")
    group.add_argument("--calls", type=int, default=200, help="measured calls of each kind")
    group.add_argument("--warmup", type=int, default=20, help="warm-up calls of each kind")
    group = parser.add_argument_group("capacity")
    group.add_argument("--configs", nargs="+", metavar="CONFIG",
                       choices=[*CONFIGS, *(f"{c}@no-{piece}" for c in CONFIGS if c != "floor"
                                            for piece in ABLATION_PIECES)],
                       default=["floor", "sqlite1", "pg2"],
                       help="what to load: the floor app, the gateway on SQLite or PostgreSQL "
                       "with 1 or 2 processes (pg2redis: rate limits in Redis); sqlite2 is "
                       "refused by `lngate serve` (SQLite takes one writer process); "
                       "<config>@no-<piece>: with one piece switched off as --ablations does "
                       "(e.g. pg2@no-ratelimit)")
    group.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    group.add_argument("--baseline-ref", default=None, metavar="REF",
                       help="also run each gateway configuration from src/ as of this git ref "
                       "(shown as <config>@base), interleaved with the others")
    group.add_argument("--connections", type=int, default=20)
    group.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    group.add_argument("--warmup-seconds", type=float, default=2.0)
    group.add_argument("--pool", type=int, default=40_000,
                       help="invoices signed before the runs (per run: warm-up + measured)")
    group.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    group.add_argument("--profile", action="store_true",
                       help="add a 1-worker run under py-spy and summarise where time goes")
    group.add_argument("--profile-config", default="sqlite1", choices=["sqlite1", "pg1"],
                       help="the configuration --profile runs (one process)")
    group.add_argument("--ablations", action="store_true",
                       help="add 1-worker runs with pieces of the path switched off "
                       "(measurement-only patches in benchmarks/_ablate)")
    parser.add_argument("--src-ref", default=None, metavar="REF",
                        help="benchmark src/ as of this git ref (e.g. HEAD) instead of a copy "
                        "of the working tree taken at start")
    group.add_argument("--py-spy", default=os.environ.get("PY_SPY", ""),
                       help="path to py-spy (default: $PY_SPY or py-spy on PATH)")
    args = parser.parse_args()
    if args.repeat < 1 or args.calls < 1 or args.duration <= 0:
        parser.error("--repeat, --calls and --duration must be positive")

    set_gateway_env(args.gateway_env)
    snapshot_src(args.src_ref)
    if args.baseline_ref:
        snapshot_baseline(args.baseline_ref)
        args.configs = [c for config in args.configs
                        for c in ((config,) if config == "floor" or "@" in config
                                  else (config, f"{config}@base"))]
    info = machine_info()
    info["gateway_source"] = src_label()
    info["gateway_env"] = dict(GATEWAY_ENV)
    log(f"gateway source: {src_label()} -> {src_path()}")
    log(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"load {loadavg()}")
    output: dict[str, object] = {"machine": info, "args": vars(args)}
    direct: list[dict[str, object]] = []
    capacity: list[dict[str, object]] = []
    ablations: list[dict[str, object]] = []
    profile = None
    if args.part in ("all", "direct"):
        direct = run_direct(args)
        output["direct"] = direct
    if args.part in ("all", "capacity"):
        capacity, profile, ablations = run_capacity(args)
        output["capacity"] = capacity
        output["profile"] = profile
        output["ablations"] = ablations
    path = save_results("create_invoice", output)

    print(f"\n## bench_create_invoice ({info['date']}, {info['cores']} cores, {info['cpu']}, "
          f"source: {info['gateway_source']}; HEAD {info['commit']} + "
          f"{info['src_files_uncommitted']} uncommitted src files)")
    if direct:
        print_table(
            f"Gateway vs direct LNbits 1.6.2, {args.calls} sequential calls each, interleaved",
            ["run", "direct p50 ms", "direct p99 ms", "gateway p50 ms", "gateway p99 ms",
             "ratio p50", "ratio p99", "added (median of pairs) ms", "gateway CPU ms/call",
             "errors", "load"],
            [[r["run"], fmt(r["direct_p50_ms"], 2), fmt(r["direct_p99_ms"], 2),
              fmt(r["gateway_p50_ms"], 2), fmt(r["gateway_p99_ms"], 2), fmt(r["ratio_p50"], 3),
              fmt(r["ratio_p99"], 3), fmt(r["added_median_ms"], 2),
              fmt(r["gateway_cpu_ms_per_call"], 2), sum(r["errors"].values()), r["loadavg"]]
             for r in direct])
        print_table(
            "Where the added time goes (medians of per-call differences, ms): the floor app "
            "(FastAPI + aiohttp forwarding to the same LNbits, nothing else) and the bare floor "
            "(the same as a plain ASGI callable) beside the gateway; the gateway's LNbits call as "
            "its own recorder timed it",
            ["run", "bare floor added", "floor app added", "gateway added",
             "gateway over floor app",
             "gateway's LNbits call p50", "its LNbits call over direct",
             "gateway's own time (total - its LNbits call)"],
            [[r["run"], fmt(r["floor_bare_added_median_ms"], 2),
              fmt(r["floor_added_median_ms"], 2), fmt(r["added_median_ms"], 2),
              fmt(r["gateway_over_floor_median_ms"], 2), fmt(r.get("gateway_upstream_p50_ms"), 2),
              fmt(r.get("upstream_over_direct_median_ms"), 2),
              fmt(r.get("gateway_own_median_ms"), 2)]
             for r in direct])
        ratios = [float(r["ratio_p50"]) for r in direct if r["source"] == "current"]
        added = [float(r["added_median_ms"]) for r in direct if r["source"] == "current"]
        print(f"\np50 ratio over runs: {min(ratios):.3f} .. {max(ratios):.3f} "
              f"(target <= 1.10: {'MET' if max(ratios) <= 1.10 else 'NOT MET'}); added at p50 "
              f"(median of pairs): {min(added):.2f} .. {max(added):.2f} ms (target <= 1.5 ms: "
              f"{'MET' if max(added) <= 1.5 else 'NOT MET'})")
        for r in direct:
            for err, n in r["errors"].items():
                print(f"  run {r['run']}: {n} x {err}")
            for call, n in r.get("failed_provider_calls", {}).items():
                print(f"  run {r['run']}: failed provider call x{n}: {call}")
    if capacity:
        print_capacity(capacity, args)
    if ablations:
        base = {r["run"]: r for r in ablations if r["ablate"] == "baseline"}
        print_table(
            "Ablations, 1 worker: CPU saved by switching one piece off (measurement only)",
            ["run", "switched off", "invoices/s", "gateway CPU ms/invoice",
             "CPU ms saved vs baseline", "gateway cores"],
            [[r["run"], r["ablate"], fmt(r["invoices_per_s"], 0),
              fmt(r["gateway_cpu_ms_per_invoice"], 2),
              fmt(float(base[r["run"]]["gateway_cpu_ms_per_invoice"])
                  - float(r["gateway_cpu_ms_per_invoice"]), 2)
              if r["ablate"] != "baseline" else "-", fmt(r["gateway_cores"], 2)]
             for r in ablations])
    if profile:
        print(f"\n### Profile: 1 worker under py-spy --gil ({profile['samples']} samples, "
              f"{profile['invoices_per_s_under_profiler']:.0f} invoices/s while profiled)")
        for title, key in (("threads", "threads"), ("self time by area", "self_by_area"),
                           ("inclusive time by area", "inclusive_by_area"),
                           ("self time by function", "self_by_function"),
                           ("inclusive time, lngate functions", "inclusive_lngate_functions")):
            print(f"\n{title} (% of samples):")
            for name, pct in profile[key]:
                print(f"  {pct:5.1f}  {name}")
        print(f"\ncollapsed stacks: {profile['collapsed_stacks']}")
    print(f"\nraw results: {path}")
    return 0


if __name__ == "__main__":
    try:
        with contextlib.suppress(KeyboardInterrupt):
            sys.exit(main())
    finally:
        cleanup_src()
        drop_baseline()
