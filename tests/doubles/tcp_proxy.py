"""A switchable TCP front for a real upstream: forward, hang (accept, never answer) or refuse.

It lets a failover test take the real LNbits peer "down", "hung" or "back" without stopping
the peer other tests share. Refusing closes the listening socket, so clients get a genuine
``connection refused``; switching back listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket


class Mode(enum.StrEnum):
    FORWARD = "forward"
    HANG = "hang"
    REFUSE = "refuse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """``async with TcpProxy(upstream_host, upstream_port) as proxy``; ``await proxy.set(Mode.X)``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = _free_port()
        self.mode = Mode.FORWARD
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> TcpProxy:
        await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def set(self, mode: Mode) -> None:
        """Switch mode; open connections are dropped so no old behaviour lingers in a pool."""
        self.mode = mode
        if mode is Mode.REFUSE:
            await self._close()
        else:
            self._drop_connections()
            if self._server is None:
                await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)

    def _drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.mode is Mode.HANG:
                await asyncio.Event().wait()
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()
