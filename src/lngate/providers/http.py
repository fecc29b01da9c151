"""HTTP plumbing shared by the providers reached over REST (LNbits; Core Lightning, LND).

A provider builds one :class:`HttpTransport` over an injected session (:func:`make_session`),
with its base URL, its credentials as headers and the secrets to keep out of every text; it is
then mostly its paths and its field mapping::

    http = HttpTransport(session, config.endpoint, provider=name, timeout=config.timeout,
                         headers={"X-Api-Key": key}, secrets=[key], log_prefix="lnbits")
    data = await http.call("POST", "/api/v1/payments", operation="create_invoice", json=body)
    bolt11 = http.require("create_invoice", data, "bolt11", str)

How exchanges map to the error tree (:mod:`lngate.errors`)
----------------------------------------------------------

====================================================  =====================================
what happened                                         raised
====================================================  =====================================
connection refused or reset, DNS failure, a dropped   ``ProviderUnavailable``
connection, a truncated body, a TLS failure (a
certificate we do not trust included: we cannot
reach the server we trust), no answer in time
HTTP 5xx, 429, 408                                    ``ProviderUnavailable`` with
                                                      ``retry_after`` from ``Retry-After``
                                                      (seconds or HTTP-date)
HTTP 401, 403                                         ``ProviderAuthFailed``
any 3xx (redirects are never followed: they would     ``ProviderRejected``
carry our credentials elsewhere), any other 4xx
a 2xx answer that is not JSON, not of the expected    ``ProviderUnavailable``
type, larger than ``max_body``, or lacks a field or
has one of the wrong type (a *malformed answer*)
====================================================  =====================================

A malformed 2xx means this provider (or a proxy before it) is broken right now, not that our
request was wrong: it counts for the breaker and the router tries another provider, which is
what "unavailable" means. Provider-specific statuses (an LNbits 404 that means "unknown key")
are decided by the provider before :meth:`HttpTransport.raise_for_status`.

Secrets
    Every text that reaches an error message or a log line goes through
    :meth:`HttpTransport.clean`: the provider's secrets masked as ``***``, one line, at most
    200 characters. Errors are raised ``from None``: aiohttp's exceptions hold the request
    headers, hence the credentials.

Logs
    Each request and its answer are logged at DEBUG only (``<prefix>.request``,
    ``<prefix>.answer`` with the status and duration, ``<prefix>.no_answer``), with the
    provider, operation, method, path and a short summary of each JSON body chosen by a
    :class:`LogSummary`. Nothing is summarised when DEBUG is off (it costs ~20 µs a call).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog
from multidict import CIMultiDictProxy

from lngate.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)

T = TypeVar("T")

DEFAULT_MAX_BODY = 1 << 20
"""Largest answer body read (1 MiB): a Lightning REST answer is a few kB."""
TEXT_MAX = 200
"""Longest text (server detail, exception text) put into an error message."""
_SUMMARY_TEXT_MAX = 120
_SHORTENED_TO = 20
_READ_CHUNK = 1 << 16

_log = structlog.get_logger(__name__)


# ------------------------------------------------------------------------------- sessions


def make_session(
    timeout: float = 5.0,
    *,
    limit: int = 100,
    ssl_context: ssl.SSLContext | aiohttp.Fingerprint | None = None,
) -> aiohttp.ClientSession:
    """A pooled HTTP session for one provider; call it inside the running event loop.

    ``timeout`` bounds each call (the transport also passes its own per call). Idle connections
    are kept 4 s, under the 5 s keep-alive of common Python servers (uvicorn: LNbits), so we do
    not send a request on a connection the server is closing at that moment. No cookies, no
    proxy from the environment. ``ssl_context`` replaces the system's trust (see
    :func:`tls_context`) for a node with its own certificate; an ``aiohttp.Fingerprint``
    accepts only the certificate with that SHA-256 (a pinned certificate).
    """
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit,
        keepalive_timeout=4.0,
        ttl_dns_cache=300,
        ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "lngate"},
        trust_env=False,
    )


def tls_context(ca_pem: str | None = None) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or only ``ca_pem`` (PEM text) when given.

    For a node that serves its own self-signed certificate (LND's ``tls.cert``, CLN's
    ``clnrest`` certificate): trusting that one certificate keeps verification on, host name
    included.
    """
    if ca_pem is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=ca_pem)


# ------------------------------------------------------------------------------- parsing


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def redact(text: str, secrets: Iterable[str], *, limit: int = TEXT_MAX) -> str:
    """``text`` on one line, at most ``limit`` characters, with each of ``secrets`` as ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for_status(
    status: int,
    detail: str,
    *,
    operation: str,
    provider: str,
    retry_after: float | None = None,
) -> ProviderError | None:
    """The error a non-2xx HTTP status means (see the module's table); ``None`` for a 2xx.

    ``detail`` is the server's (already cleaned) explanation, appended to the message.
    """
    if 200 <= status < 300:
        return None
    message = f"{operation}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        return ProviderUnavailable(message, provider=provider, retry_after=retry_after)
    if status in (401, 403):
        return ProviderAuthFailed(message, provider=provider)
    return ProviderRejected(message, provider=provider)


# ------------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """One HTTP answer, whatever its status: the body is read whole (within ``max_body``)."""

    status: int
    body: bytes
    headers: CIMultiDictProxy[str] | Mapping[str, str]

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def retry_after(self, *, now: float | None = None) -> float | None:
        """The ``Retry-After`` header in seconds, ``None`` when absent or unreadable."""
        return parse_retry_after(self.headers.get("Retry-After"), now=now)


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What the DEBUG lines show of a JSON body (a body that is not an object is described)."""

    shown: tuple[str, ...] = ()
    """Fields shown as they are (numbers, booleans) or as cleaned, shortened text."""
    shortened: tuple[str, ...] = ()
    """Fields shown cut to their first 20 characters (a BOLT11)."""
    present: tuple[str, ...] = ()
    """Fields shown only as ``"present"`` (a preimage, a URL carrying a token)."""
    nested: tuple[str, ...] = ()
    """Object fields summarised with the same rules (LNbits' ``details``)."""


# ------------------------------------------------------------------------------- transport


class HttpTransport:
    """One provider's HTTP exchanges: errors mapped, secrets masked, exchanges logged.

    The session is injected (and owned by the provider, which closes it); the constructor opens
    nothing. ``timeout`` bounds each exchange, connecting and reading the body included.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        provider: str,
        timeout: float,
        connect_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        log_prefix: str = "http",
        summary: LogSummary = LogSummary(),
        max_body: int = DEFAULT_MAX_BODY,
        log: Any = None,
    ) -> None:
        if timeout <= 0 or (connect_timeout is not None and connect_timeout <= 0):
            raise ValueError("timeouts must be positive")
        self.session = session
        """The injected session (the provider owns it and closes it)."""
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._prefix = log_prefix
        self._summary = summary
        self._max_body = max_body
        self._log = log if log is not None else _log

    def __repr__(self) -> str:
        return f"HttpTransport(provider={self.provider!r}, base_url={self.base_url!r})"

    # -- exchanges ----------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
        resend_if_dropped: bool = False,
    ) -> dict[str, Any]:
        """:meth:`request`, then :meth:`raise_for_status`, then the answer as a JSON object."""
        answer = await self.request(method, path, operation=operation, json=json, params=params,
                                    timeout=timeout, resend_if_dropped=resend_if_dropped)
        self.raise_for_status(operation, answer)
        return self.json_object(operation, answer)

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
        resend_if_dropped: bool = False,
    ) -> HttpAnswer:
        """One exchange with ``base_url + path``; any status is returned, never followed.

        Transport failures raise ``ProviderUnavailable``. ``json`` is sent as the body.
        ``timeout`` (default: the transport's) bounds the whole exchange, a resend included.
        With ``resend_if_dropped``, a request whose connection dies before any answer (a
        pooled connection the server had closed) is sent once more on another connection;
        only ask for it where a duplicate is harmless. aiohttp itself does this for
        idempotent methods.
        """
        url = self.base_url + path
        body = None if json is None else orjson.dumps(json)
        limit = self.timeout if timeout is None else timeout
        if not self._log.is_enabled_for(logging.DEBUG):
            return await self._exchange(method, url, operation, body, params, limit,
                                        resend_if_dropped)
        fields = {"provider": self.provider, "operation": operation, "method": method,
                  "path": urlsplit(url).path}
        self._log.debug(f"{self._prefix}.request", **fields,
                        body=None if body is None else self.summarize(body))
        started = time.perf_counter()
        try:
            answer = await self._exchange(method, url, operation, body, params, limit,
                                          resend_if_dropped)
        except ProviderUnavailable as exc:
            self._log.debug(f"{self._prefix}.no_answer", **fields,
                            duration_ms=_ms_since(started), error=exc.message)
            raise
        self._log.debug(f"{self._prefix}.answer", **fields, status=answer.status,
                        duration_ms=_ms_since(started), body=self.summarize(answer.body))
        return answer

    async def _exchange(
        self,
        method: str,
        url: str,
        operation: str,
        body: bytes | None,
        params: Mapping[str, str] | None,
        limit: float,
        resend_if_dropped: bool,
    ) -> HttpAnswer:
        headers = self._json_headers if body is not None else self._headers
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        timeout = aiohttp.ClientTimeout(total=limit, connect=min(limit, self.connect_timeout))
        resent = False
        while True:
            try:
                async with self.session.request(
                    method, url, data=body, headers=headers, params=params, timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    raw = await self._read(response, operation)
                    return HttpAnswer(response.status, raw, response.headers)
            except TimeoutError:  # asyncio's and aiohttp's timeouts both derive from it
                raise self.unavailable(f"{operation}: no answer within {limit:g} s") from None
            except aiohttp.ClientSSLError as exc:
                raise self.unavailable(
                    f"{operation}: TLS failed: {type(exc).__name__}: {self.clean(str(exc))}"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                raise self.unavailable(
                    f"{operation}: {type(exc).__name__}: {self.clean(str(exc))}"
                ) from None
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                remaining = deadline - loop.time()
                if resent or not resend_if_dropped or remaining <= 0:
                    raise self.unavailable(
                        f"{operation}: {type(exc).__name__}: {self.clean(str(exc))}"
                    ) from None
                resent = True
                timeout = aiohttp.ClientTimeout(
                    total=remaining, connect=min(remaining, self.connect_timeout)
                )
            except aiohttp.ClientError as exc:
                raise self.unavailable(
                    f"{operation}: {type(exc).__name__}: {self.clean(str(exc))}"
                ) from None

    async def _read(self, response: aiohttp.ClientResponse, operation: str) -> bytes:
        """The whole body, refusing one larger than ``max_body`` before reading it if it says
        so, else as soon as it passes the cap."""
        declared = response.content_length
        if declared is not None:
            if declared > self._max_body:
                raise self.unavailable(self._too_large(operation))
            return await response.read()
        raw = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            raw += chunk
            if len(raw) > self._max_body:
                raise self.unavailable(self._too_large(operation))
        return bytes(raw)

    def _too_large(self, operation: str) -> str:
        return f"{operation}: the answer is larger than {self._max_body} bytes"

    # -- answers ------------------------------------------------------------------------

    def raise_for_status(self, operation: str, answer: HttpAnswer) -> None:
        """Raise the error a non-2xx answer means (see the module's table)."""
        if answer.ok:
            return
        error = error_for_status(answer.status, self.detail(answer.body), operation=operation,
                                 provider=self.provider, retry_after=answer.retry_after())
        assert error is not None
        raise error

    def json_value(self, operation: str, answer: HttpAnswer | bytes) -> Any:
        """The body parsed as JSON; a body that is not JSON is a malformed answer."""
        raw = answer.body if isinstance(answer, HttpAnswer) else answer
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self.unavailable(f"{operation}: the answer is not JSON") from None

    def json_object(self, operation: str, answer: HttpAnswer | bytes) -> dict[str, Any]:
        """The body as a JSON object; anything else is a malformed answer."""
        data = self.json_value(operation, answer)
        if not isinstance(data, dict):
            raise self.unavailable(f"{operation}: the answer is not a JSON object")
        return data

    def require(self, operation: str, data: Mapping[str, Any], name: str, kind: type[T]) -> T:
        """``data[name]`` when it is a ``kind`` (never a ``bool`` for ``int``), else the
        malformed-answer error naming the field."""
        value = data.get(name)
        if value is None:
            raise self.malformed(operation, f"the answer has no {name}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.malformed(
                operation, f"the answer's {name} is not a {kind.__name__}: {type(value).__name__}"
            )
        return value

    def require_int(
        self, operation: str, data: Mapping[str, Any], name: str, *, decimal_string: bool = False
    ) -> int:
        """``data[name]`` as an int; with ``decimal_string`` a string of digits is accepted too
        (how grpc-gateway, LND's REST API, writes 64-bit integers)."""
        value = data.get(name)
        if decimal_string and isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        return self.require(operation, data, name, int)

    def detail(self, raw: bytes) -> str:
        """The server's explanation of an error, cleaned: ``detail``, ``error`` or ``message``
        of a JSON object (FastAPI's validation lists joined as ``field: message``), else the
        body's text."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self.clean(raw.decode("utf-8", "replace"))
        if isinstance(data, dict):
            detail = data.get("detail", data.get("error", data.get("message")))
            if isinstance(detail, dict):  # {"error": {"code": ..., "message": ...}}
                detail = detail.get("message", detail)
            if isinstance(detail, list):  # FastAPI validation errors
                detail = "; ".join(
                    f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                    if isinstance(e, dict)
                    else str(e)
                    for e in detail
                )
            if detail is not None:
                return self.clean(str(detail))
        return self.clean(raw.decode("utf-8", "replace"))

    # -- texts and errors ---------------------------------------------------------------

    def clean(self, text: str, *, limit: int = TEXT_MAX) -> str:
        """One line, at most ``limit`` characters, with the provider's secrets masked."""
        return redact(text, self._secrets, limit=limit)

    def unavailable(self, message: str, *, retry_after: float | None = None) -> ProviderUnavailable:
        """A ``ProviderUnavailable`` of this provider (``message`` must already be clean)."""
        return ProviderUnavailable(message, provider=self.provider, retry_after=retry_after)

    def malformed(self, operation: str, what: str) -> ProviderUnavailable:
        """The error of a 2xx answer that is not what the API promises (see the module)."""
        return self.unavailable(f"{operation}: {self.clean(what)}")

    def rejected(self, message: str) -> ProviderRejected:
        """A ``ProviderRejected`` of this provider (``message`` must already be clean)."""
        return ProviderRejected(message, provider=self.provider)

    def auth_failed(self, message: str) -> ProviderAuthFailed:
        """A ``ProviderAuthFailed`` of this provider (``message`` must already be clean)."""
        return ProviderAuthFailed(message, provider=self.provider)

    # -- log summaries ------------------------------------------------------------------

    def summarize(self, raw: bytes) -> dict[str, Any] | str:
        """What a log line may show of a body, per the transport's :class:`LogSummary`."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = self.clean(raw.decode("utf-8", "replace"), limit=_SUMMARY_TEXT_MAX)
            return f"{len(raw)} bytes, not JSON: {text}"
        if not isinstance(data, dict):
            return f"{len(raw)} bytes, JSON {type(data).__name__}"
        summary = self._summary_fields(data)
        for name in self._summary.nested:
            nested = data.get(name)
            if isinstance(nested, dict):
                summary[name] = self._summary_fields(nested)
        return summary

    def _summary_fields(self, data: Mapping[str, Any]) -> dict[str, Any]:
        rules = self._summary
        summary: dict[str, Any] = {}
        for key in rules.shown:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool | int | float):
                summary[key] = value
            else:
                summary[key] = self.clean(str(value), limit=_SUMMARY_TEXT_MAX)
        for key in rules.shortened:
            value = data.get(key)
            if isinstance(value, str) and value:
                summary[key] = value[:_SHORTENED_TO] + "…"
        for key in rules.present:
            if data.get(key):
                summary[key] = "present"
        return summary


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
