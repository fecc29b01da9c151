"""One listening socket per worker process, the kernel spreading new connections over them.

Workers sharing one listening socket split its connections by who wakes first, and Linux often
wakes only one of them: measured with two workers and a client opening 20 connections, the split
was 0/20, 1/19, 4/16 ... 10/10, and a client that keeps its connections (a benchmark, a reverse
proxy's keep-alive pool) then loads one worker while the other idles. With ``SO_REUSEPORT``, each
worker listens on a socket of its own on the same address and the kernel assigns each new
connection to one of them by a hash of its addresses, whoever is awake.

The sockets are bound by ``lngate serve`` before it starts the workers (uvicorn hands every
worker all of them): each worker serves the one it claims (an exclusive ``flock`` on a claim
file named after the socket, in the folder named by :data:`WORKER_SOCKETS_ENV`), and does not
listen on the others. A worker that stops releases its claim with its process, and the worker
started in its place, or one waiting for a socket, serves it; meanwhile that socket's new
connections wait in its queue. Another process could join a ``SO_REUSEPORT`` group on the same port only by setting the
option itself under the same user; binding checks first, as a plain bind would, that nothing
else listens there, so a second gateway started on the same port fails as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

WORKER_SOCKETS_ENV = "LNGATE_WORKER_SOCKETS"
"""The folder of claim files, set by ``lngate serve`` for the workers it starts."""


def spreads_connections() -> bool:
    """Whether this system spreads a port's connections over ``SO_REUSEPORT`` sockets (Linux
    does; elsewhere the last socket bound may take them all)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


class WorkerSockets:
    """``count`` listening sockets on ``(host, port)``, and the claim files of the workers."""

    def __init__(self, host: str, port: int, count: int) -> None:
        """Bind them (listening starts in the worker that claims each); ``OSError`` when the
        address is taken or cannot be bound."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if port:
            _check_free(family, host, port)  # the group must not join another's sockets
        self.sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.socket(family, socket.SOCK_STREAM)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
                port = sock.getsockname()[1]  # port 0: the others take the one given
                sock.set_inheritable(True)
        except OSError:
            self.close()
            raise
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="lngate-sockets-"))
        for sock in self.sockets:
            _claim_file(self.folder, sock).touch()

    def close(self) -> None:
        """Close this process's copies of the sockets and remove the claim files."""
        for sock in self.sockets:
            sock.close()
        if getattr(self, "folder", None) is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class SocketClaims:
    """This process's claim: the one socket of the group it serves."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._held: IO[bytes] | None = None

    @property
    def holding(self) -> bool:
        """Whether this process has claimed a socket."""
        return self._held is not None

    def claim(self, sock: socket.socket) -> bool:
        """Whether this process serves ``sock``: True for the first socket it can claim (held
        until the process ends), False for the others and for a socket another worker holds."""
        if self._held is not None:
            return False
        claim = _claim_file(self._folder, sock).open("rb")
        try:
            fcntl.flock(claim.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.close()
            return False
        self._held = claim
        return True


CLAIM_RETRY_SECONDS = 0.2
"""How often a worker serving no socket tries to claim one again."""
_claims: SocketClaims | None = None


def serve_when_claimed(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                       serve: Callable[[], None]) -> None:
    """Call ``serve`` once ``sock`` is this worker's: at once unless ``lngate serve`` gave the
    workers a socket each (:data:`WORKER_SOCKETS_ENV`); else when this worker claims it.

    A worker that could claim no socket at start (uvicorn starts a replacement before stopping
    the worker it replaces on ``SIGHUP``, and ``SIGTTIN`` adds a worker beyond the sockets bound)
    tries again every :data:`CLAIM_RETRY_SECONDS` until it holds one, so the socket of a worker
    that stops is served again. Once ``sock`` is closed, it stops trying.
    """
    global _claims
    folder = os.environ.get(WORKER_SOCKETS_ENV)
    if not folder:
        serve()
        return
    if _claims is None:
        _claims = SocketClaims(Path(folder))
    claims = _claims

    def attempt() -> None:
        if sock.fileno() < 0 or claims.holding:
            return
        if claims.claim(sock):
            serve()
        else:
            loop.call_later(CLAIM_RETRY_SECONDS, attempt)

    attempt()


def _claim_file(folder: Path, sock: socket.socket) -> Path:
    # the socket's inode is the same in every process holding a copy of it
    return folder / str(os.fstat(sock.fileno()).st_ino)


def _check_free(family: socket.AddressFamily, host: str, port: int) -> None:
    """``OSError`` (address already in use) when a socket listens on ``(host, port)``."""
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind((host, port))
