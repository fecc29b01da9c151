"""A real SMTP server (aiosmtpd) on a loopback port, recording every message it accepts.

It runs in its own thread (aiosmtpd's ``Controller``), so the tests' event loop and a gateway
subprocess can both talk to it. :meth:`SMTPPeer.stop` and :meth:`SMTPPeer.start` bring it down
and back on the same port (a mail server that is "not yet accepting"); :meth:`SMTPPeer.reject`
makes it answer a given SMTP code to the next messages.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers.lnbits_peer import free_port


@dataclass(frozen=True)
class Received:
    """One accepted message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return part.get_content()


class _Handler:
    def __init__(self, peer: SMTPPeer) -> None:
        self._peer = peer

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        with self._peer._lock:
            self._peer.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._peer._lock:
            if self._peer._rejections:
                return self._peer._rejections.pop(0)
            data = envelope.content if isinstance(envelope.content, bytes) else \
                str(envelope.content).encode()
            message = email.message_from_bytes(data, policy=email.policy.default)
            self._peer._received.append(Received(
                str(envelope.mail_from), tuple(str(r) for r in envelope.rcpt_tos),
                message,  # type: ignore[arg-type]
            ))
        return "250 Message accepted for delivery"


class SMTPPeer:
    """An SMTP server on ``127.0.0.1:<port>``, no authentication; STARTTLS with a context."""

    def __init__(
        self, port: int | None = None, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._tls_context = tls_context
        """With a context, STARTTLS is offered and required before any mail."""
        self._controller: Controller | None = None
        self._received: list[Received] = []
        self._rejections: list[str] = []
        self._lock = threading.Lock()
        self.greetings = 0
        """EHLO commands received: one per connection (two with STARTTLS)."""

    def start(self) -> SMTPPeer:
        """Start accepting (again, on the same port)."""
        if self._controller is None:
            tls = ({"tls_context": self._tls_context, "require_starttls": True}
                   if self._tls_context else {})
            self._controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                          ready_timeout=10, **tls)
            self._controller.start()
        return self

    def stop(self) -> None:
        """Stop accepting connections (the port is then closed)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def reject(self, *replies: str) -> None:
        """Answer the next DATA commands with these replies, e.g. ``"451 try later"``."""
        with self._lock:
            self._rejections.extend(replies)

    def clear(self) -> None:
        """Forget received messages and pending rejections."""
        with self._lock:
            self._received.clear()
            self._rejections.clear()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def to(self, address: str) -> list[Received]:
        """Messages with ``address`` among the recipients."""
        return [m for m in self.received if address in m.rcpt_tos]

    async def wait_for(self, count: int, *, timeout: float = 15.0,
                       address: str | None = None) -> list[Received]:
        """Wait until at least ``count`` messages (to ``address``) arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(address) if address else self.received
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages after {timeout} s: "
                                   f"{[m.subject for m in found]}")
            await asyncio.sleep(0.05)
