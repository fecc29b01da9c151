"""Sending one email: SMTP (aiosmtplib), the Resend HTTP API, or a local folder (demo).

Every sender takes an :class:`Email` and either returns (accepted) or raises
:class:`EmailError`, whose ``permanent`` flag says whether trying again can help: a refused
recipient or a rejected message is permanent; a connection failure, a timeout, a 4xx SMTP
reply, a 429/5xx HTTP answer or refused credentials (fixable by the operator) are not. A
message that cannot be built safely (a recipient that is not one plain address, text that cannot
be encoded) is a permanent :class:`EmailError` too, never another exception. Addresses are
checked by :mod:`lngate.notify.addresses`, and what is sent is the validated form: the headers
and the SMTP envelope carry exactly the normalized addresses. Every network call has an explicit timeout. This module knows nothing of orders or the database.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog

from lngate.notify.addresses import InvalidAddress, Mailbox, parse_mailbox
from lngate.notify.mime import UnsafeHeader, message_bytes
from lngate.notify.templates import EmailTemplates, one_line

log = structlog.get_logger("lngate.email")


@dataclass(frozen=True, slots=True)
class Email:
    """One message to one recipient."""

    to: str
    subject: str
    text: str
    html: str | None = None
    message_id: str | None = None
    """A stable ``Message-ID`` (``<...@...>``), so a re-sent copy is recognisably the same."""
    idempotency_key: str | None = None
    """Sent to APIs that deduplicate (Resend's ``Idempotency-Key``)."""


class EmailError(Exception):
    """The message was not accepted; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailSender(Protocol):
    """Something that sends an :class:`Email`."""

    name: str

    async def send(self, email: Email) -> None:
        """Deliver ``email`` or raise :class:`EmailError`."""
        ...


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message ready to send and the validated addresses it goes from and to."""

    sender: Mailbox
    recipient: Mailbox
    data: bytes
    """The whole message (headers and MIME body), CRLF line ends, 7-bit clean."""


def sender_mailbox(sender: str) -> Mailbox:
    """The configured sender (``EMAIL_FROM``: an address, optionally with a display name);
    raises ``ValueError`` when it is not one."""
    try:
        return parse_mailbox(sender, local=True, display_name=True)
    except InvalidAddress as exc:
        raise ValueError(f"invalid sender address {sender!r}: {exc}") from None


def prepare_message(email: Email, sender: Mailbox) -> PreparedMessage:
    """The MIME message (text, plus an HTML alternative when there is one), checked whole.

    Raises a permanent :class:`EmailError` for anything that cannot make one safe message: a
    recipient that is not one plain address, text that cannot be encoded (a lone surrogate), a
    header that would read back other than it was written (an encoded word hiding a line
    break). The headers carry the validated addresses, never the text given. Written by
    :mod:`lngate.notify.mime` (why not ``EmailMessage``: see there).
    """
    try:
        recipient = parse_mailbox(email.to, local=True)
    except InvalidAddress as exc:
        raise EmailError(f"invalid recipient address {email.to!r}: {exc}", permanent=True) from None
    try:
        data = message_bytes(sender=sender, recipient=recipient, subject=one_line(email.subject),
                             text=email.text, html=email.html, message_id=email.message_id)
    except UnsafeHeader as exc:
        raise EmailError(f"unsendable message: {exc}", permanent=True) from None
    except (ValueError, TypeError, LookupError, HeaderParseError) as exc:
        raise EmailError(f"unsendable message: {type(exc).__name__}: {str(exc)[:200]}",
                         permanent=True) from None
    return PreparedMessage(sender, recipient, data)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach an SMTP server (the ``SMTP_*`` settings). ``tls``: none, starttls or tls."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: str = "starttls"
    timeout: float = 10.0
    validate_certs: bool = True

    def __post_init__(self) -> None:
        if self.tls not in ("none", "starttls", "tls"):
            raise ValueError("tls must be none, starttls or tls")
        sender_mailbox(self.sender)


Send = Callable[[Email], Awaitable[None]]
"""Sends one message or raises :class:`EmailError` (what a sending session hands out)."""


def sending(sender: EmailSender) -> AbstractAsyncContextManager[Send]:
    """A session for several messages in a row: SMTP sends them over one connection, the other
    senders one by one, as :meth:`EmailSender.send` does."""
    if isinstance(sender, SmtpEmailSender):
        return sender.session()
    return nullcontext(sender.send)


class SmtpEmailSender:
    """SMTP with aiosmtplib: a connection per message, or per :meth:`session`."""

    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._sender = sender_mailbox(config.sender)
        self._local_hostname: str | None = None

    def __repr__(self) -> str:
        return f"SmtpEmailSender(host={self._config.host!r}, port={self._config.port})"

    async def send(self, email: Email) -> None:
        """Hand the message to the server; raises :class:`EmailError` when it is not accepted."""
        async with self.session() as send:
            await send(email)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Send]:
        """Send several messages over one connection, opened with the first message and closed
        (``QUIT``) at the end; after a failed message the next one opens a new connection.
        Each message is accepted or refused on its own, as with :meth:`send`."""
        connection = _SmtpConnection(self._config, self._sender, self._ehlo_name)
        try:
            yield connection.send
        finally:
            await connection.close()

    async def _ehlo_name(self) -> str:
        """The name given in EHLO: found once, not by aiosmtplib for every connection (a thread
        hand-off and a resolver look-up each time)."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname


class _SmtpConnection:
    """One SMTP connection at a time, for the messages of a session."""

    def __init__(self, config: SmtpConfig, sender: Mailbox,
                 ehlo_name: Callable[[], Awaitable[str]]) -> None:
        self._config, self._sender, self._ehlo_name = config, sender, ehlo_name
        self._client: Any = None

    async def send(self, email: Email) -> None:
        prepared = prepare_message(email, self._sender)
        limit = self._config.timeout * 3
        while True:
            reused = self._client is not None
            try:
                if self._client is None:
                    self._client = await asyncio.wait_for(self._connect(), limit)
                await asyncio.wait_for(self._client.sendmail(
                    prepared.sender.address, [prepared.recipient.address], prepared.data),
                    limit)
                return
            except Exception as exc:
                # whatever failed, the connection's state is unknown: never send on it again
                self._drop()
                if reused and _closed_by_server(exc):
                    continue  # a kept connection the server closed: once more on a new one
                error = _smtp_error(exc)
                if error is None:
                    raise
                raise error from exc

    async def _connect(self) -> Any:
        import aiosmtplib  # with the first message: a gateway without SMTP never loads it

        c = self._config
        client = aiosmtplib.SMTP(
            hostname=c.host, port=c.port, local_hostname=await self._ehlo_name(),
            username=c.username, password=c.password, use_tls=c.tls == "tls",
            start_tls=c.tls == "starttls", timeout=c.timeout, validate_certs=c.validate_certs)
        await client.connect()
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """``QUIT`` and close (as aiosmtplib's own ``send`` ends); never raises."""
        import aiosmtplib

        client = self._client
        if client is None:
            return
        try:
            await asyncio.wait_for(client.quit(), self._config.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self._drop()


def _closed_by_server(exc: Exception) -> bool:
    """The server had closed the kept connection (an idle or per-connection limit). The
    message goes once more over a new connection, at once, as the outbox would after its
    backoff: should the server have taken it before closing, it gets a second copy with the
    same ``Message-ID``, as with any retry."""
    import aiosmtplib

    return isinstance(exc, (aiosmtplib.SMTPServerDisconnected, ConnectionError)) or (
        isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421)


def _smtp_error(exc: Exception) -> EmailError | None:
    """``exc`` as an :class:`EmailError` saying whether retrying can help (``None``: not an
    SMTP or network error)."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return EmailError(f"smtp: recipient refused ({codes})",
                          permanent=all(500 <= code < 600 for code in codes))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return EmailError(f"smtp: authentication failed ({exc.code})")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return EmailError(f"smtp: {exc.code} {exc.message[:200]}",
                          permanent=500 <= exc.code < 600)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, TimeoutError)):
        return EmailError(f"smtp: {type(exc).__name__}: {str(exc)[:200]}")
    return None


def prepare_to_send(sender: EmailSender, templates: EmailTemplates) -> bool:
    """Load what the first message needs when ``sender`` really delivers mail (SMTP, Resend):
    Jinja2 and every template compiled, and aiosmtplib for SMTP. Returns whether it did.

    Called once at start (off the event loop): loaded with the first message instead, they
    held the loop for ~100-150 ms in the middle of the first payments. A gateway that only
    writes emails to its demo folder keeps them for its first message, out of an idle
    worker's memory.
    """
    if not isinstance(sender, (SmtpEmailSender, ResendEmailSender)):
        return False
    templates.compile_all()
    if isinstance(sender, SmtpEmailSender):
        import aiosmtplib  # noqa: F401
    return True


class ResendEmailSender:
    """The Resend HTTP API (``POST /emails``) over an injected aiohttp session."""

    name = "resend"

    def __init__(
        self, *, api_key: str, sender: str, session: aiohttp.ClientSession,
        base_url: str = "https://api.resend.com", timeout: float = 10.0,
    ) -> None:
        self._api_key = api_key
        self._sender = sender_mailbox(sender)
        self._session = session
        self._url = base_url.rstrip("/") + "/emails"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"ResendEmailSender(url={self._url!r})"

    async def send(self, email: Email) -> None:
        """POST the message; 2xx is accepted, 429/5xx/401/403 retryable, other 4xx permanent."""
        prepared = prepare_message(email, self._sender)  # the same checks as every sender
        body: dict[str, object] = {"from": str(prepared.sender),
                                   "to": [prepared.recipient.address],
                                   "subject": one_line(email.subject), "text": email.text}
        if email.html is not None:
            body["html"] = email.html
        if email.message_id:
            body["headers"] = {"Message-ID": email.message_id}
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if email.idempotency_key:
            headers["Idempotency-Key"] = email.idempotency_key
        try:
            async with self._session.post(self._url, json=body, headers=headers,
                                          timeout=self._timeout, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return
                detail = (await response.text())[:200].replace(self._api_key, "***")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EmailError(f"resend: {type(exc).__name__}: {str(exc)[:200]}") from exc
        permanent = 400 <= response.status < 500 and response.status not in (401, 403, 408, 429)
        raise EmailError(f"resend: HTTP {response.status}: {detail}", permanent=permanent)


class FolderEmailSender:
    """The demo sender: writes each message as an ``.eml`` file and logs it. Sends nothing."""

    name = "folder"

    def __init__(self, folder: Path, *, sender: str) -> None:
        self.folder = Path(folder)
        self._sender = sender_mailbox(sender)

    def __repr__(self) -> str:
        return f"FolderEmailSender(folder={str(self.folder)!r})"

    async def send(self, email: Email) -> None:
        """Write ``<time>-<key>.eml`` atomically."""
        data = prepare_message(email, self._sender).data
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", email.idempotency_key or "message")[:100]
        name = f"{time.time_ns()}-{key}.eml"
        try:
            await asyncio.to_thread(self._write, name, data)
        except OSError as exc:
            raise EmailError(f"folder: {exc}") from exc
        log.info("email_written", folder=str(self.folder), file=name, subject=email.subject)

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
