#!/usr/bin/env python3
"""Memory of a gateway worker under a long run: RSS after 50,000 requests with 500 open streams.

One gateway (``python -m lngate serve``, one worker, SQLite unless ``--database-url``) in front
of the instantaneous LNbits upstream (``_instant_upstream.py``), rate limits off. First
``--streams`` invoices are created and an event stream (``GET /api/invoices/{hash}/events``,
Server-Sent Events) is opened on each and kept open, read as it comes, for the whole run (the
streams' lifetime is set above the run's length). Then ``--requests`` requests from
``--connections`` connections, alternately a create-invoice and a check-invoice of an invoice
created a little earlier. The worker's RSS (``VmRSS`` in /proc) is sampled after the streams
opened (0) and every ``--requests / 5`` requests; the high-water mark (``VmHWM``) at the end.
Before anything, the idle worker's RSS (started, nothing served).

Targets: RSS <= 120 MiB at the end, and no growth between the 10,000th and the 50,000th
request (reported as MiB per 10,000 requests over that span; a few hundred KiB is allocator
noise: fragments of freed memory that the allocator keeps).

``--tracemalloc`` (measurement only: slower, and tracemalloc's own bookkeeping inflates RSS)
runs the gateway with the tracemalloc hook of ``_probe/sitecustomize.py``, takes a snapshot at
the first sample after 0 and at the end, and prints the 25 places whose live allocations grew
most between the two.

``--memstats`` (measurement only) runs the gateway with the ``_probe/_memstats.py`` hook: at each
sample the worker dumps its memory by owner (mappings by kind, glibc malloc, pymalloc, SQLite)
and a table shows how each moved, ending with the change between the first sample after 0 and
the last.

    .venv/bin/python benchmarks/bench_memory.py                        # ~5 min
    .venv/bin/python benchmarks/bench_memory.py --requests 5000 --streams 100
    .venv/bin/python benchmarks/bench_memory.py --baseline-ref main    # main first, then this tree
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    GatewayProcess,
    cleanup_src,
    fmt,
    loadavg,
    log,
    machine_info,
    print_table,
    process_cpu_seconds,
    save_results,
    set_gateway_env,
    snapshot_src,
    src_label,
    src_path,
)
from bench_create_invoice import EXPIRY, MEMO, Upstream

MIB = 1024 * 1024


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0])
    return figures


def request_dump(pid: int, folder: Path, pattern: str, timeout: float = 120) -> Path | None:
    """Send ``SIGUSR2`` to the measured process and wait for the new file it writes."""
    before = set(folder.glob(pattern))
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = set(folder.glob(pattern)) - before
        if new:
            return new.pop()
        time.sleep(0.05)
    return None


def memstats_row(label: int, rss_kib: int, stats: dict[str, Any]) -> dict[str, float]:
    """One sample's memory by owner, in MiB (see ``_probe/_memstats.py``)."""
    smaps = stats["smaps"]
    glibc = stats["mallinfo2"]
    pym = stats["pymalloc"]
    sqlite = stats["sqlite"]

    def rss(kind: str) -> float:
        return smaps.get(kind, {}).get("Rss", 0) / 1024

    return {
        "requests": label, "VmRSS": rss_kib / 1024,
        "[heap] Rss": rss("heap"), "glibc arena heaps Rss": rss("glibc_arenas"),
        "other anon Rss": rss("anon"), "file Rss": rss("file"),
        "of which database files": sum(kib for path, kib in smaps.get("files", {}).items()
                                       if ".sqlite" in path or path.endswith(".db")) / 1024,
        "stack+special Rss":
        rss("stack") + rss("special"),
        "glibc heap in use": glibc["uordblks"] / MIB, "glibc heap free": glibc["fordblks"] / MIB,
        "glibc mmapped": glibc["hblkhd"] / MIB, "glibc heap size": glibc["arena"] / MIB,
        "pymalloc arenas": pym.get("arena_total", 0) / MIB,
        "pymalloc in blocks": pym.get("bytes in allocated blocks", 0) / MIB,
        "pymalloc free in pools": pym.get("bytes in available blocks", 0) / MIB,
        "sqlite memory used": sqlite.get("memory_used", 0) / MIB,
        "sqlite caches": sum(c["cache_used"] for c in sqlite.get("connections", [])) / MIB,
        "sqlite statements": sum(c["stmt_used"] for c in sqlite.get("connections", [])) / MIB,
    }


async def run(gateway: GatewayProcess, args: argparse.Namespace,
              snapshot_folder: Path | None, memstats_folder: Path | None) -> dict[str, object]:
    import aiohttp

    body = json.dumps({"amount": 100, "description": MEMO, "expiry": EXPIRY}).encode()
    headers = {"Content-Type": "application/json"}
    pid = gateway.pid
    samples: list[dict[str, object]] = []
    memstats: list[dict[str, object]] = []
    snapshots: list[Path] = []
    counts = {"done": 0, "errors": 0, "stream_bytes": 0, "streams_open": 0, "streams_ended": 0}
    recent: list[str] = []

    def sample(label: int) -> None:
        figures = memory_kib(pid)
        samples.append({"requests": label, "rss_mib": figures["VmRSS"] / 1024,
                        "hwm_mib": figures["VmHWM"] / 1024,
                        "cpu_s": process_cpu_seconds(pid), "load": loadavg(),
                        "streams_open": counts["streams_open"]})
        log(f"  {label:>6} requests: RSS {figures['VmRSS'] / 1024:.1f} MiB, "
            f"{counts['streams_open']} streams open, load {loadavg()}")
        if snapshot_folder is not None and label and (len(snapshots) == 0
                                                      or label == args.requests):
            made = request_dump(pid, snapshot_folder, "snapshot-*.pickle")
            if made is not None:
                time.sleep(1.0)  # let the dump finish
                snapshots.append(made)
        if memstats_folder is not None:
            made = request_dump(pid, memstats_folder, "memstats-*.json")
            if made is not None:
                memstats.append(memstats_row(label, figures["VmRSS"],
                                             json.loads(made.read_text())))
                samples[-1]["memstats"] = json.loads(made.read_text())

    await asyncio.sleep(2)  # the start-up's background work (first probes) done
    idle = memory_kib(pid)
    if memstats_folder is not None:
        made = request_dump(pid, memstats_folder, "memstats-*.json")
        if made is not None:
            memstats.append(memstats_row(-1, idle["VmRSS"], json.loads(made.read_text())))
    log(f"  idle: RSS {idle['VmRSS'] / 1024:.1f} MiB")
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def create() -> str | None:
            async with session.post(f"{gateway.url}/api/create-invoice", data=body,
                                    headers=headers) as resp:
                if resp.status >= 300:
                    await resp.read()
                    return None
                return (await resp.json())["invoice"]["payment_hash"]

        async def follow(payment_hash: str, opened: asyncio.Event) -> None:
            url = f"{gateway.url}/api/invoices/{payment_hash}/events"
            async with session.get(url) as resp:
                counts["streams_open"] += 1
                opened.set()
                async for chunk in resp.content.iter_any():
                    counts["stream_bytes"] += len(chunk)
            counts["streams_open"] -= 1
            counts["streams_ended"] += 1

        stream_hashes: list[str] = []
        while len(stream_hashes) < args.streams:  # as many at once as the run's connections
            batch = min(args.connections, args.streams - len(stream_hashes))
            made = await asyncio.gather(*(create() for _ in range(batch)))
            counts["errors"] += batch - len([h for h in made if h])
            if counts["errors"] > args.streams:
                raise RuntimeError("the gateway refused to create the streams' invoices")
            stream_hashes.extend(h for h in made if h)
        recent.extend(stream_hashes[-100:])
        followers = []
        for payment_hash in stream_hashes:
            opened = asyncio.Event()
            followers.append(asyncio.create_task(follow(payment_hash, opened)))
            await asyncio.wait_for(opened.wait(), 30)
        await asyncio.sleep(2)
        sample(0)

        step = max(1, args.requests // 5)
        next_sample = step
        lock = asyncio.Lock()

        async def worker(index: int) -> None:
            nonlocal next_sample
            i = index
            while counts["done"] < args.requests:
                try:
                    if i % 2 == 0:
                        made = await create()
                        if made is None:
                            counts["errors"] += 1
                        else:
                            recent.append(made)
                            if len(recent) > 1000:
                                del recent[:500]
                    else:
                        target = recent[(i * 7919) % len(recent)]
                        async with session.get(f"{gateway.url}/api/check-invoice",
                                               params={"id": target}) as resp:
                            await resp.read()
                            counts["errors"] += resp.status >= 300
                except aiohttp.ClientError:
                    counts["errors"] += 1
                i += args.connections
                counts["done"] += 1
                if counts["done"] >= next_sample:
                    async with lock:
                        if counts["done"] >= next_sample:
                            label = next_sample
                            next_sample += step
                            sample(label)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(args.connections)))
        elapsed = time.perf_counter() - started
        if not samples or samples[-1]["requests"] != args.requests:
            sample(args.requests)
        end = memory_kib(pid)
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    return {"samples": samples, "idle_rss_mib": idle["VmRSS"] / 1024,
            "hwm_mib": end["VmHWM"] / 1024, "elapsed_s": elapsed,
            "errors": counts["errors"], "streams_ended_early": counts["streams_ended"],
            "stream_bytes": counts["stream_bytes"], "snapshots": [str(p) for p in snapshots],
            "memstats": memstats}


def snapshot_diff(first: str, last: str, top: int = 25) -> list[tuple[str, str, str]]:
    """The places whose live memory grew most between two tracemalloc snapshots."""
    import tracemalloc

    before = tracemalloc.Snapshot.load(first)
    after = tracemalloc.Snapshot.load(last)
    rows = []
    for stat in after.compare_to(before, "traceback")[:top]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback][-4:]
        rows.append((f"{stat.size_diff / 1024:+.1f}", f"{stat.count_diff:+d}",
                     " < ".join(reversed(frames))))
    return rows


def measure(args: argparse.Namespace, source: Path, label: str) -> dict[str, object]:
    """One gateway importing ``lngate`` from ``source``, measured as the module docstring says."""
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-memory-"))
    log(f"measuring {label} ({source})")
    # one signed invoice per request at most: the create workers may outpace the check workers,
    # and an exhausted pool would answer 503 and open the breaker
    upstream = Upstream(args.requests + args.streams + 500, 100, workdir)
    settings = {
        "LNBITS_ENDPOINT": upstream.url, "LNBITS_INVOICE_KEY": "bench-invoice-key",
        "LNBITS_NODE_PUBKEY": upstream.pubkey, "RATE_LIMIT": "1000000/second",
        "RATE_LIMIT_CHECK": "1000000/second", "SSE_MAX_SECONDS": "86400",
        "PYTHONPATH": str(source),
    }
    if args.sse_recheck_seconds:
        settings["SSE_RECHECK_SECONDS"] = str(args.sse_recheck_seconds)
    if args.database_url:
        settings["DATABASE_URL"] = args.database_url
    snapshot_folder = memstats_folder = None
    if args.memstats:
        memstats_folder = workdir / "memstats"
        memstats_folder.mkdir()
        settings["PYTHONPATH"] = f"{BENCH_DIR / '_probe'}:{source}"
        settings["LNGATE_BENCH_MEMSTATS"] = str(memstats_folder)
    if args.tracemalloc:
        snapshot_folder = workdir / "snapshots"
        snapshot_folder.mkdir()
        settings["PYTHONPATH"] = f"{BENCH_DIR / '_probe'}:{source}"
        settings["LNGATE_BENCH_TRACEMALLOC"] = str(snapshot_folder)
    (workdir / "gateway").mkdir()
    try:
        gateway = GatewayProcess(settings, workdir=workdir / "gateway")
        try:
            result = asyncio.run(run(gateway, args, snapshot_folder, memstats_folder))
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    samples: list[dict[str, float]] = result["samples"]  # type: ignore[assignment]
    print_table(f"{label}: worker RSS, {args.streams} open event streams, {args.requests:,} "
                f"requests ({args.connections} connections, create and check alternately)",
                ["requests", "RSS (MiB)", "high-water (MiB)", "CPU s", "streams open", "load"],
                [(f"{s['requests']:,}", fmt(s["rss_mib"]), fmt(s["hwm_mib"]), fmt(s["cpu_s"]),
                  s["streams_open"], s["load"]) for s in samples])
    first_after = samples[1] if len(samples) > 1 else samples[0]
    last = samples[-1]
    span = (last["requests"] - first_after["requests"]) / 10_000
    growth = (last["rss_mib"] - first_after["rss_mib"]) / span if span else float("nan")
    result.update(source=label, end_rss_mib=last["rss_mib"], growth_per_10k_mib=growth,
                  first_after=first_after["requests"])
    print(f"\n{label}: RSS idle {result['idle_rss_mib']:.1f} MiB, at the end "
          f"{last['rss_mib']:.1f} MiB (high-water "
          f"{result['hwm_mib']:.1f}); growth from {first_after['requests']:,} to "
          f"{last['requests']:,} requests: {last['rss_mib'] - first_after['rss_mib']:+.1f} MiB "
          f"({growth:+.2f} MiB per 10,000); errors {result['errors']}, streams that ended early "
          f"{result['streams_ended_early']}, {result['elapsed_s']:.0f} s; load {loadavg()}")
    snapshots: list[str] = result["snapshots"]  # type: ignore[assignment]
    if len(snapshots) >= 2:
        print_table(f"tracemalloc: live allocations grown from {first_after['requests']:,} to "
                    f"{last['requests']:,} requests (top 25, innermost frame first)",
                    ["KiB", "blocks", "where"], snapshot_diff(snapshots[0], snapshots[-1]))
    rows: list[dict[str, float]] = result["memstats"]  # type: ignore[assignment]
    if rows:
        print_memstats(label, rows, first_after["requests"])
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def print_memstats(label: str, rows: list[dict[str, float]], first_after: float) -> None:
    """The memory-by-owner table of one gateway (``--memstats``), with the change from the
    first sample after 0 to the last."""
    names = [name for name in rows[0] if name != "requests"]
    start = next((r for r in rows if r["requests"] == first_after), rows[0])
    last = rows[-1]
    columns = ["MiB"] + ["idle" if r["requests"] < 0 else f"{r['requests']:,}" for r in rows]
    columns.append(f"{first_after:,} → {last['requests']:,}")
    print_table(f"{label}: memory by owner (MiB)", columns,
                [[name] + [fmt(r[name], 2) for r in rows] + [f"{last[name] - start[name]:+.2f}"]
                 for name in names])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--sse-recheck-seconds", type=float,
                        help="SSE_RECHECK_SECONDS of the gateway (default: its own, 3 s)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="measurement only: snapshot diff of the gateway's allocations")
    parser.add_argument("--memstats", action="store_true",
                        help="measurement only: the worker's memory by owner at each sample")
    parser.add_argument("--src-ref", help="measure the source of this git ref")
    parser.add_argument("--baseline-ref", metavar="REF",
                        help="also measure src/ as of this git ref, in the same run, first")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for every gateway (repeatable)")
    args = parser.parse_args()
    if args.memstats and args.tracemalloc:
        parser.error("--memstats and --tracemalloc both use SIGUSR2: one at a time")
    set_gateway_env(args.gateway_env)
    info = machine_info()
    log(f"machine: {info}, load {loadavg()}")
    base = None
    if args.baseline_ref:
        base_folder = snapshot_src(args.baseline_ref)
        base = (base_folder, src_path(), f"baseline {src_label()}")
    snapshot_src(args.src_ref)  # taken now: edits made while the run goes on are not measured
    runs = []
    try:
        if base is not None:
            runs.append(measure(args, base[1], base[2]))
        runs.append(measure(args, src_path(), src_label()))
    finally:
        cleanup_src()
        if base is not None:
            shutil.rmtree(base[0], ignore_errors=True)
    if len(runs) > 1:
        print_table("baseline and this source, same run",
                    ["source", "RSS idle (MiB)", "RSS streams open (MiB)",
                     "RSS at first sample after 0 (MiB)",
                     "RSS at the end (MiB)", "high-water (MiB)", "MiB per 10,000 requests",
                     "errors"],
                    [(r["source"], fmt(r["idle_rss_mib"]),  # type: ignore[arg-type]
                      fmt(r["samples"][0]["rss_mib"]),  # type: ignore[index]
                      fmt(r["samples"][1]["rss_mib"]),  # type: ignore[index]
                      fmt(r["end_rss_mib"]), fmt(r["hwm_mib"]),
                      f"{r['growth_per_10k_mib']:+.2f}", r["errors"]) for r in runs])
    path = save_results("memory", {"machine": info, "args": vars(args), "runs": runs})
    log(f"raw results: {path}")


if __name__ == "__main__":
    main()
