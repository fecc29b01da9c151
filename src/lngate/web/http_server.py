"""The HTTP server of ``lngate serve``: uvicorn with httptools, guarded against abusive clients.

uvicorn bounds none of these itself: httptools gathers a header of any size in memory (four
requests with a 100 MB header cost 494 MB), no timer runs while a request is being read (a
client sending one header byte now and then keeps its connection forever), and connections are
accepted until the process runs out of file descriptors (then every request fails).
:class:`GuardedHttpToolsProtocol` adds, per process:

- ``max_header_bytes``: the request line and headers together; more gets ``431`` and the
  connection is closed, after reading at most that many bytes of them;
- ``max_headers``: header lines per request; more gets ``431``;
- ``read_timeout``: a request (headers and body) must arrive within this time from its first
  byte, or from the connection's opening for the first one; otherwise ``408`` and close;
- ``max_connections``: open connections, kept below the file-descriptor limit. At the cap, the
  connection idle for longest (no request in progress: not yet sent, or keep-alive) is closed
  to make room; when none is idle the new connection gets ``503`` and is closed.

It also answers the creates that admission at the door refuses (:mod:`lngate.web.admission`)
as soon as their headers are read, without a request cycle, a task or the ASGI stack: under
overload most requests are such refusals, and through the stack they took CPU the creates
being served needed (docs/benchmarks.md).

h11 (``h11_max_incomplete_event_size``) would bound the header size alone, at a throughput cost
measured in docs/configuration.md; the read timeout and the connection cap are needed either way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from lngate.heap import glibc
from lngate.web.admission import ADMITTED_PATHS, Admission, find_door
from lngate.web.worker_sockets import WORKER_SOCKETS_ENV, WorkerSockets, spreads_connections

ACCEPT_LOOP = "lngate.web.accept_loop:AcceptAllLoop"
"""uvicorn's ``loop`` setting: uvloop, accepting every waiting connection at once."""
LIMITS_ATTRIBUTE = "lngate_http_limits"
"""The attribute of uvicorn's ``Config`` carrying :class:`HttpLimits` to every worker."""
_GUARD_ATTRIBUTE = "lngate_connection_guard"
_WARNING_INTERVAL = 10.0
_ADMITTED_RAW_PATHS = frozenset(path.encode() for path in ADMITTED_PATHS)


MALLOC_ARENAS = 2
"""glibc malloc arenas per serving process, unless ``MALLOC_ARENA_MAX`` says otherwise."""
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process and the workers it starts; True if capped.

    glibc gives each thread that allocates an arena of its own, up to 8 per core, and memory
    freed in an arena stays resident for that arena's later use: the database's threads and the
    executor's hold memory the main thread's arena could have reused. The worker's threads
    allocate little, so two arenas cost no measurable lock waiting; the saving measured on
    2 cores was about 1 MiB (docs/benchmarks.md), more arenas being possible on more cores.
    An operator's own ``MALLOC_ARENA_MAX`` is left as it is (glibc read it when this process
    started). Elsewhere than glibc, nothing is done.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # read at start by the workers uvicorn spawns
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))  # for the arenas this process creates now


def default_max_connections() -> int:
    """The soft file-descriptor limit less a reserve for the database, sessions and files.

    The reserve is a quarter of the limit, at most 512: 1024 descriptors give 768 connections.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, soft - min(512, soft // 4))


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client may cost the server (see the module docstring)."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    read_timeout: float = 10.0
    max_connections: int = 0
    """0: :func:`default_max_connections`, computed in the serving process."""

    def connection_cap(self) -> int:
        """``max_connections``, or the default from the file-descriptor limit."""
        return self.max_connections or default_max_connections()


class _ConnectionGuard:
    """Per-server state shared by the connections: who is idle, and when we last warned."""

    def __init__(self, limits: HttpLimits) -> None:
        self.cap = limits.connection_cap()
        self.idle: OrderedDict[GuardedHttpToolsProtocol, None] = OrderedDict()
        self._warned: dict[str, float] = {}
        self._door: Admission | None = None
        self._door_sought = False

    def door(self, app: object) -> Admission | None:
        """The app's admission middleware, looked up once the app has built its middleware."""
        if not self._door_sought:
            self._door = find_door(app)
            # an application builds its middleware on its first request: look again until then
            self._door_sought = self._door is not None or getattr(
                app, "middleware_stack", True) is not None
        return self._door

    def warn(self, protocol: HttpToolsProtocol, kind: str, message: str) -> None:
        """Log ``message`` at most once per interval per kind (an attack repeats them)."""
        now = time.monotonic()
        if now - self._warned.get(kind, -_WARNING_INTERVAL) >= _WARNING_INTERVAL:
            self._warned[kind] = now
            protocol.logger.warning(message)


class _Rejected(Exception):
    """Stops httptools' parsing once the request has been answered and the connection closed."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, read-time and connection limits."""

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: HttpLimits = getattr(config, LIMITS_ATTRIBUTE, None) or HttpLimits()
        guard = getattr(server_state, _GUARD_ATTRIBUTE, None)
        if guard is None:
            guard = _ConnectionGuard(self.limits)
            setattr(server_state, _GUARD_ATTRIBUTE, guard)
        self.guard: _ConnectionGuard = guard
        self._refused = False
        self._rejected = False
        self._reading_headers = True
        self._header_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._refused_request = False
        """The request being read was refused at the door: its body is discarded."""

    # --- connection life -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.cap and not self._make_room():
            self._refused = True
            self.transport = transport
            self.guard.warn(self, "connections", f"connection limit reached ({self.guard.cap} "
                            "open, none idle): new connections get 503")
            transport.write(_plain_response(503, "Too many connections."))
            transport.close()
            return
        super().connection_made(transport)
        self.guard.idle[self] = None
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        self.guard.idle.pop(self, None)
        if self._refused:
            return
        super().connection_lost(exc)

    def _make_room(self) -> bool:
        """Close the connection idle for longest; ``False`` when every connection is busy."""
        while self.guard.idle:
            oldest, _ = self.guard.idle.popitem(last=False)
            if not oldest.transport.is_closing():
                self.guard.warn(self, "evict", f"connection limit reached ({self.guard.cap}): "
                                "closing the connections idle for longest")
                oldest.transport.close()
                return True
        return False

    # --- reading ---------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        self._unset_keepalive_if_required()
        if self._reading_headers:
            room = self.limits.max_header_bytes - self._header_bytes
            if len(data) > room:
                self._feed(data[:max(room, 0)])
                if self._rejected or self.transport.is_closing():
                    return
                if self._reading_headers:
                    self._reject(431, "Request header fields too large.")
                    return
                data = data[max(room, 0):]
            else:
                self._header_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._rejected:
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._arm_read_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.limits.max_headers:
            self._reject(431, "Too many request header fields.")
            raise _Rejected
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self.guard.idle.pop(self, None)
        if self._refuse_at_door():
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused_request:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_read_timer()
        self._reading_headers = True
        self._header_bytes = 0
        if self._refused_request:
            # answered when its headers were read; the connection waits for the next request
            self._refused_request = False
            self.on_response_complete()
            return
        super().on_message_complete()

    def on_response_complete(self) -> None:
        next_request_waiting = bool(self.pipeline)  # super() starts it: still busy
        super().on_response_complete()
        if not next_request_waiting and not self.transport.is_closing():
            self.guard.idle[self] = None

    # --- admission at the door -------------------------------------------------------------
    def _refuse_at_door(self) -> bool:
        """Answer the request at once if admission refuses it and it needs nothing of the app.

        Only a keep-alive HTTP/1.1 ``POST`` to a bounded path, without ``Origin`` (its refusal
        carries CORS headers, added by the app) or ``Expect``, and with no earlier request of
        the connection still being answered (answers keep their order). The response is the
        one the admission middleware sends, after the server's default headers.
        """
        door = self.guard.door(self.app)
        if door is None or not door.full or self.parser.get_method() != b"POST":
            return False
        path = self.url.partition(b"?")[0]
        # under a root path the app sees another path than the URL's: leave those to it
        if path not in _ADMITTED_RAW_PATHS or self.root_path or self.pipeline or (
                self.cycle is not None and not self.cycle.response_complete):
            return False
        if (self.parser.get_http_version() != "1.1" or not self.parser.should_keep_alive()
                or self.expect_100_continue
                or any(name in (b"origin", b"expect") for name, _ in self.headers)):
            return False
        headers, body = door.refuse(path.decode("ascii"))
        self._refused_request = True
        self.transport.write(b"".join([
            STATUS_LINE[503],
            *[b"%s: %s\r\n" % pair for pair in [*self.server_state.default_headers, *headers]],
            b"\r\n", body]))
        return True

    # --- limits ----------------------------------------------------------------------------
    def _arm_read_timer(self) -> None:
        self._read_timer = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        self.guard.warn(self, "timeout", f"closing connections that did not send a request "
                        f"within {self.limits.read_timeout:g} s")
        if self._reading_headers and self._header_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
        elif self._reading_headers:
            self._reject(408, "Request timeout.")
        else:  # the body is late: the app is told the client went away
            self.transport.close()

    def _reject(self, status: int, message: str) -> None:
        self._rejected = True
        self._cancel_read_timer()
        if status == 431:
            self.guard.warn(self, "431", f"refused a request: {message.lower().rstrip('.')} "
                            f"(limits {self.limits.max_header_bytes} bytes, "
                            f"{self.limits.max_headers} fields)")
        self.transport.write(_plain_response(status, message))
        self.transport.close()


def _plain_response(status: int, message: str) -> bytes:
    body = message.encode()
    return b"".join([STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
                     b"content-length: ", str(len(body)).encode(), b"\r\n",
                     b"connection: close\r\n\r\n", body])


def run_server(app: str, *, host: str, port: int, workers: int, limits: HttpLimits,
               keepalive_timeout: int) -> None:
    """Serve the ASGI factory ``app`` (an import string) until interrupted, with ``limits``,
    glibc's malloc arenas capped (:func:`limit_malloc_arenas`), and every waiting connection
    accepted at once (:mod:`lngate.web.accept_loop`); several workers listen on a socket each
    (:mod:`lngate.web.worker_sockets`), all bound here."""
    limit_malloc_arenas()
    config = uvicorn.Config(
        app, factory=True, host=host, port=port, workers=workers, loop=ACCEPT_LOOP,
        http=GuardedHttpToolsProtocol, ws="none", log_level="warning", access_log=False,
        proxy_headers=False, timeout_keep_alive=keepalive_timeout,
    )
    setattr(config, LIMITS_ATTRIBUTE, limits)  # pickled with the config into each worker
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        group = _worker_sockets(host, port, workers)
        if group is None:  # one socket for all, as uvicorn shares it
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return
        os.environ[WORKER_SOCKETS_ENV] = str(group.folder)  # inherited by the workers
        try:
            Multiprocess(config, sockets=group.sockets).run()
        finally:
            del os.environ[WORKER_SOCKETS_ENV]
            group.close()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[config.bind_socket()])
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run: the application failed to start


def _worker_sockets(host: str, port: int, workers: int) -> WorkerSockets | None:
    """A socket per worker where the system spreads connections over them, else ``None``;
    exits as uvicorn does when the address cannot be bound."""
    if not spreads_connections():
        return None
    try:
        return WorkerSockets(host, port, workers)
    except OSError as exc:
        logging.getLogger("uvicorn.error").error(exc)
        raise SystemExit(3) from None
