"""The back office's emails: the customer's "shipped" email and the shop's "refund due" email,
in French, with every customer or operator value escaped in HTML."""

from __future__ import annotations

from typing import Any

from lngate.notify.templates import EmailTemplates

HOSTILE = '<script>alert("x")</script>'
ADDRESS = {"line1": "12 rue des Lilas", "city": "Lyon", "postal_code": "69001",
           "country": "France"}


def shipped(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "order_id": "AbC123_-xyz", "product_label": "DazBox", "quantity": 2,
        "customer_name": "Alice", "customer_email": "alice@example.com",
        "tracking_number": "6A12345678901", "carrier": "Colissimo",
        "shipped_at": "2026-11-28T09:00:00Z", "address": ADDRESS, "payment_hash": "ab" * 32,
        "paid_late": False,
    }
    values.update(changes)
    return values


def test_shipped_email_gives_the_tracking_number_in_french() -> None:
    """The "shipped" email names the order, the carrier, the tracking number and the address."""
    rendered = EmailTemplates().render("dazbox_shipped", shipped())
    assert rendered.subject == "Votre DazBox est en route (commande AbC123_-xyz)"
    for body in (rendered.text, rendered.html):
        assert "6A12345678901" in body and "Colissimo" in body and "69001 Lyon" in body
        assert "expédiée" in body
    assert "Transporteur" not in EmailTemplates().render("dazbox_shipped",
                                                         shipped(carrier=None)).text


def test_shipped_email_escapes_values_in_html() -> None:
    """A hostile carrier or name appears escaped in the HTML; the subject stays one line."""
    rendered = EmailTemplates().render("dazbox_shipped", shipped(
        carrier=HOSTILE, customer_name=HOSTILE, order_id="X\r\nBcc: e@evil.test"))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_refund_due_email_to_the_shop() -> None:
    """The shop is told, in French, that a cancelled order was paid and must be refunded."""
    rendered = EmailTemplates().render("order_paid_after_cancel", {
        "order_id": "AbC123_-xyz", "product_label": "DazPay", "amount_sat": 2100,
        "paid_at": "2026-11-28T09:00:00Z", "paid_late": True, "customer_name": HOSTILE,
        "customer_email": "alice@example.com", "payment_hash": "ab" * 32})
    assert rendered.subject == ("À rembourser : la commande annulée AbC123_-xyz a été payée "
                                "(2\u202f100 sats)")
    assert "remboursé" in rendered.text and "après l'expiration" in rendered.text
    assert "<script>" not in rendered.html and "refund_due" in rendered.html
