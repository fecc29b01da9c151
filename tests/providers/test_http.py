"""The shared HTTP plumbing of REST providers, against real HTTP(S) servers on loopback."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.http import (
    HttpTransport,
    LogSummary,
    error_for_status,
    make_session,
    parse_retry_after,
    redact,
    tls_context,
)
from tests.peers.lnbits_peer import free_port

SECRET = "key-SECRET-0123456789"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """An HTTP(S) server on loopback whose answer per path a test sets; it records requests."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://localhost:{self.port}"

    def answer(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            (request.method, request.path_qs, dict(request.headers), await request.read())
        )
        handler = self.routes.get(request.path)
        if handler is None:
            return web.json_response({"detail": "no route"}, status=404)
        return await handler(request)


def reply(status: int = 200, body: Any = None, **kwargs: Any) -> Handler:
    """A handler answering ``status`` with JSON ``body`` (or text, for a str)."""

    async def handler(_request: web.Request) -> web.StreamResponse:
        if isinstance(body, str | bytes):
            return web.Response(status=status, body=body, **kwargs)
        return web.json_response(body if body is not None else {}, status=status, **kwargs)

    return handler


async def hang(_request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer."""
    assert request.transport is not None
    request.transport.close()
    raise asyncio.CancelledError


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server() as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(2.0) as s:
        yield s


def transport(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> HttpTransport:
    kwargs.setdefault("timeout", 2.0)
    return HttpTransport(session, url, provider="node", headers={"Authorization": SECRET},
                         secrets=[SECRET], log_prefix="node", **kwargs)


# ------------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (520, ProviderUnavailable),
        (429, ProviderUnavailable),
        (408, ProviderUnavailable),
        (401, ProviderAuthFailed),
        (403, ProviderAuthFailed),
        (400, ProviderRejected),
        (404, ProviderRejected),
        (409, ProviderRejected),
        (422, ProviderRejected),
    ],
)
async def test_statuses_map_to_the_error_tree(
    server: Server, session: aiohttp.ClientSession, status: int, raised: type[Exception]
) -> None:
    """Each HTTP status maps to its documented class, with the server's detail in the message."""
    server.answer("/x", reply(status, {"message": "because"}))
    with pytest.raises(raised) as caught:
        await transport(session, server.url).call("GET", "/x", operation="op")
    assert type(caught.value) is raised
    assert str(caught.value) == f"node: op: HTTP {status}: because"


def test_error_for_status_is_none_for_2xx() -> None:
    """A 2xx status is no error; the mapping is also usable without a transport."""
    assert error_for_status(204, "", operation="op", provider="p") is None
    error = error_for_status(503, "busy", operation="op", provider="p", retry_after=2.0)
    assert isinstance(error, ProviderUnavailable) and error.retry_after == 2.0


async def test_retry_after_is_read_in_seconds_and_as_a_date(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """Retry-After of a 429 (seconds) or a 503 (HTTP-date) becomes retry_after in seconds."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.answer("/a", reply(429, {"error": "slow down"}, headers={"Retry-After": "7"}))
    server.answer("/b", reply(503, "busy", headers={"Retry-After": when}))
    http = transport(session, server.url)
    with pytest.raises(ProviderUnavailable) as first:
        await http.call("GET", "/a", operation="op")
    with pytest.raises(ProviderUnavailable) as second:
        await http.call("GET", "/b", operation="op")
    assert first.value.retry_after == 7.0
    assert second.value.retry_after is not None and 27 <= second.value.retry_after <= 30


def test_parse_retry_after() -> None:
    """Retry-After parses delay-seconds and HTTP dates, and ignores nonsense."""
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=40.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_rejected_not_followed(
    server: Server, session: aiohttp.ClientSession, status: int
) -> None:
    """A redirect is a rejection; it is not followed (it would carry our credentials away)."""
    server.answer("/x", reply(status, "", headers={"Location": "/stolen"}))
    with pytest.raises(ProviderRejected, match=f"HTTP {status}"):
        await transport(session, server.url).call("POST", "/x", operation="op", json={})
    assert [path for _, path, _, _ in server.requests] == ["/x"]


async def test_request_carries_headers_json_and_params(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """The base URL's prefix, the auth header, the JSON body and the query all reach the server."""
    server.answer("/prefix/v1/invoices", reply(201, {"id": 1}))
    http = transport(session, server.url + "/prefix/")
    data = await http.call("POST", "/v1/invoices", operation="op", json={"amount": 21},
                           params={"a": "b"})
    [(method, path, headers, body)] = server.requests
    assert data == {"id": 1}
    assert (method, path, body) == ("POST", "/prefix/v1/invoices?a=b", b'{"amount":21}')
    assert headers["Authorization"] == SECRET
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"


# ------------------------------------------------------------------------------- transport


async def test_refused_connection_is_unavailable(session: aiohttp.ClientSession) -> None:
    """A closed port is unavailable, naming the operation."""
    http = transport(session, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderUnavailable, match="op: ClientConnectorError") as caught:
        await http.request("GET", "/x", operation="op")
    assert caught.value.provider == "node"


async def test_no_answer_is_unavailable_within_the_timeout(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """A server that never answers costs one timeout (the transport's, or the call's own)."""
    server.answer("/x", hang)
    http = transport(session, server.url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="op: no answer within 0.3 s"):
        await http.request("GET", "/x", operation="op")
    assert 0.25 < time.monotonic() - started < 1.0
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="no answer within 0.1 s"):
        await http.request("GET", "/x", operation="op", timeout=0.1)
    assert time.monotonic() - started < 0.6


async def test_dropped_connection_is_unavailable_and_resent_once_on_request(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """A connection closed without an answer is unavailable; with resend_if_dropped the
    request is sent exactly once more."""
    server.answer("/x", drop)
    http = transport(session, server.url)
    with pytest.raises(ProviderUnavailable, match="ServerDisconnectedError"):
        await http.request("POST", "/x", operation="op", json={})
    assert len(server.requests) == 1
    with pytest.raises(ProviderUnavailable, match="ServerDisconnectedError"):
        await http.request("POST", "/x", operation="op", json={}, resend_if_dropped=True)
    assert len(server.requests) == 3


async def test_answer_over_the_size_cap_is_unavailable(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """A body larger than max_body is refused, whether its length is announced or streamed."""

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    server.answer("/announced", reply(200, "y" * 5000))
    server.answer("/streamed", streamed)
    http = transport(session, server.url, max_body=4096)
    for path in ("/announced", "/streamed"):
        with pytest.raises(ProviderUnavailable, match="larger than 4096 bytes"):
            await http.request("GET", path, operation="op")
    server.answer("/small", reply(200, {"ok": True}))
    assert await http.call("GET", "/small", operation="op") == {"ok": True}


# ------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost, made with the openssl command."""
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl command"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_untrusted_certificate_is_unavailable_and_a_pinned_one_works(
    certificate: tuple[Path, Path],
) -> None:
    """A node's self-signed certificate fails TLS (unavailable, saying so) with the system's
    trust, and works once trusted through tls_context (as for LND's tls.cert)."""
    cert, key = certificate
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)
    async with Server(server_ssl) as server:
        server.answer("/v1/getinfo", reply(200, {"alias": "node"}))
        async with make_session(2.0) as plain:
            with pytest.raises(ProviderUnavailable, match="TLS failed") as caught:
                await transport(plain, server.url).call("GET", "/v1/getinfo", operation="op")
            assert "certificate" in str(caught.value).lower()
        async with make_session(2.0, ssl_context=tls_context(cert.read_text())) as pinned:
            data = await transport(pinned, server.url).call("GET", "/v1/getinfo", operation="op")
        assert data == {"alias": "node"}


# ------------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "op: the answer is not JSON"),
        (b"[1, 2]", "op: the answer is not a JSON object"),
    ],
)
async def test_2xx_that_is_not_a_json_object_is_unavailable(
    server: Server, session: aiohttp.ClientSession, body: bytes, message: str
) -> None:
    """A 2xx whose body is not a JSON object is a malformed answer: unavailable."""
    server.answer("/x", reply(200, body))
    with pytest.raises(ProviderUnavailable) as caught:
        await transport(session, server.url).call("GET", "/x", operation="op")
    assert caught.value.message == message


async def test_require_names_a_missing_or_mistyped_field(session: aiohttp.ClientSession) -> None:
    """require() returns a field of the right type; a missing or mistyped one is unavailable."""
    http = transport(session, "http://127.0.0.1:1")
    data = {"n": 3, "flag": True, "text": "t", "big": "18446744073709551615"}
    assert http.require("op", data, "n", int) == 3
    assert http.require("op", data, "text", str) == "t"
    assert http.require_int("op", data, "big", decimal_string=True) == 2**64 - 1
    with pytest.raises(ProviderUnavailable, match="op: the answer has no missing"):
        http.require("op", data, "missing", str)
    with pytest.raises(ProviderUnavailable, match="op: the answer's flag is not a int: bool"):
        http.require("op", data, "flag", int)
    with pytest.raises(ProviderUnavailable, match="the answer's big is not a int: str"):
        http.require_int("op", data, "big")


def test_detail_reads_the_usual_error_shapes(session: aiohttp.ClientSession) -> None:
    """Error texts are found in detail, error (or error.message) and message, and FastAPI's
    validation lists become "field: message"."""
    http = transport(session, "http://127.0.0.1:1")
    assert http.detail(b'{"detail": "a"}') == "a"
    assert http.detail(b'{"error": {"code": 2, "message": "b"}}') == "b"
    assert http.detail(b'{"code": -32602, "message": "c"}') == "c"
    assert http.detail(b'{"detail": [{"loc": ["body", "amount"], "msg": "d"}]}') == "body.amount: d"
    assert http.detail(b"plain\n  text") == "plain text"


# ------------------------------------------------------------------------------- secrets


def test_redact_masks_secrets_on_one_short_line() -> None:
    """redact() masks every secret (the longest first), joins lines and cuts long texts."""
    assert redact(f"a {SECRET}\nb", [SECRET, "key"]) == "a *** b"
    assert redact("x" * 300, [], limit=10) == "x" * 9 + "…"


async def test_secrets_never_reach_errors_or_logs(
    server: Server, session: aiohttp.ClientSession, debug_logs: list[dict[str, Any]]
) -> None:
    """A secret echoed by the server, in an error detail or a body, is masked in the error,
    its repr and every DEBUG line; the transport's repr shows no header."""
    echo = f"bad key {SECRET}"
    http = transport(session, server.url, timeout=0.3,
                     summary=LogSummary(shown=("detail", "note")))
    texts = [repr(http)]
    for handler in (reply(401, {"detail": echo}), reply(500, echo), reply(200, echo), hang):
        server.answer("/x", handler)
        with pytest.raises((ProviderUnavailable, ProviderRejected)) as caught:
            await http.call("POST", "/x", operation="op", json={"note": echo})
        texts += [str(caught.value), repr(caught.value), repr(caught.value.args)]
    texts.append(repr(debug_logs))
    assert any("bad key ***" in text for text in texts)
    for text in texts:
        assert "SECRET" not in text, text


async def test_exchanges_are_logged_at_debug_with_the_prefix(
    server: Server, session: aiohttp.ClientSession, debug_logs: list[dict[str, Any]]
) -> None:
    """A request and its answer are two DEBUG lines named by the provider's prefix, with the
    path, status, duration and the chosen summary of each body."""
    server.answer("/v1/invoice", reply(200, {"bolt11": "lnbc1" + "q" * 200, "r_preimage": "ab",
                                             "state": "OPEN", "secret_stuff": "zz"}))
    http = transport(session, server.url, summary=LogSummary(
        shown=("state", "value"), shortened=("bolt11",), present=("r_preimage",)))
    await http.call("POST", "/v1/invoice", operation="create_invoice", json={"value": 5})
    sent, answered = [e for e in debug_logs if e["event"].startswith("node.")]
    assert sent["event"] == "node.request" and sent["body"] == {"value": 5}
    assert sent["path"] == "/v1/invoice" and sent["operation"] == "create_invoice"
    assert answered["event"] == "node.answer" and answered["status"] == 200
    assert answered["body"] == {"state": "OPEN", "bolt11": "lnbc1" + "q" * 15 + "…",
                                "r_preimage": "present"}
    assert isinstance(answered["duration_ms"], float)
    assert {e["log_level"] for e in debug_logs} == {"debug"}


async def test_constructing_a_transport_opens_nothing(
    server: Server, session: aiohttp.ClientSession
) -> None:
    """Building a transport sends nothing and starts no task."""
    tasks = len(asyncio.all_tasks())
    http = transport(session, server.url)
    await asyncio.sleep(0.05)
    assert http.base_url == server.url
    assert server.requests == [] and len(asyncio.all_tasks()) == tasks
