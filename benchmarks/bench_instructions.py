#!/usr/bin/env python3
"""Instructions per created invoice, counted by valgrind's callgrind: a figure the machine's load
does not move.

CPU milliseconds from /proc grow when other processes share the cores (caches, preemption), so
on a busy machine two runs of the same code can differ by half. Callgrind counts the
instructions the gateway's process executes instead (every thread, the event loop, the
database and the background loops included). For each source (the working tree's copy, and
``--baseline-ref``), a 1-process gateway on SQLite is started under callgrind with counting
off, in front of the instantaneous upstream of ``bench_create_invoice.py``; after ``--warmup``
creates, counting is switched on, ``--calls`` creates are sent (``--concurrency`` at a time),
counting is dumped, and the total is divided by the invoices created. ``--floor`` counts the
floor app of ``bench_create_invoice.py`` (FastAPI + aiohttp, nothing else) the same way. Under callgrind the
gateway runs ~50× slower: its timeouts are raised for the run (the attempt timeout and the
request deadline), which changes nothing on the counted path.

    .venv/bin/python benchmarks/bench_instructions.py --baseline-ref main --floor
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    HOST,
    ManagedProcess,
    clean_env,
    cleanup_src,
    fmt,
    free_port,
    http_get,
    loadavg,
    log,
    machine_info,
    print_table,
    save_results,
    snapshot_src,
    src_label,
    src_path,
)
from bench_create_invoice import EXPIRY, MEMO, Upstream  # noqa: E402

SLOW_SETTINGS = {  # valgrind makes everything ~50x slower: no timeout may fire on the path
    "ATTEMPT_TIMEOUT_FLOOR": "20", "ATTEMPT_TIMEOUT_DEFAULT": "25", "ATTEMPT_TIMEOUT_CEILING": "30",
    "CREATE_DEADLINE_SECONDS": "60", "HEALTH_CHECK_TIMEOUT": "30",
    "HTTP_KEEPALIVE_TIMEOUT_SECONDS": "300", "HTTP_READ_TIMEOUT_SECONDS": "300",
}


class CallgrindGateway(ManagedProcess):
    """``lngate serve`` (one process, SQLite) under ``valgrind --tool=callgrind``."""

    def __init__(self, src: Path, upstream: Upstream, workdir: Path, *,
                 floor: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.out = workdir / "callgrind.out"
        env = clean_env(
            LIGHTNING_TEST_MODE="false", RATE_LIMIT="1000000/second",
            DATABASE_URL=f"sqlite:///{workdir / 'gateway.sqlite3'}", LOG_FORMAT="json",
            PYTHONPATH=str(src), LNBITS_ENDPOINT=upstream.url,
            LNBITS_INVOICE_KEY="bench-invoice-key", LNBITS_NODE_PUBKEY=upstream.pubkey,
            PYTHONMALLOC="malloc", **SLOW_SETTINGS,
        )
        if floor:  # the floor app of bench_create_invoice.py, served the same way
            program = [str(Path(__file__).resolve().parent / "_floor_app.py"), "--port",
                       str(self.port), "--upstream", upstream.url]
        else:
            program = ["-m", "lngate", "serve", "--host", HOST, "--port", str(self.port)]
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={self.out}", "--dump-line=no", "--compress-strings=no",
                sys.executable, *program]
        self.ready_path = "/docs" if floor else "/api/check-invoice?id=ready"
        super().__init__("gateway", argv, env=env, cwd=workdir,
                         log_path=workdir / "gateway.log")
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=30)
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 900
        while True:
            if not self.alive():
                raise RuntimeError(f"gateway exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                http_get(f"{self.url}{self.ready_path}", timeout=30)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready:\n{self.log_tail()}")
            time.sleep(1)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def control(self, option: str) -> None:
        subprocess.run(["callgrind_control", option, str(self.pid)], check=True,
                       capture_output=True, timeout=300)

    def wait_for_dump(self, timeout: float = 300) -> None:
        """Wait until a dump file exists (callgrind writes it when the process next runs)."""
        deadline = time.monotonic() + timeout
        while not self.dumped_instructions() and time.monotonic() < deadline:
            time.sleep(1)

    def dumped_instructions(self) -> int:
        """The instructions in the dumps written so far (all threads)."""
        total = 0
        for path in self.workdir.glob("callgrind.out.*"):  # the dumps (.1, .2, ...)
            for line in path.read_text(errors="replace").splitlines():
                m = re.match(r"^totals:\s+(\d+)", line)  # the header's summary may be 0
                if m:
                    total += int(m[1])
        return total


async def send(url: str, calls: int, concurrency: int, amount: int) -> int:
    import aiohttp

    body = json.dumps({"amount": amount, "description": MEMO, "expiry": EXPIRY})
    ok = 0
    queue = iter(range(calls))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def worker() -> None:
            nonlocal ok
            for _ in queue:
                async with session.post(f"{url}/api/create-invoice", data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    ok += resp.status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def measure(src: Path | None, upstream: Upstream,
            args: argparse.Namespace) -> dict[str, object]:
    """``src``: where the gateway's code is; ``None``: the floor app."""
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-ir-"))
    upstream.control("/_bench/reset", "POST")
    gateway = CallgrindGateway(src or src_path(), upstream, workdir, floor=src is None)
    try:
        asyncio.run(send(gateway.url, args.warmup, args.concurrency, args.amount))
        gateway.control("--zero")
        gateway.control("--instr=on")
        started = time.monotonic()
        ok = asyncio.run(send(gateway.url, args.calls, args.concurrency, args.amount))
        gateway.control("--instr=off")
        elapsed = time.monotonic() - started
        gateway.control("--dump")
        gateway.wait_for_dump()
        instructions = gateway.dumped_instructions()
    finally:
        gateway.stop(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"ok": ok, "instructions": instructions, "per_invoice": instructions / max(ok, 1),
            "seconds_under_valgrind": elapsed, "loadavg": loadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--amount", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline-ref", default=None, metavar="REF")
    parser.add_argument("--floor", action="store_true",
                        help="also count the floor app (_floor_app.py) of bench_create_invoice.py")
    parser.add_argument("--src-ref", default=None, metavar="REF")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        log("valgrind is not installed (apt-get install -y valgrind)")
        return 2
    snapshot_src(args.src_ref)
    sources: dict[str, Path | None] = {"current": src_path()}
    if args.floor:
        sources["floor (FastAPI + aiohttp)"] = None
    base_dir = None
    if args.baseline_ref:
        base_dir = Path(tempfile.mkdtemp(prefix="lngate-bench-base-"))
        archive = subprocess.run(["git", "archive", "--format=tar", args.baseline_ref, "src"],
                                 cwd=Path(__file__).resolve().parent.parent,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
        sources[f"base ({args.baseline_ref})"] = base_dir / "src"
    info = machine_info()
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-ir-up-"))
    upstream = Upstream(args.repeat * (args.calls + args.warmup) * 2 + 100, args.amount, workdir)
    try:
        for repeat in range(1, args.repeat + 1):
            for name, src in sources.items():
                log(f"[instructions] run {repeat}, {name}: starting under callgrind (slow)")
                result = measure(src, upstream, args)
                result.update(run=repeat, source=name)
                rows.append(result)
                log(f"[instructions]   {result['per_invoice'] / 1e6:.2f} M instructions per "
                    f"invoice ({result['ok']} created)")
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if base_dir:
            shutil.rmtree(base_dir, ignore_errors=True)
        cleanup_src()
    path = save_results("instructions", {"machine": info, "args": vars(args), "runs": rows})
    print(f"\n## bench_instructions ({info['date']}, source: {src_label()}; HEAD {info['commit']})")
    print_table(
        f"Instructions per created invoice (callgrind, 1 process, SQLite, {args.calls} creates "
        f"{args.concurrency} at a time after {args.warmup} warm-up)",
        ["run", "source", "created", "M instructions / invoice", "load"],
        [[r["run"], r["source"], r["ok"], fmt(float(r["per_invoice"]) / 1e6, 2), r["loadavg"]]
         for r in rows])
    if args.baseline_ref:
        current = [float(r["per_invoice"]) for r in rows if r["source"] == "current"]
        base = [float(r["per_invoice"]) for r in rows if r["source"].startswith("base")]
        print(f"\ncurrent / base: {min(current) / max(base):.3f} .. "
              f"{max(current) / min(base):.3f}")
    print(f"\nraw results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
