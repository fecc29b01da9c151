#!/usr/bin/env python3
"""Failover benchmark (issue 3): create-invoice latency when the primary provider misbehaves.

Real peers on loopback: LNbits 1.6.2 (FakeWallet) as the primary, a real Nostr relay + NWC
wallet service as the fallback. Gateways run as real servers (``python -m lngate serve``).

The fallback's own latency is measured all along by a *reference* gateway configured with NWC
only: every request of a case is paired with one to the reference (alternating which goes
first), so each case's ratio compares figures taken at the same moments, whatever else the
machine is doing.

Cases (each with a fresh gateway, LNbits + NWC):

- ``healthy``: LNbits answers (LNBITS_ENDPOINT is the peer itself).
- ``refuse``: LNbits' port refuses connections.
- ``hang``: LNbits accepts connections and never answers.
- ``flap``: LNbits alternates between healthy and hung every ``--flap-period`` s.

In the last three LNBITS_ENDPOINT is a fault-injecting TCP proxy in front of the peer
(benchmarks/_fault_proxy.py). Before the fault, each gateway is warmed up with LNbits healthy
(so its adaptive attempt timeout has data, as in production) and then with LNbits answering a
400, which sends requests on to NWC without touching the breaker (so NWC's connection is warm).
``refuse`` and ``hang`` run ``--rounds`` fresh gateways, since only the first requests of each
meet a closed breaker. Each request is classified from the gateway's own ``provider_calls``
rows: *before the breaker opens* (LNbits tried and failed), *after* (LNbits skipped: circuit
open), LNbits served, or NWC tried first (LNbits demoted by the router's success-rate rule).

Targets: after the breaker opens, p50 and p99 <= 1.2 x the fallback alone; before it opens,
never longer than the per-attempt timeout plus the fallback.

    .venv/bin/python benchmarks/bench_failover.py            # everything, twice
    .venv/bin/python benchmarks/bench_failover.py --cases hang --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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
    loadavg,
    log,
    machine_info,
    percentile,
    print_table,
    save_results,
    set_gateway_env,
    snapshot_src,
    src_label,
    src_path,
)

MEMO = "lngate failover benchmark"
EXPIRY = 3600
CASES = ("healthy", "refuse", "hang", "flap")
LNBITS_SERVED = "LNbits served"
BEFORE = "before: LNbits tried, failed"
AFTER_OPEN = "after: breaker open, LNbits skipped"
AFTER_DEMOTED = "after: LNbits demoted, not tried"
AFTER_PHASES = (AFTER_OPEN, AFTER_DEMOTED)
# The gateway's defaults (src/lngate/settings.py), used in the bounds below unless overridden.
DEFAULTS = {"ATTEMPT_TIMEOUT_CEILING": 2.0, "ATTEMPT_TIMEOUT_FLOOR": 0.25,
            "ATTEMPT_TIMEOUT_DEFAULT": 1.5, "BREAKER_FAILURE_THRESHOLD": 3,
            "BREAKER_COOLDOWN_SECONDS": 30.0, "CREATE_DEADLINE_SECONDS": 3.0}


@dataclass
class Sample:
    """One create-invoice request of a case, with its paired reference (NWC alone) request."""

    start: float  # unix time
    end: float
    latency: float  # seconds
    status: int
    provider: str | None
    ref_latency: float
    ref_ok: bool
    mode: str = ""  # the proxy's mode when the request started (flap)
    round: int = 0
    phase: str = ""  # from provider_calls (see classify)
    lnbits_attempts: list[tuple[str, float, str]] = field(default_factory=list)
    error: str = ""  # the body of a non-200 answer (first 300 characters)


# ----------------------------------------------------------------------------- the proxy


class FaultProxy(ManagedProcess):
    def __init__(self, target_port: int, workdir: Path) -> None:
        self.port = free_port()
        super().__init__(
            "fault-proxy",
            [sys.executable, str(BENCH_DIR / "_fault_proxy.py"), "--port", str(self.port),
             "--target", f"{HOST}:{target_port}"],
            log_path=workdir / "proxy.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        line = self._line()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"fault proxy did not start: {line!r}\n{self.log_tail()}")
        self.switches: list[tuple[float, str]] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().strip()

    def mode(self, *words: str) -> float:
        """Switch mode; returns the unix time of the switch. Collects flap switches seen."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(("mode " + " ".join(words) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            line = self._line()
            if not line:
                raise RuntimeError(f"fault proxy died:\n{self.log_tail()}")
            kind, what, when = line.split()
            if kind == "switch":
                self.switches.append((float(when), what))
            elif kind == "ok":
                return float(when)
            else:
                raise RuntimeError(f"fault proxy: {line}")


# ----------------------------------------------------------------------------- requests


class Client:
    """One keep-alive aiohttp session for every gateway."""

    def __init__(self) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=8, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=15),
        )
        self.body = json.dumps({"amount": 100, "description": MEMO, "expiry": EXPIRY}).encode()
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def create(self, base_url: str) -> tuple[float, float, float, int, str | None, str]:
        """(start unix time, end unix time, latency s, HTTP status, provider, error body)."""
        start_wall = time.time()
        started = time.perf_counter()
        try:
            async with self.session.post(f"{base_url}/api/create-invoice", data=self.body,
                                         headers=self.headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (self._aiohttp.ClientError, TimeoutError) as exc:
            status, raw = 0, repr(exc).encode()
        latency = time.perf_counter() - started
        provider = None
        if status == 200:
            with contextlib.suppress(ValueError):
                provider = json.loads(raw).get("provider")
        error = "" if status == 200 else raw[:300].decode(errors="replace")
        return start_wall, start_wall + latency, latency, status, provider, error

    async def warm(self, base_url: str, count: int) -> None:
        for _ in range(count):
            await self.create(base_url)

    async def pairs(self, case_url: str, ref_url: str, *, count: int | None = None,
                    seconds: float | None = None, label: str = "") -> list[Sample]:
        samples: list[Sample] = []
        stop_at = time.monotonic() + seconds if seconds else None
        i = 0
        while (count is None or i < count) and (stop_at is None or time.monotonic() < stop_at):
            if i % 2 == 0:
                case = await self.create(case_url)
                ref = await self.create(ref_url)
            else:
                ref = await self.create(ref_url)
                case = await self.create(case_url)
            samples.append(Sample(start=case[0], end=case[1], latency=case[2], status=case[3],
                                  provider=case[4], ref_latency=ref[2],
                                  ref_ok=ref[3] == 200 and ref[4] == "nwc", error=case[5]))
            if not samples[-1].ref_ok:
                log(f"    reference request failed: HTTP {ref[3]} {ref[5][:200]}")
            i += 1
            if i % 50 == 0:
                log(f"    {label} {i} requests")
        return samples

    async def aclose(self) -> None:
        await self.session.close()


# ----------------------------------------------------------------------------- classification


def _unix(value: object) -> float:
    text = str(value)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def classify(samples: list[Sample], calls: list[dict[str, object]]) -> None:
    """Attach each LNbits ``create_invoice`` row of ``provider_calls`` to its request."""
    rows = [(_unix(r["started_at"]), r) for r in calls
            if r["provider"] == "lnbits" and r["operation"] == "create_invoice"]
    ordered = sorted(samples, key=lambda s: s.start)
    starts = [s.start for s in ordered]
    mine: dict[int, list[dict[str, object]]] = {}
    for t, row in rows:
        # the latest request that started before the attempt (2 ms of clock slack), if the
        # attempt began before that request ended: requests to this gateway are sequential
        i = bisect.bisect_right(starts, t + 0.002) - 1
        if i >= 0 and t <= ordered[i].end + 0.002:
            mine.setdefault(id(ordered[i]), []).append(row)
    for sample in samples:
        sample.lnbits_attempts = [(str(r["outcome"]), float(r["duration_ms"]),
                                   str(r["error_type"] or "")) for r in mine.get(id(sample), [])]
        outcomes = {a[0] for a in sample.lnbits_attempts}
        if sample.provider == "lnbits":
            sample.phase = LNBITS_SERVED
        elif outcomes & {"failure", "timeout"}:
            sample.phase = BEFORE
        elif "skipped" in outcomes:
            sample.phase = AFTER_OPEN
        elif sample.status != 200:
            sample.phase = "failed (no invoice)"
        else:
            sample.phase = AFTER_DEMOTED


def mode_at(switches: list[tuple[float, str]], when: float) -> str:
    mode = ""
    for at, what in switches:
        if at <= when:
            mode = what
    return mode


# ----------------------------------------------------------------------------- cases


def gateway_for(settings: dict[str, str]) -> GatewayProcess:
    return GatewayProcess(settings)


async def run_case(case: str, args: argparse.Namespace, client: Client, ref: GatewayProcess,
                   lnbits, nwc, proxy: FaultProxy) -> list[Sample]:
    base = {"NWC_URL": nwc.uri, "LNBITS_INVOICE_KEY": lnbits.merchant_inkey,
            "LNBITS_NODE_PUBKEY": lnbits.payee_pubkey}
    if case == "healthy":
        gateway = gateway_for({**base, "LNBITS_ENDPOINT": lnbits.url})
        try:
            await client.warm(gateway.url, args.warmup)
            samples = await client.pairs(gateway.url, ref.url, count=args.requests,
                                         label=case)
        finally:
            gateway.stop()
        classify(samples, gateway.provider_calls())
        gateway.cleanup()
        return samples

    settings = {**base, "LNBITS_ENDPOINT": proxy.url}
    rounds = 1 if case == "flap" else args.rounds
    if case == "flap" and args.flap_cooldown is not None:
        settings["BREAKER_COOLDOWN_SECONDS"] = str(args.flap_cooldown)
    samples: list[Sample] = []
    for round_ in range(1, rounds + 1):
        proxy.mode("forward")
        gateway = gateway_for(settings)
        try:
            half = max(1, args.warmup // 2)
            await client.warm(gateway.url, half)  # LNbits healthy: its latency is learned
            proxy.mode("reject")
            await client.warm(gateway.url, half)  # 400 from LNbits: NWC serves, breaker intact
            if case == "flap":
                proxy.switches = [(proxy.mode("flap", "hang", "forward",
                                              f"{args.flap_period:g}"), "hang")]
                got = await client.pairs(gateway.url, ref.url, seconds=args.flap_duration,
                                         label=case)
                proxy.mode("forward")
                for sample in got:
                    sample.mode = mode_at(proxy.switches, sample.start)
                    sample.round = round_
            else:
                proxy.mode(case)
                log(f"  [{case}] round {round_}/{rounds}: LNbits now '{case}'")
                got = await client.pairs(gateway.url, ref.url, count=args.round_requests,
                                         label=f"{case} round {round_}")
                proxy.mode("forward")
                for sample in got:
                    sample.round = round_
        finally:
            gateway.stop()
        classify(got, gateway.provider_calls())
        gateway.cleanup()
        samples.extend(got)
    return samples


# ----------------------------------------------------------------------------- summary


def summarize(case: str, samples: list[Sample]) -> list[dict[str, object]]:
    """Rows: the whole case, then each phase, with ratios to the paired reference requests."""
    rows = []
    ref_all = [s.ref_latency for s in samples if s.ref_ok]
    groups: list[tuple[str, list[Sample]]] = [("all", samples)]
    phases = sorted({s.phase for s in samples})
    if case == "flap":
        for mode in ("hang", "forward"):
            groups.append((f"LNbits {'hung' if mode == 'hang' else 'healthy'} (all)",
                           [s for s in samples if s.mode == mode]))
    if len(phases) > 1 or case != "healthy":
        groups += [(phase, [s for s in samples if s.phase == phase]) for phase in phases]
    ref_p50, ref_p99 = percentile(ref_all, 50), percentile(ref_all, 99)
    for name, group in groups:
        if not group:
            continue
        lat = [s.latency for s in group]
        refs = [s.ref_latency for s in group if s.ref_ok]
        served: dict[str, int] = {}
        for s in group:
            key = s.provider or f"HTTP {s.status}"
            served[key] = served.get(key, 0) + 1
        attempts = [len([a for a in s.lnbits_attempts if a[0] != "skipped"]) for s in group]
        # The fallback's latency for a phase with few requests: the whole case's (paired) p50/p99.
        phase_ref_p50 = percentile(refs, 50) if len(refs) >= 20 else ref_p50
        phase_ref_p99 = percentile(refs, 99) if len(refs) >= 20 else ref_p99
        phase_ref_mean = statistics.fmean(refs) if len(refs) >= 20 else statistics.fmean(ref_all)
        rows.append({
            "case": case, "phase": name, "n": len(group),
            "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
            "mean_ms": statistics.fmean(lat) * 1000, "max_ms": max(lat) * 1000,
            "fallback_mean_ms": phase_ref_mean * 1000,
            "ratio_mean": statistics.fmean(lat) / phase_ref_mean,
            "fallback_p50_ms": phase_ref_p50 * 1000, "fallback_p99_ms": phase_ref_p99 * 1000,
            "ratio_p50": percentile(lat, 50) / phase_ref_p50,
            "ratio_p99": percentile(lat, 99) / phase_ref_p99,
            "served": served,
            "lnbits_attempts_max": max(attempts) if attempts else 0,
            "lnbits_attempt_ms_max": max((a[1] for s in group for a in s.lnbits_attempts
                                          if a[0] != "skipped"), default=None),
        })
    return rows


def check_targets(rows: list[dict[str, object]], samples: dict[str, list[Sample]],
                  ceiling: float, floor: float) -> list[list[str]]:
    """One line per target and case."""
    lines = []
    for row in rows:
        if row["phase"] in AFTER_PHASES and int(row["n"]) >= 10:
            ok = float(row["ratio_p50"]) <= 1.2 and float(row["ratio_p99"]) <= 1.2
            lines.append([f"{row['case']}: {row['phase']}: <= 1.2 x fallback",
                          f"p50 x{float(row['ratio_p50']):.2f}, p99 x{float(row['ratio_p99']):.2f}"
                          f" (mean x{float(row['ratio_mean']):.2f}, n={row['n']})",
                          "MET" if ok else "NOT MET"])
    for case, group in samples.items():
        before = [s for s in group if s.phase == BEFORE]
        if not before:
            continue
        ref = [s.ref_latency for s in group if s.ref_ok]
        fallback = percentile(ref, 99)
        # The per-attempt timeout that applied to a request: its longest LNbits attempt (a hung
        # LNbits is cut at the timeout), and at least the configured floor (a refused connection
        # fails long before any timeout). Bound: that timeout + the fallback's p99 in this case.
        excess = []
        for s in before:
            timeout = max(floor, max(a[1] for a in s.lnbits_attempts if a[0] != "skipped") / 1000)
            excess.append((s.latency - (timeout + fallback), s, timeout))
        worst_excess, worst_s, worst_timeout = max(excess, key=lambda e: e[0])
        worst = max(s.latency for s in before)
        retried = sum(1 for s in before
                      if len([a for a in s.lnbits_attempts if a[0] != "skipped"]) > 1)
        lines.append([
            f"{case}: before the breaker opens <= attempt timeout + fallback",
            f"worst case {worst_s.latency * 1000:.0f} ms vs {worst_timeout * 1000:.0f} + "
            f"{fallback * 1000:.0f} ms (n={len(before)}; {retried} tried LNbits twice)",
            "MET" if worst_excess <= 0 else "NOT MET",
        ])
        ok_loose = worst <= ceiling + fallback
        lines.append([
            f"{case}: before the breaker opens <= ceiling ({ceiling:g} s) + fallback",
            f"worst {worst * 1000:.0f} ms vs {(ceiling + fallback) * 1000:.0f} ms",
            "MET" if ok_loose else "NOT MET",
        ])
    return lines


# ----------------------------------------------------------------------------- main


async def one_run(args: argparse.Namespace, lnbits, nwc, proxy: FaultProxy,
                  run: int) -> tuple[list[dict[str, object]], dict[str, list[Sample]]]:
    client = Client()
    ref = gateway_for({"NWC_URL": nwc.uri})
    all_rows: list[dict[str, object]] = []
    all_samples: dict[str, list[Sample]] = {}
    try:
        log(f"[run {run}] reference gateway (NWC only) up; warming it up")
        await client.warm(ref.url, args.warmup)
        for case in args.cases:
            log(f"[run {run}] case '{case}' (load {loadavg()})")
            samples = await run_case(case, args, client, ref, lnbits, nwc, proxy)
            rows = summarize(case, samples)
            for row in rows:
                row["run"] = run
            all_rows.extend(rows)
            all_samples[case] = samples
            head = rows[0]
            log(f"[run {run}] {case}: p50 {head['p50_ms']:.1f} ms (fallback "
                f"{head['fallback_p50_ms']:.1f} ms, x{head['ratio_p50']:.2f}), p99 "
                f"{head['p99_ms']:.1f} ms, served {head['served']}")
    finally:
        ref.stop()
        ref.cleanup()
        await client.aclose()
    return all_rows, all_samples


def report(info: dict[str, object], samples_by_run: list[dict[str, list[Sample]]],
           details_max: int) -> None:
    """Print every table from the samples (also used by --report on saved results)."""
    rows: list[dict[str, object]] = []
    for run, samples in enumerate(samples_by_run, 1):
        for case, group in samples.items():
            for row in summarize(case, group):
                row["run"] = run
                rows.append(row)
    ceiling = DEFAULTS["ATTEMPT_TIMEOUT_CEILING"]
    print(f"\n## bench_failover ({info.get('date')}, {info.get('cores')} cores, "
          f"{info.get('cpu')}, source: {info.get('gateway_source', '?')}; HEAD "
          f"{info.get('commit', '?')} + {info.get('src_files_uncommitted', '?')} uncommitted "
          "src files)")
    print_table(
        "Create-invoice latency through the gateway; fallback = NWC alone, paired requests",
        ["run", "case", "phase", "n", "p50 ms", "p99 ms", "mean ms", "max ms", "fallback p50 ms",
         "fallback p99 ms", "fallback mean ms", "ratio p50", "ratio p99", "ratio mean",
         "LNbits attempts/req (max)", "served by"],
        [[r["run"], r["case"], r["phase"], r["n"], fmt(r["p50_ms"]), fmt(r["p99_ms"]),
          fmt(r["mean_ms"]), fmt(r["max_ms"]), fmt(r["fallback_p50_ms"]),
          fmt(r["fallback_p99_ms"]), fmt(r["fallback_mean_ms"]), fmt(r["ratio_p50"], 2),
          fmt(r["ratio_p99"], 2), fmt(r["ratio_mean"], 2), r["lnbits_attempts_max"],
          ", ".join(f"{k} {v}" for k, v in sorted(r["served"].items()))] for r in rows])
    checks = []
    for run, samples in enumerate(samples_by_run, 1):
        for line in check_targets([r for r in rows if r["run"] == run], samples, ceiling,
                                  DEFAULTS["ATTEMPT_TIMEOUT_FLOOR"]):
            checks.append([run, *line])
    details = []
    for run, samples in enumerate(samples_by_run, 1):
        for case, group in samples.items():
            shown = 0
            for s in group:
                interesting = (s.phase in (BEFORE, "failed (no invoice)")
                               or (case == "flap" and s.phase == LNBITS_SERVED)
                               or (case == "healthy" and s.phase != LNBITS_SERVED))
                if not interesting or shown >= details_max:
                    continue
                shown += 1
                tried = [a for a in s.lnbits_attempts if a[0] != "skipped"]
                details.append([
                    run, case, s.round or "-", s.mode or "-", s.phase, f"{s.latency * 1000:.0f}",
                    " + ".join(f"{o}{'/' + e if e else ''} {d:.0f}" for o, d, e in tried) or "-",
                    f"{s.latency * 1000 - sum(a[1] for a in tried):.0f}",
                    s.provider or f"HTTP {s.status}: {s.error[:120]}",
                ])
    print_table(f"Requests that tried LNbits and failed, failed requests, LNbits-served ones when "
                f"flapping, NWC-served ones when healthy (at most {details_max} per case)",
                ["run", "case", "round", "proxy mode", "phase", "latency ms",
                 "LNbits attempts (outcome/error ms)", "rest ms", "served by"], details)
    print_table("Targets", ["run", "target", "measured", "verdict"], checks)
    spread = {}
    for r in rows:
        spread.setdefault((r["case"], r["phase"]), []).append(float(r["ratio_p50"]))
    print("\nrun-to-run spread of the p50 ratio: " + "; ".join(
        f"{case}/{phase}: {min(v):.2f}..{max(v):.2f}" for (case, phase), v in spread.items()
        if len(v) > 1))


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Failover benchmarks of issue 3: create-invoice latency through the gateway "
        "with LNbits (primary) healthy, refusing, hung or flapping, and NWC as fallback, as "
        "ratios to the fallback alone measured in the same run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeat", type=int, default=2, help="runs of the whole matrix")
    parser.add_argument("--requests", type=int, default=200,
                        help="measured requests of the healthy case")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per gateway")
    parser.add_argument("--rounds", type=int, default=4,
                        help="fresh gateways for refuse and hang (each opens its breaker once)")
    parser.add_argument("--round-requests", type=int, default=50,
                        help="measured requests per round of refuse and hang")
    parser.add_argument("--flap-period", type=float, default=4.0,
                        help="seconds between LNbits switches healthy <-> hung")
    parser.add_argument("--flap-duration", type=float, default=48.0,
                        help="seconds of requests in the flap case")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for every gateway started (repeatable), e.g. "
                        "RECONCILE_INTERVAL_SECONDS=3600")
    parser.add_argument("--details", type=int, default=25,
                        help="at most this many per-request detail lines per case and run")
    parser.add_argument("--src-ref", default=None, metavar="REF",
                        help="benchmark src/ as of this git ref (e.g. HEAD) instead of a copy "
                        "of the working tree taken at start")
    parser.add_argument("--flap-cooldown", type=float, default=10.0,
                        help="BREAKER_COOLDOWN_SECONDS for the flap case (the gateway's default "
                        "is 30 s); pass a negative number to keep the default")
    parser.add_argument("--report", metavar="JSON",
                        help="print the tables of a saved run (benchmarks/results/failover-*.json)"
                        " and exit")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        runs = [{case: [Sample(**{**d, "lnbits_attempts": [tuple(a) for a in
                                                            d["lnbits_attempts"]]})
                        for d in group] for case, group in run.items()}
                for run in saved["samples"]]
        report(saved["machine"], runs, args.details)
        return 0
    if args.flap_cooldown is not None and args.flap_cooldown < 0:
        args.flap_cooldown = None
    if min(args.repeat, args.requests, args.rounds, args.round_requests) < 1:
        parser.error("counts must be positive")

    from tests.peers.lnbits_peer import LNbitsPeer
    from tests.peers.nwc_peer import NWCPeer

    set_gateway_env(args.gateway_env)
    snapshot_src(args.src_ref)
    info = machine_info()
    info["gateway_source"] = src_label()
    info["gateway_env"] = dict(GATEWAY_ENV)
    log(f"gateway source: {src_label()} -> {src_path()}")
    log(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"load {loadavg()}")
    workdir = Path(__import__("tempfile").mkdtemp(prefix="lngate-bench-failover-"))
    rows: list[dict[str, object]] = []
    samples_by_run: list[dict[str, list[Sample]]] = []
    lnbits = nwc = proxy = None
    try:
        log("starting the LNbits 1.6.2 FakeWallet peer")
        lnbits = LNbitsPeer(log=lambda m: log(f"lnbits-peer: {m}"))
        lnbits.launch()
        log("starting the Nostr relay + NWC wallet service peer")
        nwc = NWCPeer().start()
        proxy = FaultProxy(lnbits.port, workdir)
        for run in range(1, args.repeat + 1):
            run_rows, run_samples = asyncio.run(one_run(args, lnbits, nwc, proxy, run))
            rows.extend(run_rows)
            samples_by_run.append(run_samples)
    finally:
        if proxy is not None:
            proxy.stop()
        if nwc is not None:
            nwc.stop()
        if lnbits is not None:
            lnbits.close()
        __import__("shutil").rmtree(workdir, ignore_errors=True)
        cleanup_src()

    path = save_results("failover", {
        "machine": info, "args": vars(args), "rows": rows,
        "samples": [{case: [s.__dict__ for s in group] for case, group in run.items()}
                    for run in samples_by_run],
    })
    report(info, samples_by_run, args.details)
    print(f"\nraw results: {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
