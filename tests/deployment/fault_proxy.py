"""An HTTP proxy between LNbits and the gateway's webhook URL that loses, repeats and delays.

LNbits posts each payment webhook to ``PUBLIC_URL`` (here the proxy); the proxy answers it at
once and forwards the call to nginx, unchanged (path, token query, body, content type), as an
unreliable network would: a share of the calls is dropped, a share is sent several times, and
each copy may be held back for up to ``max_delay`` seconds. Decisions come from a seeded random
generator, and every one is counted, so a run can say what the gateway had to cope with.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass(frozen=True)
class Faults:
    """What happens to each webhook call."""

    drop: float = 0.30
    """Share of calls never forwarded."""
    duplicate: float = 0.20
    """Share of the forwarded calls sent ``copies`` times instead of once."""
    copies: int = 5
    delay: float = 0.50
    """Share of the copies held back, each for a uniform 0..``max_delay`` seconds."""
    max_delay: float = 10.0


@dataclass
class FaultStats:
    """What the proxy did."""

    received: int = 0
    dropped: int = 0
    duplicated: int = 0
    copies_sent: int = 0
    delayed: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    """Gateway answers to the forwarded copies, by status (or error type)."""


class WebhookFaultProxy:
    """``async with WebhookFaultProxy(target, ...)``: listens on a free loopback port."""

    def __init__(self, target: str, *, faults: Faults | None = None, seed: int = 1,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.target = target.rstrip("/")
        self.faults = faults or Faults()
        self.stats = FaultStats()
        self._random = random.Random(seed)
        self._ssl = ssl_context
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to give the gateway as ``PUBLIC_URL``."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> WebhookFaultProxy:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl else False))
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def drain(self, timeout: float) -> None:
        """Wait for the copies still held back or in flight (at most ``timeout`` s)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.stats.received += 1
        faults = self.faults
        if self._random.random() < faults.drop:
            self.stats.dropped += 1
        else:
            copies = 1
            if self._random.random() < faults.duplicate:
                copies = faults.copies
                self.stats.duplicated += 1
            for _ in range(copies):
                delay = 0.0
                if self._random.random() < faults.delay:
                    delay = self._random.uniform(0, faults.max_delay)
                    self.stats.delayed += 1
                task = asyncio.create_task(self._forward(request.path_qs, body,
                                                         request.content_type, delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        # LNbits neither reads nor retries the answer; it is the network that is unreliable.
        return web.Response(status=200, text="{}", content_type="application/json")

    async def _forward(self, path_qs: str, body: bytes, content_type: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        assert self._session is not None
        self.stats.copies_sent += 1
        try:
            async with self._session.post(self.target + path_qs, data=body,
                                          headers={"Content-Type": content_type,
                                                   "User-Agent": "LNbits/1.6.2"}) as answer:
                await answer.read()
                self.stats.answers[str(answer.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.answers[type(exc).__name__] += 1
