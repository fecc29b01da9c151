"""The PostgreSQL rate limit's cost alone: hits one by one vs a batch per statement.

Runs ``--processes`` processes, each with ``--concurrency`` tasks counting hits of one client
key (as a shop's server calling the gateway: one IP) for ``--seconds``, first one hit per
statement (:func:`lngate.store.rate_limits.hit_direct`, the code before the batching), then
through :class:`lngate.store.rate_limit_batch.HitBatcher`, interleaved ``--repeat`` times. It
reports hits per second and CPU milliseconds per hit of the processes and of their PostgreSQL
backends (CPU time moves less than throughput on a shared machine).

    .venv/bin/python benchmarks/bench_rate_limit.py --processes 2 --concurrency 10 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import process_cpu_seconds  # noqa: E402

POSTGRES_URL = os.environ.get("LNGATE_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
LIMIT = 10**9  # every hit passes: the cost of counting, not of refusing


async def _worker(url: str, way: str, concurrency: int, seconds: float) -> None:
    from lngate.store import Database
    from lngate.store.direct_insert import PG_POOL_SIZE
    from lngate.store.rate_limit_batch import HitBatcher
    from lngate.store.rate_limits import hit_direct

    db = Database.from_url(url)
    batcher = HitBatcher(db)
    await db.direct.fetch("SELECT 1")
    hits = 0

    # every connection of the lane's pool open (as under load), and their backends' pids
    pool = await db.direct._pool()
    held = [await pool.acquire() for _ in range(PG_POOL_SIZE)]
    pids = [conn.get_server_pid() for conn in held]
    for conn in held:
        await pool.release(conn)

    async def backends_cpu() -> dict[int, float]:
        return {pid: process_cpu_seconds(pid) for pid in pids}

    async def one_client() -> None:
        nonlocal hits
        while time.time() < start + seconds:
            if way == "single":
                await hit_direct(db, route="create-invoice", key="203.0.113.7", limit=LIMIT,
                                 period=60, now=time.time())
            else:
                await batcher.hit("create-invoice", "203.0.113.7", limit=LIMIT, period=60)
            hits += 1

    print("ready", flush=True)
    start = float(await asyncio.to_thread(sys.stdin.readline))
    while time.time() < start:
        await asyncio.sleep(0.001)
    pg0 = await backends_cpu()
    cpu0 = time.process_time()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    cpu = time.process_time() - cpu0
    pg = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in (await backends_cpu()).items())
    print(json.dumps({"hits": hits, "cpu": cpu, "pg": pg}))
    await db.aclose()


def _run(args: argparse.Namespace, way: str, url: str) -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, __file__, "--child", way, "--url", url,
                               "--concurrency", str(args.concurrency),
                               "--seconds", str(args.seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(args.processes)]
    for proc in procs:  # every process connected before any starts
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = f"{time.time() + 0.2}\n"
    outs = [json.loads(proc.communicate(start)[0]) for proc in procs]
    pg = sum(o["pg"] for o in outs)
    hits = sum(o["hits"] for o in outs)
    return {"hits_per_s": hits / args.seconds,
            "client_cpu_ms_per_hit": 1000 * sum(o["cpu"] for o in outs) / hits,
            "postgres_cpu_ms_per_hit": 1000 * pg / hits}


def _database() -> str:
    """A fresh migrated database of our own (dropped at the end)."""
    import asyncpg

    from lngate.store import Database

    name = f"lngate_bench_rl_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        db = Database.from_url(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
        await db.migrate()
        await db.aclose()

    asyncio.run(create())
    return name


def _drop(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="tasks per process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=("single", "batch"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_worker(args.url, args.child, args.concurrency, args.seconds))
        return
    name = _database()
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    results: dict[str, list[dict[str, float]]] = {"single": [], "batch": []}
    try:
        for repeat in range(args.repeat):
            for way in ("single", "batch") if repeat % 2 == 0 else ("batch", "single"):
                result = _run(args, way, url)
                results[way].append(result)
                print(f"run {repeat + 1} {way:6}: {result['hits_per_s']:8.0f} hits/s, "
                      f"{result['client_cpu_ms_per_hit']:.3f} ms CPU/hit in the processes, "
                      f"{result['postgres_cpu_ms_per_hit']:.3f} in PostgreSQL "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        _drop(name)
    for way, rows in results.items():
        print(f"{way}: median " + ", ".join(
            f"{key} {statistics.median(r[key] for r in rows):.3f}" for key in rows[0]))


if __name__ == "__main__":
    main()
