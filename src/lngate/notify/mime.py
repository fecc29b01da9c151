"""The bytes of an outgoing email: a text body and an optional HTML alternative, 7-bit clean.

Why not :class:`email.message.EmailMessage` whole: with its default policy every header set is
parsed into the header registry's objects, every part gets its own registry headers, and the
message is refolded header by header when written (and aiosmtplib writes it a second time
before sending): about 2 ms of CPU per receipt email, more than the rest of a settled webhook's
own SQL. The messages the gateway sends have one fixed shape, so the structure is written here
and every piece that needs care comes from the standard library:

- ``Subject`` and ``Message-ID`` still go through the ``email`` package's header registry
  (:data:`email.policy.SMTP`), which encodes non-ASCII text as RFC 2047 encoded words; the
  value is checked as the registry reads it back, so an encoded word hiding a line break is
  refused, as before.
- ``From`` is folded by the same registry once per sender (cached) and checked to read back
  as the validated address; ``To`` is the validated plain address (ASCII, no display name).
- A body is CRLF-terminated lines of UTF-8: 7bit when it is ASCII in lines of at most 78
  characters, quoted-printable (:func:`binascii.b2a_qp`) otherwise, so the message needs no
  8BITMIME from the server.

Any text that cannot be encoded (a lone surrogate) raises ``ValueError`` (``UnicodeError``)
and a header that would hold a line break raises :class:`UnsafeHeader`.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

from lngate.notify.addresses import Mailbox

_POLICY = email.policy.SMTP
MAX_7BIT_LINE = 78
"""The ``email`` package's own limit for sending a line unencoded (``max_line_length``)."""


class UnsafeHeader(ValueError):
    """A header would not read back as one line, or as the validated address."""


def _header(name: str, value: object) -> bytes:
    """``Name: value`` folded by the header registry; refused when it would hold a break."""
    header = _POLICY.header_factory(name, value)
    if any(c in str(header) for c in "\r\n\x00"):
        raise UnsafeHeader(f"the {name} header would hold a line break")
    return header.fold(policy=_POLICY).encode("ascii")


@functools.lru_cache(maxsize=16)
def from_header(sender: Mailbox) -> bytes:
    """The ``From`` line of ``sender`` (computed once per sender)."""
    header = _POLICY.header_factory("From", sender.header())
    if [a.addr_spec for a in header.addresses] != [sender.address]:
        raise UnsafeHeader("the sender address does not read back as validated")
    return _header("From", sender.header())


def _part(body: str, subtype: str) -> bytes:
    """One text part: its two headers, a blank line and the encoded body."""
    lines = body.encode("utf-8").splitlines()  # as the email package splits: \r\n, \r, \n
    data = b"\r\n".join(lines) + b"\r\n"
    if data.isascii() and max(map(len, lines), default=0) <= MAX_7BIT_LINE:
        encoding = b"7bit"
    else:
        encoding, data = b"quoted-printable", binascii.b2a_qp(data, istext=True)
    return (b'Content-Type: text/' + subtype.encode() + b'; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + data)


def message_bytes(*, sender: Mailbox, recipient: Mailbox, subject: str, text: str,
                  html: str | None, message_id: str | None) -> bytes:
    """The whole message, CRLF line ends, ready for SMTP ``DATA`` or an ``.eml`` file."""
    head = [from_header(sender), b"To: " + recipient.address.encode("ascii") + b"\r\n",
            _header("Subject", subject),
            b"Date: " + format_datetime(datetime.now(UTC)).encode("ascii") + b"\r\n"]
    if message_id:
        head.append(_header("Message-ID", message_id))
    head.append(b"MIME-Version: 1.0\r\n")
    plain = _part(text, "plain")
    if html is None:
        return b"".join(head) + plain
    parts = (plain, _part(html, "html"))
    boundary = _boundary(parts)
    head.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n')
    # the line break before a delimiter belongs to the delimiter (RFC 2046), not to the part
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return b"".join(head) + body + b"--" + boundary + b"--\r\n"


def _boundary(parts: tuple[bytes, ...]) -> bytes:
    """A random boundary found in no part (``=_`` never occurs in quoted-printable text)."""
    while True:
        boundary = b"=_lngate_" + secrets.token_hex(16).encode()
        if not any(boundary in part for part in parts):
            return boundary
