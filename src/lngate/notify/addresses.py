"""Email addresses: the one validator of the code base (customers, settings, message headers).

An address is parsed by ``email-validator`` (syntax only, never DNS) and then held to what a
header carries safely: ASCII once the domain is in its IDNA (``xn--``) form, no quoted local
part, no domain literal, no control character, and no RFC 2047 encoded word (``=?...?=``)
anywhere: a mail program decodes one into whatever it hides (a line break and a ``Bcc:``, a
comma and a second recipient). Callers keep and send :attr:`Mailbox.address`, the normalized
form, never the text they were given.

Two kinds of address:

- a customer's (the default): must be deliverable on the Internet, so ``localhost``,
  ``*.test`` and dotless domains are refused;
- the operator's own (``local=True``: ``EMAIL_FROM``, ``SHOP_EMAIL``, ``ALERT_EMAIL``, and every
  address at send time): may also be ``...@localhost`` (the ``EMAIL_FROM`` default), on a
  ``.test`` domain or on a dotless host of the operator's network.

Only ``EMAIL_FROM`` may carry a display name (``DazNode <noreply@example.com>``; quote one with
accents or punctuation: ``"Café Daz" <...>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address

from email_validator import EmailNotValidError, validate_email

LOCALHOST = "localhost"
# email-validator refuses ``localhost`` in every mode (a special-use name), so an operator
# address on it is checked with this stand-in domain, then given its real domain back.
_LOCALHOST_STAND_IN = "localhost.test"
_ON_LOCALHOST = re.compile(r"@localhost(>?)\Z", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_INPUT = 512


class InvalidAddress(ValueError):
    """Not an address the gateway will send to or from; the message says why (English)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A validated address (``local@domain``, ASCII) and, for a sender, a display name."""

    address: str
    display_name: str | None = None

    def header(self) -> Address:
        """The value for a ``From``/``To`` header; the email package encodes the name safely."""
        return Address(display_name=self.display_name or "", addr_spec=self.address)

    def __str__(self) -> str:
        return str(self.header())


def parse_mailbox(value: object, *, local: bool = False, display_name: bool = False) -> Mailbox:
    """The normalized mailbox of ``value``; raises :class:`InvalidAddress` saying what is wrong.

    ``local`` admits the operator's own addresses (see the module docstring); ``display_name``
    admits ``Name <address>``.
    """
    if not isinstance(value, str):
        raise InvalidAddress("an email address must be a string")
    text = value.strip()
    if not text:
        raise InvalidAddress("the email address is empty")
    if len(text) > MAX_INPUT:
        raise InvalidAddress(f"the email address is longer than {MAX_INPUT} characters")
    if _CONTROL.search(text):
        raise InvalidAddress("the email address contains a control or invalid character")
    if "=?" in text:
        raise InvalidAddress("the email address contains an encoded word (=?...?=)")
    on_localhost = local and _ON_LOCALHOST.search(text) is not None
    if on_localhost:
        text = _ON_LOCALHOST.sub(lambda m: f"@{_LOCALHOST_STAND_IN}{m.group(1)}", text)
    try:
        checked = validate_email(
            text, check_deliverability=False, allow_smtputf8=False, allow_quoted_local=False,
            allow_domain_literal=False, allow_display_name=display_name,
            test_environment=local, globally_deliverable=not local,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    if checked.ascii_local_part is None:  # cannot happen without SMTPUTF8; never send it
        raise InvalidAddress("the email address is not ASCII")
    domain = LOCALHOST if on_localhost else checked.ascii_domain
    address = f"{checked.ascii_local_part}@{domain}"
    name = " ".join((checked.display_name or "").split()) or None
    mailbox = Mailbox(address, name)
    _check_header_round_trip(mailbox)
    return mailbox


def _check_header_round_trip(mailbox: Mailbox) -> None:
    """The email package must read the address back exactly as validated (belt and braces)."""
    try:
        header = mailbox.header()
    except (ValueError, HeaderParseError) as exc:
        raise InvalidAddress(f"the email address cannot be put in a header: {exc}") from None
    if header.addr_spec != mailbox.address:
        raise InvalidAddress("the email address does not read back as itself in a header")

