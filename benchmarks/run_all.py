"""Run every benchmark script in benchmarks/ one after the other and summarise how each went.

Modes:

* default (``make bench``): a quick pass, each script with small counts (about six minutes).
  The figures only show that each benchmark runs end to end; they are too small to quote.
* ``--full``: each script with its own defaults, the runs docs/benchmarks.md reports (about an
  hour, plus the first install of the LNbits and NWC peers).
* ``--check``: each script's ``--help`` only (seconds): every script still imports and parses.

``--only NAME ...`` picks scripts (e.g. ``--only bolt11 hotspots``); ``--list`` prints what would
run. Scripts marked with peers start them themselves (LNbits from its own venv, the Nostr relay
and NWC wallet on Node, PostgreSQL on 127.0.0.1:5432); each saves its raw figures under
``benchmarks/results/``. The exit status is non-zero when any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    """One script, what it needs, and its quick arguments."""

    name: str
    needs: str
    quick: tuple[str, ...]

    @property
    def script(self) -> Path:
        return BENCH_DIR / f"bench_{self.name}.py"


BENCHMARKS = (
    Benchmark("bolt11", "nothing", ("--iterations", "200", "--rounds", "1")),
    Benchmark("hotspots", "nothing", ("--n", "100", "--repeat", "1")),
    Benchmark("monitoring", "PostgreSQL", ("--rows", "20000")),
    Benchmark("admin_stats", "PostgreSQL", ("--rows", "20000", "--invoices", "2000")),
    Benchmark("reconciler", "nothing (git, for the previous schedule's source)",
              ("--sizes", "10", "1000", "--window", "10", "--warmup", "2", "--no-chart")),
    Benchmark("growth", "PostgreSQL",
              ("--rows", "20000", "--requests", "100", "--rounds", "2", "--warmup", "20",
               "--page-runs", "1", "--audit-seconds", "8")),
    Benchmark("memory", "nothing", ("--requests", "2000", "--streams", "50")),
    Benchmark("rate_limit", "PostgreSQL", ("--seconds", "1", "--repeat", "1")),
    Benchmark("webhook", "LNbits peer, SMTP sink",
              ("--rate", "10", "--seconds", "1", "--rounds", "1", "--pending", "20",
               "--concurrency", "1,4")),
    Benchmark("create_invoice", "LNbits peer; wrk if installed",
              ("--repeat", "1", "--calls", "20", "--warmup", "5", "--configs", "floor", "sqlite1",
               "--duration", "2", "--warmup-seconds", "1", "--pool", "2000")),
    Benchmark("instructions", "valgrind (callgrind)",
              ("--calls", "20", "--warmup", "10", "--concurrency", "2")),
    Benchmark("overload", "nothing; wrk if installed",
              ("--capacity-seconds", "2", "--warmup", "1", "--over", "3", "--after", "3",
               "--pool", "10000")),
    Benchmark("failover", "LNbits peer, Nostr relay + NWC wallet (Node)",
              ("--repeat", "1", "--requests", "10", "--warmup", "3", "--rounds", "1",
               "--round-requests", "5", "--flap-duration", "8", "--details", "3")),
)


def command(bench: Benchmark, mode: str) -> list[str]:
    """The command line that runs ``bench`` in ``mode`` (quick, full or check)."""
    extra = {"quick": list(bench.quick), "full": [], "check": ["--help"]}[mode]
    return [sys.executable, str(bench.script.relative_to(BENCH_DIR.parent)), *extra]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="See docs/benchmarks.md for what each measures.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_const", dest="mode", const="full",
                      help="each script with its own defaults (the documented runs, ~1 h)")
    mode.add_argument("--check", action="store_const", dest="mode", const="check",
                      help="only each script's --help: they import and parse their options")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[b.name for b in BENCHMARKS],
                        help="run only these scripts")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    parser.set_defaults(mode="quick")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]

    if args.list:
        for bench in chosen:
            shown = " ".join(["python", *command(bench, args.mode)[1:]])
            print(f"{bench.name:15} needs {bench.needs:45} {shown}")
        return 0

    results: list[tuple[Benchmark, int, float]] = []
    for bench in chosen:
        cmd = command(bench, args.mode)
        print(f"\n=== {bench.name} ({args.mode}; needs {bench.needs}): {' '.join(cmd[1:])}",
              flush=True)
        started = time.monotonic()
        status = subprocess.run(cmd, cwd=BENCH_DIR.parent,
                                stdout=subprocess.DEVNULL if args.mode == "check" else None,
                                check=False).returncode
        results.append((bench, status, time.monotonic() - started))

    print(f"\n## Benchmarks, {args.mode} run\n")
    print("| script | result | seconds |")
    print("|---|---|---:|")
    for bench, status, seconds in results:
        verdict = "ok" if status == 0 else f"FAILED (exit {status})"
        print(f"| bench_{bench.name}.py | {verdict} | {seconds:.1f} |")
    failed = [bench.name for bench, status, _ in results if status != 0]
    print(f"\n{len(results) - len(failed)} of {len(results)} scripts ran"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
