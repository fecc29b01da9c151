"""EMAIL_FROM, SHOP_EMAIL and ALERT_EMAIL go through the gateway's one address validator."""

from __future__ import annotations

import pytest

from lngate.settings import ConfigError, Settings, load_settings

HOSTILE = [
    "=?utf-8?q?ops=40evil.test=2C?=@example.com",
    "ops@example.com\r\nBcc: eve@evil.test",
    "ops@example.com, eve@evil.test",
    "ops\x7f@example.com",
    "ops@example.com\x00",
    '"o p"@example.com',
    "ops@[192.0.2.1]",
]


def settings(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


def test_the_default_sender_works() -> None:
    """The EMAIL_FROM default, ``DazNode <noreply@localhost>``, is accepted as it is."""
    assert settings().email_from == "DazNode <noreply@localhost>"


@pytest.mark.parametrize("value", ["DazNode <noreply@example.com>", "noreply@example.com",
                                   '"Café Daz, boutique" <shop@example.com>',
                                   "lngate@localhost"])
def test_email_from_accepts_an_address_with_an_optional_display_name(value: str) -> None:
    """EMAIL_FROM takes an address, alone or with a display name, and keeps it as written."""
    assert settings(email_from=f"  {value} ").email_from == value


@pytest.mark.parametrize("value", [*HOSTILE, "=?utf-8?q?Daz?= <noreply@example.com>",
                                   '"Daz\r\nBcc: eve@evil.test" <noreply@example.com>',
                                   "no-address"])
def test_email_from_refuses_what_could_forge_a_header(value: str) -> None:
    """An EMAIL_FROM with an encoded word, a control character or a second address stops
    start-up, naming the variable."""
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        settings(email_from=value)


@pytest.mark.parametrize(("name", "variable"), [("shop_email", "SHOP_EMAIL"),
                                                ("alert_email", "ALERT_EMAIL")])
def test_recipient_settings_are_one_normalized_address(name: str, variable: str) -> None:
    """SHOP_EMAIL and ALERT_EMAIL keep the normalized address; localhost and .test domains are
    the operator's to use; a display name is refused."""
    assert getattr(settings(**{name: " Shop@Example.COM "}), name) == "Shop@example.com"
    assert getattr(settings(**{name: "shop@localhost"}), name) == "shop@localhost"
    assert getattr(settings(**{name: "shop@daznode.test"}), name) == "shop@daznode.test"
    with pytest.raises(ConfigError, match=variable):
        settings(**{name: "Shop <shop@example.com>"})


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("name", "variable"), [("shop_email", "SHOP_EMAIL"),
                                                ("alert_email", "ALERT_EMAIL")])
def test_recipient_settings_refuse_what_could_forge_a_header(name: str, variable: str,
                                                             value: str) -> None:
    """SHOP_EMAIL and ALERT_EMAIL refuse encoded words, control characters and lists."""
    with pytest.raises(ConfigError, match=variable):
        settings(**{name: value})
