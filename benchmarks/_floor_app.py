"""The floor for the create-invoice benchmark: the least a FastAPI + aiohttp proxy can do.

One route, ``POST /api/create-invoice``: read the JSON body, ask the upstream for an invoice
(``POST /api/v1/payments`` through one pooled ``aiohttp.ClientSession``, as the gateway's
provider does), answer its ``bolt11`` and ``payment_hash`` as JSON. No validation, no storage,
no rate limit, no log, no metrics: what the gateway's CPU per invoice is compared with, served
the way ``lngate serve`` serves (uvicorn, uvloop, httptools, one process). Run by
``bench_create_invoice.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def build_app(upstream: str) -> FastAPI:
    """The floor app proxying to ``upstream``."""
    session: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        session["s"] = aiohttp.ClientSession(
            upstream, timeout=aiohttp.ClientTimeout(total=3),
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
        yield
        await session["s"].close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/create-invoice")
    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        async with session["s"].post(
            "/api/v1/payments", json={"out": False, "amount": body["amount"],
                                      "memo": body["description"], "expiry": body["expiry"]},
            headers={"X-Api-Key": "floor"}) as resp:
            data = json.loads(await resp.read())
        return Response(orjson.dumps({"payment_request": data["bolt11"],
                                      "payment_hash": data["payment_hash"]}),
                        media_type="application/json")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.upstream), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)
    sys.exit(0)
