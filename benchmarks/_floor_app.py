"""The floor for the create-invoice benchmark: the least a FastAPI + aiohttp proxy can do.

One route, ``POST /api/create-invoice``: read the JSON body, ask the upstream for an invoice
(``POST /api/v1/payments`` through one pooled ``aiohttp.ClientSession``, as the gateway's
provider does), answer its ``bolt11`` and ``payment_hash`` as JSON. No validation, no storage,
no rate limit, no log, no metrics: what the gateway's CPU per invoice is compared with, served
the way ``lngate serve`` serves (uvicorn, uvloop, httptools, one process). ``--bare`` serves the
same forwarding as a plain ASGI callable (no FastAPI/Starlette). Run by
``bench_create_invoice.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def build_app(upstream: str, api_key: str = "floor") -> FastAPI:
    """The floor app proxying to ``upstream`` (its LNbits invoice key: ``api_key``)."""
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
            headers={"X-Api-Key": api_key}) as resp:
            data = json.loads(await resp.read())
        return Response(orjson.dumps({"payment_request": data["bolt11"],
                                      "payment_hash": data["payment_hash"]}),
                        media_type="application/json")

    return app


def build_bare_app(upstream: str, api_key: str = "floor") -> Any:
    """The same forwarding as a bare ASGI callable: no FastAPI or Starlette at all, so what is
    left is uvicorn's HTTP server and the aiohttp client (the least a Python hop can cost)."""
    session: dict[str, aiohttp.ClientSession] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                session["s"] = aiohttp.ClientSession(
                    upstream, timeout=aiohttp.ClientTimeout(total=3),
                    connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
                await send({"type": "lifespan.startup.complete"})
            await session["s"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks))
        async with session["s"].post(
            "/api/v1/payments", json={"out": False, "amount": body["amount"],
                                      "memo": body["description"], "expiry": body["expiry"]},
            headers={"X-Api-Key": api_key}) as resp:
            data = json.loads(await resp.read())
        answer = orjson.dumps({"payment_request": data["bolt11"],
                               "payment_hash": data["payment_hash"]})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", default="floor",
                        help="the X-Api-Key sent upstream (a real LNbits wallet's invoice key)")
    parser.add_argument("--bare", action="store_true",
                        help="serve the bare ASGI callable instead of the FastAPI app")
    args = parser.parse_args()
    build = build_bare_app if args.bare else build_app
    uvicorn.run(build(args.upstream, args.api_key), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)
    sys.exit(0)
