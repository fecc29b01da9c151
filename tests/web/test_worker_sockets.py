"""Several workers listen on a socket each on one address: each serves the one it claims, the
kernel spreads new connections over them, and a taken address still fails to bind."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
from typing import Any

import pytest

from lngate.web import worker_sockets
from lngate.web.worker_sockets import (
    WORKER_SOCKETS_ENV,
    SocketClaims,
    WorkerSockets,
    serve_when_claimed,
    spreads_connections,
)

pytestmark = pytest.mark.skipif(not spreads_connections(), reason="SO_REUSEPORT spreading: Linux")


def test_the_sockets_share_one_port_and_closing_removes_the_claim_files() -> None:
    group = WorkerSockets("127.0.0.1", 0, 3)
    try:
        assert {sock.getsockname() for sock in group.sockets} == {("127.0.0.1", group.port)}
        assert len(list(group.folder.iterdir())) == 3
    finally:
        group.close()
    assert not group.folder.exists()
    assert all(sock.fileno() == -1 for sock in group.sockets)


def test_an_address_something_listens_on_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            WorkerSockets("127.0.0.1", taken.getsockname()[1], 2)


def test_a_second_gateway_on_the_same_port_is_refused() -> None:
    first = WorkerSockets("127.0.0.1", 0, 2)
    try:
        first.sockets[0].listen()  # as its worker does
        with pytest.raises(OSError, match="in use"):
            WorkerSockets("127.0.0.1", first.port, 2)
    finally:
        first.close()


def test_a_worker_claims_one_socket_and_a_dead_workers_socket_is_claimed_again() -> None:
    group = WorkerSockets("127.0.0.1", 0, 2)
    try:
        first, second, replacement = (SocketClaims(group.folder) for _ in range(3))
        assert [first.claim(sock) for sock in group.sockets] == [True, False]
        assert [second.claim(sock) for sock in group.sockets] == [False, True]
        assert [replacement.claim(sock) for sock in group.sockets] == [False, False]
        assert first._held is not None
        first._held.close()  # what the first worker's death does to its claim
        assert [replacement.claim(sock) for sock in group.sockets] == [True, False]
    finally:
        group.close()


class _Counting(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Counting.count += 1


def _serve(sockets: list[socket.socket], folder: str, ready: Any, results: Any) -> None:
    os.environ[WORKER_SOCKETS_ENV] = folder
    from lngate.web.accept_loop import AcceptAllLoop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(_Counting, sock=sock) for sock in sockets]
        ready.put(os.getpid())
        await asyncio.sleep(3)
        results.put(_Counting.count)
        for server in servers:
            server.close()

    with asyncio.Runner(loop_factory=AcceptAllLoop) as runner:
        runner.run(main())


def test_two_workers_each_get_connections_from_one_client() -> None:
    """20 connections opened one after the other: each worker serves some (with one socket
    shared, one worker often took all 20). Both get none only with probability 2 × 2⁻²⁰."""
    spawn = multiprocessing.get_context("spawn")
    group = WorkerSockets("127.0.0.1", 0, 2)
    ready, results = spawn.Queue(), spawn.Queue()
    workers = [spawn.Process(target=_serve, args=(group.sockets, str(group.folder), ready,
                                                  results)) for _ in range(2)]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.get(timeout=60)
        clients = [socket.create_connection(("127.0.0.1", group.port)) for _ in range(20)]
        counts = sorted(results.get(timeout=30) for _ in workers)
        for client in clients:
            client.close()
        assert sum(counts) == 20
        assert counts[0] >= 1
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
        group.close()


def test_without_the_environment_every_socket_is_served(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKER_SOCKETS_ENV, raising=False)
    served: list[int] = []
    with socket.socket() as one, socket.socket() as other:
        loop = asyncio.new_event_loop()
        try:
            serve_when_claimed(loop, one, lambda: served.append(1))
            serve_when_claimed(loop, other, lambda: served.append(2))
        finally:
            loop.close()
    assert served == [1, 2]


def test_a_worker_started_while_every_socket_is_held_serves_the_first_one_released(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As uvicorn's restart on SIGHUP does: the replacement starts before the old worker
    stops; it must then serve the old worker's socket, not none."""
    group = WorkerSockets("127.0.0.1", 0, 2)
    monkeypatch.setenv(WORKER_SOCKETS_ENV, str(group.folder))
    monkeypatch.setattr(worker_sockets, "_claims", None)  # this test process is a new worker
    old_workers = [SocketClaims(group.folder) for _ in group.sockets]
    for claims, sock in zip(old_workers, group.sockets, strict=True):
        assert claims.claim(sock)
    served: list[int] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for index, sock in enumerate(group.sockets):
            serve_when_claimed(loop, sock, lambda index=index: served.append(index))
        await asyncio.sleep(3 * worker_sockets.CLAIM_RETRY_SECONDS)
        assert served == []
        assert old_workers[1]._held is not None
        old_workers[1]._held.close()  # the second old worker stops
        await asyncio.sleep(3 * worker_sockets.CLAIM_RETRY_SECONDS)
        assert served == [1]
        assert old_workers[0]._held is not None
        old_workers[0]._held.close()
        await asyncio.sleep(3 * worker_sockets.CLAIM_RETRY_SECONDS)
        assert served == [1]  # one socket per worker

    try:
        asyncio.run(scenario())
    finally:
        group.close()
