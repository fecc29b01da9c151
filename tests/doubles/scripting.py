"""Scripted answers shared by the Core Lightning and LND doubles.

A double answers like its node unless a test scripts another answer for a route, either for the
next calls only or for every call until reset::

    double.script("invoice", Reply(500, json={"code": -1, "message": "boom", "data": None}))
    double.always("getinfo", Reply(hang=True))
    double.always("getinfo", None)  # back to the node's behaviour

A :class:`Reply` is an HTTP answer (status, JSON or raw body, headers, delay), a hang (the
request is read, nothing is ever answered), or raw bytes written on the socket as the whole
response, after which the connection is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_NOTHING: Any = object()


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``json`` (any JSON value) or ``body`` (bytes or text) is sent with
    ``status`` and ``headers`` after ``delay`` seconds; ``hang`` never answers; ``raw`` is
    written on the socket as the whole response (status line included), then the connection
    closes (with ``hang``: ``raw`` is written, then nothing more, e.g. a body that never ends)."""

    status: int = 200
    json: Any = _NOTHING
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    raw: bytes | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    """What a double received."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    """The parsed JSON body; ``None`` when there is none or it is not JSON."""


Responder = Reply | Callable[[RecordedRequest], Reply]


class Script:
    """Per-route scripted answers, hangs and the requests received."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.routes = tuple(routes)
        self.requests: list[RecordedRequest] = []
        self._once: dict[str, deque[Responder]] = {route: deque() for route in self.routes}
        self._always: dict[str, Responder | None] = dict.fromkeys(self.routes)
        self._hanging: set[asyncio.Future[None]] = set()

    def script(self, route: str, *replies: Responder) -> None:
        """Answer the next calls of ``route`` with ``replies``, one each, in order."""
        self._once[self._check(route)].extend(replies)

    def always(self, route: str, reply: Responder | None) -> None:
        """Answer every later call of ``route`` with ``reply`` (``None``: the node's answer)."""
        self._always[self._check(route)] = reply

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """The requests received on ``route``, oldest first."""
        return [r for r in self.requests if r.route == route]

    def record(self, route: str, request: web.Request, raw_body: bytes, parsed: Any) -> Reply | None:
        """Record a request; the scripted reply for it, ``None`` when the node should answer."""
        recorded = RecordedRequest(
            route=route,
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=raw_body,
            json=parsed,
        )
        self.requests.append(recorded)
        if self._once[route]:
            responder: Responder | None = self._once[route].popleft()
        else:
            responder = self._always[route]
        if responder is None:
            return None
        return responder(recorded) if callable(responder) else responder

    async def send(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Answer ``request`` with ``reply``."""
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            transport = request.transport
            assert transport is not None
            transport.write(reply.raw)
            if reply.hang:
                await self.hang()
            transport.close()
            raise asyncio.CancelledError  # the connection is gone: nothing to answer on
        if reply.hang:
            await self.hang()
        if reply.json is not _NOTHING:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        body = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
        return web.Response(
            status=reply.status, body=body, headers=reply.headers, content_type=reply.content_type
        )

    async def hang(self) -> None:
        """Wait until :meth:`release` (the double stopping)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hanging.add(waiter)
        try:
            await waiter
        finally:
            self._hanging.discard(waiter)

    def release(self) -> None:
        """End every hang."""
        for waiter in self._hanging:
            waiter.cancel()

    def _check(self, route: str) -> str:
        if route not in self.routes:
            raise ValueError(f"unknown route {route!r}; one of {self.routes}")
        return route
