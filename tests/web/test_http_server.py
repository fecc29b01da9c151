"""The HTTP server answers the creates admission refuses itself, past the ASGI stack."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn

from lngate.web.admission import Admission, find_door
from lngate.web.http_server import GuardedHttpToolsProtocol

CREATE = "/api/create-invoice"
BODY = b'{"amount": 100}'


class Held:
    """The app inside admission: creates stay in flight until released; others get 200."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == CREATE:
            self.entered += 1
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})


class Outer:
    """The middleware outside admission (CORS in the app): counts the requests it sees and
    adds a header to every answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-outer", b"1")]}
            await send(message)

        await self.app(scope, receive, marked)


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, Outer, Held, Admission]]:
    held = Held()
    admission = Admission(held, limit=1)
    outer = Outer(admission)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(outer, http=GuardedHttpToolsProtocol, lifespan="off",
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1], outer, held, admission
    finally:
        held.release.set()
        server.should_exit = True
        await task


async def exchange(port: int, requests: list[bytes], answers: int) -> list[bytes]:
    """Send ``requests`` on one connection (all at once); the first ``answers`` responses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(requests))
    out = []
    for _ in range(answers):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append(head + await reader.readexactly(length))
    writer.close()
    return out


def post(path: str = CREATE, *extra: bytes) -> bytes:
    return b"".join([b"POST ", path.encode(), b" HTTP/1.1\r\nhost: t\r\ncontent-type: "
                     b"application/json\r\ncontent-length: ", str(len(BODY)).encode(), b"\r\n",
                     *extra, b"\r\n", BODY])


async def fill(port: int, held: Held) -> asyncio.Task[list[bytes]]:
    task = asyncio.create_task(exchange(port, [post()], 1))
    while held.entered < 1:
        await asyncio.sleep(0.01)
    return task


async def test_a_refused_create_is_answered_by_the_server_and_the_connection_kept(
        served: tuple[int, Outer, Held, Admission]) -> None:
    port, outer, held, admission = served
    first = await fill(port, held)
    # refused, then a pipelined request on the same connection: answered in order
    refused, after = await exchange(port, [post(), b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n"], 2)
    head, _, body = refused.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503")
    assert b"\r\nretry-after: 1" in head and b"connection: close" not in head
    assert orjson.loads(body)["code"] == "overloaded"
    assert after.startswith(b"HTTP/1.1 200") and after.endswith(b"{}")
    # the refusal never reached the app's middleware; the request after it did
    assert outer.seen == [CREATE, "/health"]
    assert admission.refused == 1
    held.release.set()
    assert (await first)[0].startswith(b"HTTP/1.1 200")


async def test_a_refusal_needing_cors_headers_goes_through_the_app(
        served: tuple[int, Outer, Held, Admission]) -> None:
    port, outer, held, admission = served
    first = await fill(port, held)
    (refused,) = await exchange(port, [post(CREATE, b"origin: https://shop.example\r\n")], 1)
    assert refused.startswith(b"HTTP/1.1 503") and b"x-outer: 1" in refused
    assert outer.seen == [CREATE, CREATE] and admission.refused == 1
    held.release.set()
    await first


async def test_creates_are_admitted_again_once_a_place_is_free(
        served: tuple[int, Outer, Held, Admission]) -> None:
    port, outer, held, admission = served
    first = await fill(port, held)
    (refused,) = await exchange(port, [post()], 1)
    held.release.set()
    await first
    (served_now,) = await exchange(port, [post()], 1)
    assert refused.startswith(b"HTTP/1.1 503") and served_now.startswith(b"HTTP/1.1 200")
    assert admission.refused == 1


def test_find_door_follows_the_middleware_and_a_built_stack() -> None:
    admission = Admission(Held(), limit=1)

    class App:
        middleware_stack = Outer(admission)

    assert find_door(App()) is admission
    assert find_door(Outer(Held())) is None
