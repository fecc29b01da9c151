"""Email senders: SMTP against a real aiosmtpd server, Resend against an HTTP double, the folder."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lngate.notify.email import (
    Email,
    EmailError,
    FolderEmailSender,
    ResendEmailSender,
    SmtpConfig,
    SmtpEmailSender,
    prepare_to_send,
)
from lngate.notify.templates import EmailTemplates
from tests.peers.lnbits_peer import free_port
from tests.peers.smtp_peer import SMTPPeer

SENDER = "DazNode <shop@daznode.test>"


def message(**changes: Any) -> Email:
    values: dict[str, Any] = {"to": "alice@example.com", "subject": "Commande confirmée",
                              "text": "Bonjour Alice", "html": "<p>Bonjour Alice</p>",
                              "message_id": "<order1.kind@daznode.test>",
                              "idempotency_key": "lngate-order1-kind"}
    values.update(changes)
    return Email(**values)


def smtp_sender(port: int, **changes: Any) -> SmtpEmailSender:
    values: dict[str, Any] = {"sender": SENDER, "tls": "none", "timeout": 2.0, **changes}
    return SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=port, **values))


async def test_smtp_delivers_text_and_html(smtp: SMTPPeer) -> None:
    """SMTP hands the server one message with both bodies and our stable Message-ID."""
    await smtp_sender(smtp.port).send(message())
    [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == ("alice@example.com",)
    assert received.subject == "Commande confirmée"
    assert received.message["Message-ID"] == "<order1.kind@daznode.test>"
    assert received.message["From"] == SENDER
    assert received.body("plain").strip() == "Bonjour Alice"
    assert received.body("html").strip() == "<p>Bonjour Alice</p>"


async def test_smtp_server_down_is_a_transient_error() -> None:
    """A refused connection is worth retrying."""
    with pytest.raises(EmailError) as info:
        await smtp_sender(free_port()).send(message())
    assert not info.value.permanent


async def test_smtp_reply_codes_decide_permanence(smtp: SMTPPeer) -> None:
    """A 4xx reply is transient, a 5xx reply permanent; nothing is recorded as received."""
    smtp.reject("451 4.3.0 try again later", "554 5.7.1 rejected")
    with pytest.raises(EmailError) as first:
        await smtp_sender(smtp.port).send(message())
    with pytest.raises(EmailError) as second:
        await smtp_sender(smtp.port).send(message())
    assert not first.value.permanent and second.value.permanent
    assert smtp.received == []


@pytest.mark.parametrize("to", ["alice@example.com\r\nBcc: eve@evil.test",
                                "alice@example.com, eve@evil.test", "Alice <alice@example.com>",
                                "no-at-sign", "",
                                "=?utf-8?q?eve=40evil.test=2C?=@example.com",
                                "ali\x00ce@example.com", "ali\x7fce@example.com"])
async def test_recipients_that_could_add_headers_are_refused(smtp: SMTPPeer, to: str) -> None:
    """A recipient that is not one plain address is refused before anything is sent."""
    with pytest.raises(EmailError) as info:
        await smtp_sender(smtp.port).send(message(to=to))
    assert info.value.permanent and smtp.received == []


async def test_subject_line_breaks_cannot_inject_headers(smtp: SMTPPeer) -> None:
    """Line breaks in a subject are folded into spaces, never a new header."""
    await smtp_sender(smtp.port).send(message(subject="Hi\r\nBcc: eve@evil.test"))
    [received] = await smtp.wait_for(1)
    assert received.subject == "Hi Bcc: eve@evil.test" and received.message["Bcc"] is None


@pytest.mark.parametrize(("to", "address"), [("Alice@Example.COM", "Alice@example.com"),
                                             (" jean@bücher.de ", "jean@xn--bcher-kva.de")])
async def test_the_validated_address_is_what_is_sent(smtp: SMTPPeer, to: str,
                                                     address: str) -> None:
    """The SMTP envelope and the To header carry the normalized address, nothing else."""
    await smtp_sender(smtp.port).send(message(to=to))
    [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == (address,)
    assert [a.addr_spec for a in received.message["To"].addresses] == [address]


async def test_an_encoded_word_in_the_subject_cannot_inject_headers(smtp: SMTPPeer) -> None:
    """A subject whose encoded word hides a line break and a Bcc is refused for good;
    nothing is sent to anyone."""
    with pytest.raises(EmailError) as info:
        await smtp_sender(smtp.port).send(
            message(subject="=?utf-8?q?Hi=0D=0ABcc:_eve@evil.test?="))
    assert info.value.permanent
    assert smtp.received == []


@pytest.mark.parametrize("field", ["subject", "text", "html"])
async def test_text_that_cannot_be_encoded_is_a_permanent_error(smtp: SMTPPeer, tmp_path: Path,
                                                                field: str) -> None:
    """A lone surrogate in the subject or a body is a permanent EmailError from every sender
    (never another exception), and nothing is sent or written."""
    bad = message(**{field: "Bonjour \ud800"})
    with pytest.raises(EmailError) as smtp_error:
        await smtp_sender(smtp.port).send(bad)
    folder = FolderEmailSender(tmp_path / "mail", sender=SENDER)
    with pytest.raises(EmailError) as folder_error:
        await folder.send(bad)
    assert smtp_error.value.permanent and folder_error.value.permanent
    assert smtp.received == [] and not (tmp_path / "mail").exists()


async def test_a_display_name_is_encoded_safely(smtp: SMTPPeer) -> None:
    """A sender's display name with accents and a comma reaches the server encoded, read back
    exactly, with the sender's address as the envelope sender."""
    sender = '"Café Daz, boutique" <shop@daznode.test>'
    await smtp_sender(smtp.port, sender=sender).send(message())
    [received] = await smtp.wait_for(1)
    [address] = received.message["From"].addresses
    assert (address.display_name, address.addr_spec) == ("Café Daz, boutique", "shop@daznode.test")
    assert received.mail_from == "shop@daznode.test"
    assert "Café" not in received.message.as_string().split("\n\n", 1)[0]  # encoded on the wire


@pytest.mark.parametrize("sender", ["=?utf-8?q?Daz?= <shop@daznode.test>", "no-address",
                                    "shop@daznode.test, eve@evil.test", "Daz\r\nBcc: eve <a@b.co>"])
async def test_an_invalid_sender_is_refused_when_configured(tmp_path: Path, sender: str) -> None:
    """Every sender refuses a From address the validator refuses, at construction."""
    with pytest.raises(ValueError):
        SmtpConfig(host="127.0.0.1", port=25, sender=sender)
    with pytest.raises(ValueError):
        FolderEmailSender(tmp_path, sender=sender)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError):
            ResendEmailSender(api_key="re_x", sender=sender, session=session)


def self_signed_context(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate (openssl CLI)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_smtp_starttls_upgrades_before_sending(tmp_path: Path) -> None:
    """With SMTP_TLS=starttls the message goes over TLS to a server that requires it; without
    TLS the same server refuses it."""
    server = SMTPPeer(tls_context=self_signed_context(tmp_path)).start()
    try:
        await smtp_sender(server.port, tls="starttls", validate_certs=False).send(message())
        with pytest.raises(EmailError):
            await smtp_sender(server.port).send(message(message_id="<plain@daznode.test>"))
        [received] = await server.wait_for(1)
        assert received.message["Message-ID"] == "<order1.kind@daznode.test>"
    finally:
        server.stop()


# -- Resend ---------------------------------------------------------------------------------


class ResendDouble:
    """A local HTTP server answering ``POST /emails`` like Resend, scripted per test."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        if self.status == 200:
            return web.json_response({"id": "re_123"})
        return web.json_response({"message": "nope"}, status=self.status)


@pytest.fixture
async def resend() -> AsyncIterator[tuple[ResendDouble, str]]:
    double = ResendDouble()
    app = web.Application()
    app.router.add_post("/emails", double.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield double, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_resend_posts_the_message_with_idempotency_key(resend) -> None:  # type: ignore[no-untyped-def]
    """Resend gets our key as a bearer token, both bodies, and an Idempotency-Key."""
    double, url = resend
    async with aiohttp.ClientSession() as session:
        sender = ResendEmailSender(api_key="re_secret", sender=SENDER, session=session,
                                   base_url=url, timeout=2.0)
        await sender.send(message())
    [(headers, body)] = double.requests
    assert headers["Authorization"] == "Bearer re_secret"
    assert headers["Idempotency-Key"] == "lngate-order1-kind"
    assert body == {"from": SENDER, "to": ["alice@example.com"], "subject": "Commande confirmée",
                    "text": "Bonjour Alice", "html": "<p>Bonjour Alice</p>",
                    "headers": {"Message-ID": "<order1.kind@daznode.test>"}}


async def test_resend_gets_the_validated_address_or_nothing(resend) -> None:  # type: ignore[no-untyped-def]
    """Resend is given the normalized recipient; a hostile one is refused before any request."""
    double, url = resend
    async with aiohttp.ClientSession() as session:
        sender = ResendEmailSender(api_key="re_secret", sender=SENDER, session=session,
                                   base_url=url, timeout=2.0)
        await sender.send(message(to="Alice@Example.COM"))
        with pytest.raises(EmailError) as info:
            await sender.send(message(to="=?utf-8?q?eve=40evil.test=2C?=@example.com"))
    assert info.value.permanent
    [(_, body)] = double.requests
    assert body["to"] == ["Alice@example.com"]


@pytest.mark.parametrize(("status", "permanent"), [(422, True), (400, True), (429, False),
                                                   (500, False), (401, False)])
async def test_resend_errors_are_classified(resend, status: int, permanent: bool) -> None:  # type: ignore[no-untyped-def]
    """Validation errors are permanent; rate limits, outages and bad keys are retried."""
    double, url = resend
    double.status = status
    async with aiohttp.ClientSession() as session:
        sender = ResendEmailSender(api_key="re_secret", sender=SENDER, session=session,
                                   base_url=url, timeout=2.0)
        with pytest.raises(EmailError) as info:
            await sender.send(message())
    assert info.value.permanent is permanent and "re_secret" not in str(info.value)


# -- folder -----------------------------------------------------------------------------------


async def test_folder_sender_writes_a_readable_eml(tmp_path: Path) -> None:
    """The demo sender writes one .eml per message, readable by any mail client."""
    await FolderEmailSender(tmp_path / "mail", sender=SENDER).send(message())
    [path] = list((tmp_path / "mail").glob("*.eml"))
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "alice@example.com" and parsed["Subject"] == "Commande confirmée"
    assert "lngate-order1-kind" in path.name
    assert json.dumps(parsed.get_body(("plain",)).get_content().strip()) == '"Bonjour Alice"'


async def test_the_message_is_7bit_clean_and_reads_back_exactly(tmp_path: Path) -> None:
    """Accents, a long line and a trailing space leave the message pure ASCII (quoted-printable
    bodies: no server needs 8BITMIME), and both bodies and the subject read back exactly."""
    text = "Reçu : 21\u202f000 sats \nL'équipe\n" + "x" * 200 + "\n"
    html = "<p>Payé le " + "é" * 90 + "</p>\n"
    await FolderEmailSender(tmp_path / "mail", sender=SENDER).send(
        message(subject="Reçu de paiement : 21\u202f000 sats", text=text, html=html))
    [path] = list((tmp_path / "mail").glob("*.eml"))
    raw = path.read_bytes()
    assert raw.isascii() and b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Reçu de paiement : 21\u202f000 sats"
    # quoted-printable's line ends are CRLF, and the email package reads them so
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == html


@pytest.mark.parametrize("text", [".\n.. a line of dots\n", "--=_lngate_\n--\n", "plain ascii",
                                  "a\r\nb\rc\n"])
async def test_smtp_bodies_survive_the_wire(smtp: SMTPPeer, text: str) -> None:
    """Lines of dots (SMTP's end of data), boundary-like lines and mixed line ends arrive as
    written (line ends as newlines), in a text-only message and with an HTML alternative."""
    sender = smtp_sender(smtp.port)
    await sender.send(message(text=text, html=None))
    await sender.send(message(text=text))
    received = await smtp.wait_for(2)
    expected = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"
    assert [r.body("plain").replace("\r\n", "\n") for r in received] == [expected, expected]
    assert received[0].message.get_content_type() == "text/plain"
    assert received[1].body("html").strip() == "<p>Bonjour Alice</p>"


async def test_an_smtp_session_sends_several_messages_over_one_connection(smtp: SMTPPeer) -> None:
    """Three messages in one session: one connection (one EHLO), three messages received."""
    greeted = smtp.greetings  # the server's own start-up check greets it too
    async with smtp_sender(smtp.port).session() as send:
        for i in range(3):
            await send(message(to=f"c{i}@example.com"))
    received = await smtp.wait_for(3)
    assert sorted(r.rcpt_tos[0] for r in received) == [f"c{i}@example.com" for i in range(3)]
    assert smtp.greetings - greeted == 1


async def test_a_refused_message_does_not_stop_the_session(smtp: SMTPPeer) -> None:
    """A message the server refuses fails alone, as sent by itself; the next one in the
    session goes over a new connection and arrives."""
    smtp.reject("554 5.7.1 rejected")
    greeted = smtp.greetings
    async with smtp_sender(smtp.port).session() as send:
        with pytest.raises(EmailError) as info:
            await send(message(to="first@example.com"))
        await send(message(to="second@example.com"))
    assert info.value.permanent
    [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == ("second@example.com",)
    assert smtp.greetings - greeted == 2


async def test_a_session_whose_connection_the_server_closed_reconnects(smtp: SMTPPeer) -> None:
    """When the server closes the kept connection between two messages (a restart, an idle
    limit), the next message goes over a new connection instead of failing."""
    async with smtp_sender(smtp.port).session() as send:
        await send(message(to="first@example.com"))
        smtp.stop()
        smtp.start()
        await send(message(to="second@example.com"))
    received = await smtp.wait_for(2)
    assert sorted(r.rcpt_tos[0] for r in received) == ["first@example.com", "second@example.com"]


def test_only_a_sender_that_delivers_prepares_its_libraries_and_templates(tmp_path: Path) -> None:
    folder = FolderEmailSender(tmp_path, sender="shop@example.com")
    smtp = SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=25, sender="shop@example.com"))
    resend = ResendEmailSender(api_key="re_test", sender="shop@example.com",
                               session=None)  # type: ignore[arg-type]  # never used here
    assert not prepare_to_send(folder, EmailTemplates())
    assert prepare_to_send(smtp, EmailTemplates())
    assert prepare_to_send(resend, EmailTemplates())
