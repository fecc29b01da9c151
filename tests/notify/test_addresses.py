"""The one email address validator: what it accepts, what it normalizes to, what it refuses,
and that the order input, the settings and the message builder all give its verdict."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lngate.domain import Product
from lngate.notify.addresses import InvalidAddress, Mailbox, parse_mailbox
from lngate.notify.email import Email, EmailError, prepare_message, sender_mailbox
from lngate.settings import Settings
from lngate.web.errors import ApiError
from lngate.web.order_input import parse_order_request

# Each of these reached a header before: a hidden recipient, a hidden line break, or a byte
# no mail server should see.
HOSTILE = {
    "encoded word (second recipient)": "=?utf-8?q?attacker=40evil=2Ecom=2C?=@example.com",
    "encoded word (line break)": "=?utf-8?q?a=0D=0ABcc:x@evil.com?=@example.com",
    "encoded word in the domain": "alice@=?utf-8?q?evil.com?=",
    "NUL": "ali\x00ce@example.com",
    "DEL": "ali\x7fce@example.com",
    "C1 control": "ali\x85ce@example.com",
    "CR LF": "alice@example.com\r\nBcc: eve@example.org",
    "lone surrogate": "ali\ud800ce@example.com",
    "two addresses": "alice@example.com, eve@example.org",
    "two at signs": "alice@eve@example.com",
    "quoted local part": '"alice bob"@example.com',
    "domain literal": "alice@[192.0.2.1]",
    "non-ASCII local part": "jérôme@example.com",
    "no at sign": "alice.example.com",
    "empty": "",
    "too long": "a" * 250 + "@example.com",
    "trailing dot": "alice@example.com.",
}


def is_email_address(value: object, *, local: bool = False) -> bool:
    """Whether ``value`` is one plain address (no display name) :func:`parse_mailbox` accepts."""
    try:
        parse_mailbox(value, local=local)
    except InvalidAddress:
        return False
    return True


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
@pytest.mark.parametrize("local", [False, True])
def test_hostile_addresses_are_refused(value: str, local: bool) -> None:
    """Encoded words, control characters, lists and obsolete forms are refused, for customers
    and for the operator's own addresses alike."""
    with pytest.raises(InvalidAddress):
        parse_mailbox(value, local=local)
    assert not is_email_address(value, local=local)


@pytest.mark.parametrize(("value", "address"), [
    ("alice@example.com", "alice@example.com"),
    ("  Alice.Martin+shop@Example.COM ", "Alice.Martin+shop@example.com"),
    ("Postmaster@example.com", "postmaster@example.com"),
    ("jean@bücher.de", "jean@xn--bcher-kva.de"),
    ("a@b.co", "a@b.co"),
])
def test_addresses_are_normalized(value: str, address: str) -> None:
    """A valid address comes back trimmed, its domain lower-cased and in its ASCII (IDNA) form."""
    assert parse_mailbox(value) == Mailbox(address)


@pytest.mark.parametrize("value", ["shop@localhost", "shop@daznode.test", "shop@mailhost"])
def test_local_addresses_are_for_the_operator_only(value: str) -> None:
    """localhost, .test and dotless domains are accepted for the operator's own addresses and
    refused for a customer's."""
    assert parse_mailbox(value, local=True).address == value
    with pytest.raises(InvalidAddress):
        parse_mailbox(value)


@pytest.mark.parametrize(("value", "mailbox"), [
    ("DazNode <noreply@localhost>", Mailbox("noreply@localhost", "DazNode")),
    ("DazNode <noreply@LOCALHOST>", Mailbox("noreply@localhost", "DazNode")),
    ("noreply@localhost", Mailbox("noreply@localhost")),
    ('"Café  Daz" <shop@example.com>', Mailbox("shop@example.com", "Café Daz")),
    ('"Daz, Node" <shop@example.com>', Mailbox("shop@example.com", "Daz, Node")),
])
def test_a_sender_may_have_a_display_name(value: str, mailbox: Mailbox) -> None:
    """A display name is accepted where asked for (EMAIL_FROM), spaces collapsed."""
    assert parse_mailbox(value, local=True, display_name=True) == mailbox


@pytest.mark.parametrize("value", [
    '"=?utf-8?q?a=0D=0ABcc:_x@evil.com?=" <shop@example.com>',
    "=?utf-8?q?DazNode?= <shop@example.com>",
    '"Daz\x00Node" <shop@example.com>',
    "DazNode <shop@example.com> <eve@example.org>",
    "DazNode <shop@localhost>, eve@example.org",
    "eve@example.org, DazNode <shop@localhost>",
])
def test_hostile_display_names_are_refused(value: str) -> None:
    """A display name holding an encoded word or a control character, or a second address
    beside the first, is refused (the localhost exception included)."""
    with pytest.raises(InvalidAddress):
        parse_mailbox(value, local=True, display_name=True)


def test_a_display_name_is_refused_where_not_asked_for() -> None:
    """A recipient is one plain address: ``Name <address>`` is refused."""
    with pytest.raises(InvalidAddress):
        parse_mailbox("Alice <alice@example.com>", local=True)


def _order_verdict(address: str) -> bool:
    body = {"product": "dazpay", "amount": 21, "customer": {"email": address}}
    try:
        parse_order_request(body)
    except ApiError as exc:
        assert exc.code in ("invalid_email", "missing_email")
        return False
    return True


def _sender_verdict(address: str) -> bool:
    try:
        parse_mailbox(address, local=True, display_name=True)
    except InvalidAddress:
        return False
    return True


def _settings_verdict(**values: Any) -> bool:
    try:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    except ValidationError:
        return False
    return True


def _builder_verdict(address: str) -> bool:
    try:
        prepare_message(Email(to=address, subject="s", text="t"),
                        sender_mailbox("noreply@localhost"))
    except EmailError as exc:
        assert exc.permanent
        return False
    return True


SAMPLES = [*HOSTILE.values(), "alice@example.com", "Alice@Example.COM", "jean@bücher.de",
           "shop@localhost", "shop@daznode.test", "Alice <alice@example.com>"]


@pytest.mark.parametrize("address", [a for a in SAMPLES if a.strip()])
def test_every_caller_gives_the_one_validators_verdict(address: str) -> None:
    """The order input (customer rule), SHOP_EMAIL, ALERT_EMAIL and the message builder
    (operator rule) and EMAIL_FROM (operator rule, display name allowed) accept exactly what
    parse_mailbox accepts."""
    assert _order_verdict(address) is is_email_address(address)
    operator = is_email_address(address, local=True)
    assert _settings_verdict(shop_email=address) is operator
    assert _settings_verdict(alert_email=address) is operator
    assert _builder_verdict(address) is operator
    assert _settings_verdict(email_from=address) is _sender_verdict(address)


def test_order_input_stores_the_normalized_address() -> None:
    """The order keeps the normalized address, the one its emails are sent to."""
    body = {"product": "dazpay", "amount": 21, "customer": {"email": " Alice@Example.COM "}}
    request = parse_order_request(body)
    assert request.product is Product.DAZPAY and request.customer.email == "Alice@example.com"
