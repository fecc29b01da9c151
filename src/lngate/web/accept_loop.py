"""uvloop's event loop, accepting every waiting connection each time the listening socket is ready.

libuv (under uvloop) accepts one connection per turn of the loop since its version 1.45, and
counts on the level-triggered poll to come back for the next. An idle server turns in
microseconds, so that costs nothing; an overloaded one runs hundreds of callbacks per turn and
turns in 10 to 30 ms, so it accepts 30 to 100 connections a second however many clients are
waiting. Measured at twice the capacity: clients opened 400 connections a second, the kernel's
accept queue grew to 1,650 established connections, and their first requests waited up to 9 s,
refusals included, while requests on connections already accepted were answered in
milliseconds (docs/benchmarks.md). asyncio's own loop accepts up to the listen backlog per
readiness event; :class:`AcceptAllLoop` does the same on uvloop, so the door can answer (or
refuse) a burst of new clients at once.

With several workers, each serves a listening socket of its own (:mod:`lngate.web.worker_sockets`:
the kernel spreads new connections over them), so taking every waiting connection takes only
that worker's.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop

from lngate.web.worker_sockets import serve_when_claimed

_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_SECONDS = 1.0
"""After running out of file descriptors or memory, accepting resumes after this delay (as
asyncio's loop does); the waiting connections stay in the kernel's queue meanwhile."""

logger = logging.getLogger("lngate.http")


class AcceptAllServer(asyncio.AbstractServer):
    """A listening TCP socket whose waiting connections are all accepted (at most ``backlog``)
    at each readiness event; each is served by a protocol from ``protocol_factory``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: Callable[[], asyncio.BaseProtocol], backlog: int) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._backlog = max(1, backlog)
        self._serving = False
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket, as :attr:`asyncio.Server.sockets` gives it."""
        return () if self._sock.fileno() < 0 else (self._sock,)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop this server accepts on."""
        return self._loop

    def is_serving(self) -> bool:
        """True while connections are being accepted."""
        return self._serving

    async def start_serving(self) -> None:
        """Listen and accept from now on."""
        self.listen()

    def listen(self) -> None:
        """Listen and accept from now on (unless closed)."""
        if self._serving or self._sock.fileno() < 0:
            return
        self._sock.setblocking(False)
        self._sock.listen(self._backlog)
        self._loop.add_reader(self._sock.fileno(), self._accept_waiting)
        self._serving = True

    async def serve_forever(self) -> None:
        """Accept until cancelled."""
        await self.start_serving()
        await self._loop.create_future()

    def close(self) -> None:
        """Stop accepting and close the listening socket; open connections are not touched."""
        if self._sock.fileno() >= 0:
            if self._serving:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._serving = False

    async def wait_closed(self) -> None:
        """Return once connections being set up are; the open ones belong to their protocol."""
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _accept_waiting(self) -> None:
        for _ in range(self._backlog):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting in the queue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                logger.warning("cannot accept connections (%s): retrying in %g s",
                               exc.strerror, ACCEPT_RETRY_SECONDS)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(ACCEPT_RETRY_SECONDS, self._resume)
                return
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _resume(self) -> None:
        if self._serving and self._sock.fileno() >= 0:
            self._loop.add_reader(self._sock.fileno(), self._accept_waiting)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except Exception:
            logger.exception("could not set up an accepted connection")
            conn.close()


class AcceptAllLoop(uvloop.Loop):
    """uvloop's loop whose TCP servers on a given socket accept every waiting connection per
    readiness event (:class:`AcceptAllServer`); other servers are uvloop's own."""

    async def create_server(  # type: ignore[override]  # returns an AbstractServer
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: Any = None,
            port: Any = None, *, sock: socket.socket | None = None, backlog: int = 100,
            ssl: Any = None, start_serving: bool = True, **kwargs: Any) -> asyncio.AbstractServer:
        """As :meth:`asyncio.loop.create_server`; with ``sock`` (a TCP socket, no TLS), the
        server is an :class:`AcceptAllServer`, serving once ``sock`` is this worker's
        (:func:`~lngate.web.worker_sockets.serve_when_claimed`)."""
        if (sock is None or ssl is not None or kwargs
                or sock.family not in (socket.AF_INET, socket.AF_INET6)
                or sock.type != socket.SOCK_STREAM):
            return await super().create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl,
                start_serving=start_serving, **kwargs)
        server = AcceptAllServer(self, sock, protocol_factory, backlog)
        if start_serving:
            serve_when_claimed(self, sock, server.listen)
        return server
