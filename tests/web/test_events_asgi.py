"""The event stream at the ASGI level, as a server runs it: a client that leaves ends the stream
at once and releases what it held; open streams hold little memory each."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

from tests.web.test_events import new_invoice

Message = dict[str, Any]


class Client:
    """One ASGI request to the app: its request message, then a disconnect when told to leave,
    and every message the app sent."""

    def __init__(self, path: str) -> None:
        self.scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"gateway"), (b"origin", b"https://shop.example")],
            "client": ("203.0.113.9", 40001), "server": ("gateway", 80),
        }
        self.sent: list[Message] = []
        self._requested = False
        self._leave = asyncio.Event()

    async def receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._leave.set()


async def test_a_client_leaving_ends_its_stream_and_releases_it(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """When the client disconnects, the stream returns at once (not at its next heartbeat), sends
    nothing more, and its listener and watch entry are gone."""
    async with gateway_factory(sse_heartbeat_seconds=60, sse_recheck_seconds=60) as http:
        payment_hash = await new_invoice(http)
        gateway = http.app.state.gateway
        client = Client(f"/api/invoices/{payment_hash}/events")
        served = asyncio.create_task(http.app(client.scope, client.receive, client.send))
        await asyncio.sleep(0.3)
        assert gateway.settler.events.listening == 1
        assert gateway.stream_watch.watched == 1
        sent_before = len(client.sent)
        client.leave()
        await asyncio.wait_for(served, 2)
        assert gateway.settler.events.listening == 0
        assert gateway.stream_watch.watched == 0
    start, first = client.sent[:2]
    assert start["status"] == 200
    assert first["body"].startswith(b"retry: 3000\n\nevent: status\n")
    assert len(client.sent) == sent_before == 2


async def test_open_streams_hold_little_python_memory_each(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """An open stream keeps under 16 KiB of Python objects alive, this test's own included
    (Starlette's streaming response inside FastAPI's request handling kept 29 KiB, the stream's
    own answer 12): hundreds stay open per process."""
    streams = 100
    async with gateway_factory(sse_heartbeat_seconds=60, sse_recheck_seconds=60) as http:
        hashes = [await new_invoice(http) for _ in range(streams)]
        clients = [Client(f"/api/invoices/{h}/events") for h in hashes]
        warm = Client(f"/api/invoices/{hashes[0]}/events")  # first-use caches, not per stream
        warm_task = asyncio.create_task(http.app(warm.scope, warm.receive, warm.send))
        await asyncio.sleep(0.3)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            tasks = [asyncio.create_task(http.app(c.scope, c.receive, c.send)) for c in clients]
            for _ in range(100):  # until every stream has sent its first event
                await asyncio.sleep(0.1)
                if all(len(c.sent) == 2 for c in clients):
                    break
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert all(len(c.sent) == 2 for c in clients)
        for client in [*clients, warm]:
            client.leave()
        await asyncio.wait_for(asyncio.gather(*tasks, warm_task), 5)
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / streams < 16 * 1024
