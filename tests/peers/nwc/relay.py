#!/usr/bin/env python3
"""Local Nostr relay for tests: rust-nostr's LocalRelay (in-memory), shipped inside the
PyPI `nostr-sdk` wheel. Nothing is implemented here; this only configures and starts it.

    python relay.py --port 7100 [--host 127.0.0.1]

Prints "relay ready: ws://HOST:PORT" once listening; stops cleanly on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal

from nostr_sdk import LocalRelayBuilder, RateLimit


async def main(host: str, port: int) -> None:
    relay = (
        LocalRelayBuilder()
        .addr(host)
        .port(port)
        # Default is RateLimit(max_reqs=500, notes_per_minute=60) PER CONNECTION: a wallet
        # service answering >60 requests/minute gets "rate-limited: slow down".
        .rate_limit(RateLimit(max_reqs=100_000, notes_per_minute=1_000_000))
        .build()
    )
    await relay.run()
    print(f"relay ready: {await relay.url()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    relay.shutdown()
    print("relay stopped", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    asyncio.run(main(a.host, a.port))
