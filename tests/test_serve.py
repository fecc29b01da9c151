"""`lngate serve` as a real process: bounded headers, slow clients cut off, a connection cap below
the file-descriptor limit, and readiness that notices a full disk."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

READ_TIMEOUT = 2.0


@dataclass
class Served:
    """A running gateway: its port and process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """The server's resident memory."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(folder: Path, *, preexec: Callable[[], None] | None = None,
           **env: str) -> Iterator[Served]:
    """Start `lngate serve` on a free port in ``folder``; stop it (SIGTERM) afterwards."""
    port = free_port()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LNBITS_", "NWC_", "DATABASE_", "HTTP_", "ALERT_"))}
    base.update(DATABASE_URL=f"sqlite:///{folder / 'serve.sqlite3'}", LIGHTNING_TEST_MODE="true",
                LOG_FORMAT="json", **env)
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "lngate", "serve", "--port", str(port)],
                               env=base, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=preexec)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield Served(port, process)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One gateway for the tests that do not change its limits."""
    with served(tmp_path_factory.mktemp("serve"),
                HTTP_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT)) as running:
        yield running


def closed_within(sock: socket.socket, seconds: float) -> tuple[float | None, bytes]:
    """Wait until the server closes ``sock``; returns (when, what it answered)."""
    started = time.monotonic()
    answer = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started, answer
        if not chunk:
            return time.monotonic() - started, answer
        answer += chunk
    return None, answer


def test_an_oversized_header_is_refused_quickly_with_bounded_memory(server: Served) -> None:
    """Four requests with a 32 MB header each get 431 (or a closed connection) at once; the
    server reads at most the limit of them, so its memory hardly moves."""
    before = server.rss_kib()
    chunk = b"a" * (1024 * 1024)
    for _ in range(4):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.settimeout(5)
            answer = b""
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                for _ in range(32):
                    sock.sendall(chunk)
                sock.sendall(b"\r\n\r\n")
                answer = sock.recv(4096)
            except OSError:  # refused mid-send: the server closed with our data unread
                pass
            elapsed = time.monotonic() - started
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        assert elapsed < 3, elapsed
    assert server.rss_kib() - before < 20 * 1024, (before, server.rss_kib())
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_too_many_header_fields_get_431(server: Served) -> None:
    """More header fields than HTTP_MAX_HEADERS (100) get 431 and the connection is closed."""
    fields = b"".join(b"X-Field-%d: 1\r\n" % i for i in range(150))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        when, answer = closed_within(sock, 5)
    assert when is not None and answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_a_client_sending_headers_slowly_is_disconnected(server: Served) -> None:
    """A client trickling header lines is answered 408 and disconnected after the read timeout."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.3)
        closed_after = None
        while time.monotonic() - started < 4 * READ_TIMEOUT:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                chunk = sock.recv(4096)
                answer += chunk
                if not chunk:
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "a slow client kept its connection"
    assert READ_TIMEOUT - 0.5 < closed_after < READ_TIMEOUT + 2, closed_after
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_a_silent_connection_is_closed_after_the_read_timeout(server: Served) -> None:
    """A connection that never sends a byte is closed after the read timeout."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        when, answer = closed_within(sock, 4 * READ_TIMEOUT)
    assert when is not None and READ_TIMEOUT - 0.5 < when < READ_TIMEOUT + 2, when
    assert answer == b""


def test_a_normal_request_works_while_many_idle_connections_are_open(tmp_path: Path) -> None:
    """With 256 file descriptors, 400 idle connections neither exhaust them nor lock out a
    normal request: the connections idle for longest are closed to make room."""
    def few_descriptors() -> None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    with served(tmp_path, preexec=few_descriptors, HTTP_READ_TIMEOUT_SECONDS="60") as server:
        idle = []
        try:
            for _ in range(400):
                idle.append(socket.create_connection(("127.0.0.1", server.port)))
            time.sleep(0.5)
            assert server.open_descriptors() < 256
            response = httpx.get(f"{server.url}/readyz", timeout=5)
            assert response.status_code == 200, response.text
        finally:
            for sock in idle:
                sock.close()


def test_readiness_notices_a_full_disk(server: Served) -> None:
    """When no file can grow (the disk is full), readyz answers 503 not_writable, and recovers."""
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    pid = server.process.pid
    limit = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, limit[1]))  # every file write fails
    try:
        response = httpx.get(f"{server.url}/readyz", timeout=5)
        assert response.status_code == 503
        assert response.json()["database"] == "not_writable"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, limit)
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200


def test_pipelined_requests_and_a_body_beyond_the_header_limit_still_work(server: Served) -> None:
    """Two requests in one packet are both answered; a 20 KB body (above the header limit) is
    read as a body, not counted as headers."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        answers = b""
        sock.settimeout(5)
        while answers.count(b"HTTP/1.1 200 ") < 2:
            chunk = sock.recv(4096)
            assert chunk, answers
            answers += chunk
    body = ('{"amount": 5, "description": "padded", "metadata": {"pad": "'
            + "p" * 20_000 + '"}}').encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /api/create-invoice HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body)
        sock.settimeout(5)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 ") and not answer.startswith(b"HTTP/1.1 431"), answer
    assert b"application/json" in answer


def test_serve_caps_glibc_malloc_arenas_unless_the_operator_chose(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread's own malloc arena keeps memory resident; serving caps them at 2, for the
    workers it starts too (through the environment), and leaves an operator's value alone."""
    import platform

    from lngate.web.http_server import MALLOC_ARENAS, limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")
    assert os.environ["MALLOC_ARENA_MAX"] == str(MALLOC_ARENAS) == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
