"""Payment settings (catalog, email, webhook secret) and what bootstrap builds from them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from lngate.bootstrap import build_catalog, build_email_sender, build_webhook_auth
from lngate.domain import Plan, Product
from lngate.notify.email import FolderEmailSender, ResendEmailSender, SmtpEmailSender
from lngate.providers.testprovider import TestProvider
from lngate.services.orders import Customer, OrderRequest
from lngate.settings import ConfigError, Settings, load_settings


def settings(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


@pytest.mark.parametrize(("values", "variable"), [
    ({"smtp_tls": "ssl"}, "SMTP_TLS"),
    ({"smtp_port": 70000}, "SMTP_PORT"),
    ({"email_from": "no-address"}, "EMAIL_FROM"),
    ({"shop_email": "shop@example.com\r\nBcc: eve@evil.test"}, "SHOP_EMAIL"),
    ({"lnbits_webhook_secret": "short"}, "LNBITS_WEBHOOK_SECRET"),
    ({"daznode_yearly_discount_percent": 95}, "DAZNODE_YEARLY_DISCOUNT_PERCENT"),
    ({"dazbox_price_sats": 0}, "DAZBOX_PRICE_SATS"),
    ({"reconcile_interval_seconds": 0}, "RECONCILE_INTERVAL_SECONDS"),
])
def test_unworkable_values_name_their_variable(values: dict, variable: str) -> None:
    """A payment setting that cannot work stops start-up with the variable's name."""
    with pytest.raises(ConfigError, match=variable):
        settings(**values)


def test_blank_optional_email_settings_are_unset() -> None:
    """Empty SMTP_HOST, SMTP_PORT and SHOP_EMAIL (as in .env.example) mean not configured."""
    s = settings(smtp_host="", smtp_port="", shop_email=" ")
    assert s.smtp_host is None and s.smtp_port is None and s.shop_email is None


def test_catalog_follows_settings() -> None:
    """Catalog prices come from the settings; DazPay's maximum, and every order's, is
    MAX_INVOICE_SATS."""
    catalog = build_catalog(settings(dazbox_price_sats=1000, daznode_monthly_sats=10,
                                     daznode_yearly_discount_percent=50, max_invoice_sats=2777))
    box = OrderRequest(Product.DAZBOX, Customer("a@b.co"), quantity=2)
    assert catalog.price_sat(box) == 2000
    assert catalog.daznode_price_sat(Plan.YEARLY) == 60
    assert catalog.dazpay_max_sat == catalog.max_total_sat == 2777


async def test_email_sender_choice(tmp_path: Path) -> None:
    """SMTP_HOST wins, then RESEND_API_KEY; with neither, the demo folder sender."""
    sessions: list[aiohttp.ClientSession] = []
    smtp = build_email_sender(settings(smtp_host="mail.example.com", resend_api_key="re_x"),
                              sessions)
    resend = build_email_sender(settings(resend_api_key="re_x"), sessions)
    folder = build_email_sender(settings(email_folder=tmp_path / "mail"), sessions)
    try:
        assert isinstance(smtp, SmtpEmailSender) and "587" in repr(smtp)
        assert isinstance(resend, ResendEmailSender) and "re_x" not in repr(resend)
        assert isinstance(folder, FolderEmailSender) and folder.folder == tmp_path / "mail"
        assert len(sessions) == 1  # Resend's HTTP session, closed with the gateway
    finally:
        for session in sessions:
            await session.close()


def test_webhook_auth_only_with_a_secret() -> None:
    """Without LNBITS_WEBHOOK_SECRET no webhook URL is built; with it, URLs carry a token."""
    provider = TestProvider(network=Settings.model_fields["lightning_network"].default,
                            clock=lambda: None)  # type: ignore[arg-type, return-value]
    assert build_webhook_auth(settings(), [provider]) is None
    auth = build_webhook_auth(settings(lnbits_webhook_secret="s" * 20,
                                       public_url="https://pay.example.com/"), [provider])
    assert auth is not None
    url = auth.url("nonce123")
    assert url.startswith(
        "https://pay.example.com/api/webhook/lnbits-payment?nonce=nonce123&token=")
    assert "s" * 20 not in url and auth.token_valid("nonce123", url.rsplit("=", 1)[1])
    assert not auth.token_valid("nonce124", url.rsplit("=", 1)[1])
