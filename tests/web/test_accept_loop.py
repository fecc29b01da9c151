"""The serving loop accepts every waiting connection at once, however busy its turns are."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable

import pytest
import uvloop

from lngate.web.accept_loop import AcceptAllLoop, AcceptAllServer
from lngate.web.worker_sockets import WORKER_SOCKETS_ENV


@pytest.fixture(autouse=True)
def _one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are one process serving its own socket, whatever the environment says."""
    monkeypatch.delenv(WORKER_SOCKETS_ENV, raising=False)


class _Counting(asyncio.Protocol):
    made: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


def _connections_made_in_busy_turns(loop_factory: Callable[[], asyncio.AbstractEventLoop],
                                    clients: int, turns: int) -> int:
    """Open ``clients`` connections to a server on a loop whose every turn also runs a 20 ms
    callback (an overloaded worker), let it turn ``turns`` times; how many got a protocol."""
    loop = loop_factory()
    made: list[asyncio.BaseTransport] = []
    protocol = type("Protocol", (_Counting,), {"made": made})
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    try:
        server = loop.run_until_complete(
            loop.create_server(protocol, sock=listening, backlog=128))
        waiting = [socket.create_connection(listening.getsockname()) for _ in range(clients)]
        done = 0

        def busy_turn() -> None:
            nonlocal done
            time.sleep(0.02)
            done += 1
            if done < turns:
                loop.call_soon(busy_turn)
            else:
                loop.stop()

        loop.call_soon(busy_turn)
        loop.run_forever()
        count = len(made)
        for transport in made:
            transport.close()
        for conn in waiting:
            conn.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
        return count
    finally:
        loop.close()


def test_a_busy_loop_accepts_a_burst_of_connections_within_a_few_turns() -> None:
    assert _connections_made_in_busy_turns(AcceptAllLoop, clients=60, turns=5) == 60


def test_uvloop_alone_would_take_one_connection_per_turn() -> None:
    """Why the loop exists: libuv accepts one connection per turn (the scenario above discerns)."""
    assert _connections_made_in_busy_turns(uvloop.Loop, clients=60, turns=5) < 60


def test_connections_are_served_and_closing_stops_accepting() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                self.transport.write(data.upper())  # type: ignore[attr-defined]

        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        address = listening.getsockname()
        server = await loop.create_server(Echo, sock=listening, backlog=16)
        assert isinstance(server, AcceptAllServer) and server.is_serving()
        assert server.sockets == (listening,)
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"PING"
        server.close()
        await server.wait_closed()
        assert not server.is_serving() and server.sockets == ()
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)
        writer.write(b"still")  # an open connection outlives the listening socket
        assert await reader.readexactly(5) == b"STILL"
        writer.close()

    runner = asyncio.Runner(loop_factory=AcceptAllLoop)
    with runner:
        runner.run(scenario())


def test_other_servers_stay_uvloops_own() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert not isinstance(server, AcceptAllServer)
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=AcceptAllLoop) as runner:
        runner.run(scenario())


class _OutOfDescriptors:
    """A listening socket whose accept fails as when the process has no descriptor left."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real

    def accept(self) -> tuple[socket.socket, object]:
        raise OSError(errno.EMFILE, "Too many open files")

    def fileno(self) -> int:
        return self.real.fileno()


def test_out_of_descriptors_pauses_accepting_then_resumes(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        server = await loop.create_server(asyncio.Protocol, sock=listening, backlog=16)
        assert isinstance(server, AcceptAllServer)
        resumed: list[float] = []
        original_add_reader = loop.add_reader

        def add_reader(fd: int, callback: Callable[..., object], *args: object) -> None:
            resumed.append(loop.time())
            original_add_reader(fd, callback, *args)

        server._sock = _OutOfDescriptors(listening)  # type: ignore[assignment]
        loop.add_reader = add_reader  # type: ignore[method-assign]
        paused_at = loop.time()
        with caplog.at_level(logging.WARNING, logger="lngate.http"):
            server._accept_waiting()  # the loop would call it: a connection is waiting
        assert "cannot accept connections (Too many open files): retrying in 1 s" in caplog.text
        await asyncio.sleep(1.2)
        assert resumed and resumed[0] - paused_at >= 0.95
        server._sock = listening
        server.close()

    with asyncio.Runner(loop_factory=AcceptAllLoop) as runner:
        runner.run(scenario())
