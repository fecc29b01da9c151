"""A closed-loop HTTP load generator (asyncio + aiohttp), used when ``wrk`` is not installed.

``--connections`` workers each send POST requests back to back on their own keep-alive
connection for ``--duration`` seconds, then it prints one JSON line: requests, non-2xx, errors,
elapsed seconds, and latency percentiles in ms. Runs in its own process so its CPU is not the
gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


async def run(url: str, body: bytes, connections: int, duration: float) -> dict[str, object]:
    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    stop_at = time.perf_counter() + duration
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    counts["ok" if resp.status < 300 else "non2xx"] += 1
            except aiohttp.ClientError:
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000

    return {"requests": counts["ok"] + counts["non2xx"], "non2xx": counts["non2xx"],
            "errors": counts["errors"], "elapsed": elapsed, "p50_ms": pct(50), "p99_ms": pct(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body", required=True)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(run(args.url, args.body.encode(), args.connections, args.duration))
    except ImportError:
        result = asyncio.run(run(args.url, args.body.encode(), args.connections, args.duration))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
