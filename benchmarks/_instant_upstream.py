"""An instantaneous LNbits-compatible upstream, for measuring the gateway's own capacity.

Run as its own process by ``bench_create_invoice.py``. Before it listens it signs a pool of
BOLT11 invoices with :func:`lngate.bolt11.encode` (one throwaway node key, unique payment hashes,
the benchmark request's amount, memo and expiry) and pre-serialises LNbits' create answer for
each. Then ``POST /api/v1/payments`` answers the next one from the pool at once (201, like
LNbits 1.6.2), and ``GET /api/v1/payments/{hash}`` says "pending" (the gateway's reconciler
asks). ``POST /_bench/reset`` starts the pool over (each gateway run uses a fresh
database, so hashes only need to be unique within a run) and returns how many were served;
``GET /_bench/stats`` tells the same without resetting. ``POST /_bench/answers`` with
``{payment_hash: answer}`` makes ``GET /api/v1/payments/{hash}`` answer that JSON for those
invoices (``bench_webhook.py --upstream instant``: LNbits' own answers for paid invoices). When the pool runs out it answers 503,
which the gateway counts as an unavailable provider: the benchmark reports it.

It prints ``ready <port> <node pubkey>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv else None
sys.path.insert(0, _SRC or str(Path(__file__).resolve().parent.parent / "src"))

import orjson  # noqa: E402
from aiohttp import web  # noqa: E402
from coincurve import PrivateKey  # noqa: E402

from lngate.bolt11.encode import encode  # noqa: E402


def build_pool(count: int, *, amount_sat: int, memo: str, expiry: int, network: str,
               key: PrivateKey) -> list[bytes]:
    now = int(time.time())
    pool = []
    for _ in range(count):
        payment_hash = os.urandom(32).hex()
        bolt11 = encode(key, currency=network, amount_msat=amount_sat * 1000, timestamp=now,
                        payment_hash=payment_hash, payment_secret=os.urandom(32).hex(),
                        description=memo, expiry=expiry)
        pool.append(orjson.dumps({
            "checking_id": payment_hash, "payment_hash": payment_hash, "bolt11": bolt11,
            "payment_request": bolt11, "amount": amount_sat * 1000, "fee": 0, "memo": memo,
            "status": "pending", "expiry": expiry, "wallet_id": "bench", "pending": True,
        }))
    return pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--src", help="where to import lngate from")
    parser.add_argument("--pool", type=int, default=40_000)
    parser.add_argument("--amount-sat", type=int, default=100)
    parser.add_argument("--memo", default="lngate benchmark")
    parser.add_argument("--expiry", type=int, default=3600)
    parser.add_argument("--network", default="bc")
    args = parser.parse_args()

    key = PrivateKey()
    started = time.perf_counter()
    pool = build_pool(args.pool, amount_sat=args.amount_sat, memo=args.memo,
                      expiry=args.expiry, network=args.network, key=key)
    print(f"pool of {len(pool)} invoices signed in {time.perf_counter() - started:.1f} s",
          file=sys.stderr, flush=True)
    state = {"next": 0, "exhausted": 0}

    async def create(request: web.Request) -> web.Response:
        await request.read()
        i = state["next"]
        if i >= len(pool):
            state["exhausted"] += 1
            return web.json_response({"detail": "benchmark pool exhausted"}, status=503)
        state["next"] = i + 1
        return web.Response(status=201, body=pool[i], content_type="application/json")

    pending = {}
    answers: dict[str, bytes] = {}

    async def status(request: web.Request) -> web.Response:
        # What LNbits answers for an unpaid incoming invoice (the gateway's reconciler asks),
        # unless the benchmark gave this invoice's answer (``/_bench/answers``).
        payment_hash = request.match_info["payment_hash"]
        if payment_hash in answers:
            return web.Response(status=200, body=answers[payment_hash],
                                content_type="application/json")
        if payment_hash not in pending:
            pending[payment_hash] = orjson.dumps({
                "paid": False, "status": "pending", "preimage": None,
                "details": {"payment_hash": payment_hash, "checking_id": payment_hash,
                            "amount": args.amount_sat * 1000, "status": "pending",
                            "memo": args.memo, "pending": True},
            })
            if len(pending) > 100_000:
                pending.clear()
        return web.Response(status=200, body=pending[payment_hash],
                            content_type="application/json")

    async def wallet(_request: web.Request) -> web.Response:
        return web.json_response({"id": "bench", "name": "bench", "balance": 0})

    async def reset(_request: web.Request) -> web.Response:
        served = {"served": state["next"], "exhausted": state["exhausted"]}
        state["next"] = state["exhausted"] = 0
        return web.json_response(served)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"served": state["next"], "exhausted": state["exhausted"],
                                  "pool": len(pool)})

    async def set_answers(request: web.Request) -> web.Response:
        # ``{payment_hash: LNbits' GET answer}``: answered as given from now on (the webhook
        # benchmark hands over what the real LNbits said for its paid invoices).
        given = orjson.loads(await request.read())
        answers.update({h: orjson.dumps(answer) for h, answer in given.items()})
        return web.json_response({"answers": len(answers)})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/payments", create)
    app.router.add_get("/api/v1/wallet", wallet)
    app.router.add_get("/api/v1/payments/{payment_hash}", status)
    app.router.add_post("/_bench/reset", reset)
    app.router.add_post("/_bench/answers", set_answers)
    app.router.add_get("/_bench/stats", stats)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024).start()
        print(f"ready {args.port} {key.public_key.format().hex()}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
