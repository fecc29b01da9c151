"""The gateway served by a real uvicorn on a loopback port, in the tests' event loop, so real
peers (LNbits calling our webhook, a browser loading pages) can reach it.

``serve_gateway(tmp_path, **overrides)`` is the short form: demo-mode test settings (as
``tests/web/conftest.py`` makes them), a free port, and ``PUBLIC_URL`` pointing at the server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from lngate.bootstrap import Gateway
from lngate.settings import Settings
from lngate.web.app import create_app
from tests.peers.lnbits_peer import free_port
from tests.web.conftest import make_settings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # pytest owns the process's signals
        yield


@dataclass
class LiveGateway:
    """A running gateway: its URL, an HTTP client to it, and its in-process objects."""

    url: str
    http: httpx.AsyncClient
    app: FastAPI

    @property
    def gateway(self) -> Gateway:
        return self.app.state.gateway  # type: ignore[no-any-return]


@asynccontextmanager
async def live_gateway(settings: Settings, port: int) -> AsyncIterator[LiveGateway]:
    """Serve the app on ``127.0.0.1:port`` until the block ends."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on", loop="asyncio")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises the start-up error
        assert server.started, "uvicorn did not start within 5 s"
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield LiveGateway(url, http, app)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            # say what the shutdown was still waiting for (seen once in CI, not reproduced)
            stacks = [f"{pending.get_name()}: {pending.get_stack(limit=8)}"
                      for pending in asyncio.all_tasks() if pending is not asyncio.current_task()]
            raise AssertionError("the gateway did not stop within 15 s; tasks still running:\n"
                                 + "\n".join(stacks)) from None


@asynccontextmanager
async def serve_gateway(tmp_path: Any, **overrides: Any) -> AsyncIterator[LiveGateway]:
    """A live gateway with test settings (``overrides`` win) and ``PUBLIC_URL`` set to itself."""
    port = free_port()
    settings = make_settings(tmp_path, **{"public_url": f"http://127.0.0.1:{port}", **overrides})
    async with live_gateway(settings, port) as live:
        yield live


async def wait_until(predicate: Any, *, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Await ``predicate()`` until it returns something truthy; returns it (or raises)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(interval)
