"""Email templates: every kind renders in French, HTML escapes every customer value."""

from __future__ import annotations

from typing import Any

import pytest

from lngate.notify.templates import EmailTemplates, UnknownTemplate

HOSTILE = '<script>alert("x")</script>&<b>'


def payload(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "order_id": "AbC123_-xyz", "product": "dazbox", "product_label": "DazBox",
        "amount_sat": 400_000, "quantity": 1, "plan": None, "plan_label": None,
        "customer_name": "Alice", "customer_email": "alice@example.com",
        "payment_hash": "ab" * 32, "paid_at": "2026-11-27T10:00:00Z", "paid_late": False,
        "address": {"line1": "12 rue des Lilas", "city": "Lyon", "postal_code": "69001",
                    "country": "France"},
    }
    values.update(changes)
    return values


DAZNODE = {"product": "daznode", "plan": "yearly", "plan_label": "annuel",
           "period_start": "2026-11-27T10:00:00Z", "period_end": "2027-11-27T10:00:00Z",
           "renewed": False, "pubkey": "02" + "11" * 32}


@pytest.mark.parametrize(("kind", "extra", "subject"), [
    ("dazbox_confirmation", {}, "Votre commande DazBox AbC123_-xyz est confirmée"),
    ("dazbox_shop_notification", {}, "Nouvelle commande DazBox payée : AbC123_-xyz (x1)"),
    ("daznode_confirmation", DAZNODE, "Votre abonnement DazNode est activé"),
    ("daznode_confirmation", {**DAZNODE, "renewed": True}, "Votre abonnement DazNode est prolongé"),
    ("dazpay_receipt", {"product": "dazpay", "amount_sat": 2100},
     "Reçu de paiement DazPay : 2\u202f100 sats"),
])
def test_every_kind_renders_in_french(kind: str, extra: dict[str, Any], subject: str) -> None:
    """Each email kind has a French subject, a text body and an HTML body."""
    rendered = EmailTemplates().render(kind, payload(**extra))
    assert rendered.subject == subject
    assert "AbC123_-xyz" in rendered.text and "AbC123_-xyz" in rendered.html
    assert rendered.html.startswith("<!DOCTYPE html>") and 'lang="fr"' in rendered.html


def test_customer_values_are_escaped_in_html() -> None:
    """A hostile name and address appear escaped in the HTML, never as markup."""
    hostile_address = {"line1": HOSTILE, "line2": HOSTILE, "city": HOSTILE,
                       "postal_code": HOSTILE, "country": HOSTILE}
    for kind in ("dazbox_confirmation", "dazbox_shop_notification"):
        rendered = EmailTemplates().render(kind, payload(customer_name=HOSTILE,
                                                         address=hostile_address,
                                                         customer_email=HOSTILE))
        assert "<script>" not in rendered.html and "<b>" not in rendered.html
        assert rendered.html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;") >= 5
        assert HOSTILE in rendered.text  # plain text is not HTML: shown as typed
        assert "\n" not in rendered.subject


def test_missing_line2_is_optional_and_missing_values_are_errors() -> None:
    """An optional address line may be absent; a value the template needs may not."""
    rendered = EmailTemplates().render("dazbox_confirmation", payload())
    assert "12 rue des Lilas\n69001 Lyon\nFrance" in rendered.text
    broken = payload()
    del broken["amount_sat"]
    with pytest.raises(Exception, match="amount_sat"):
        EmailTemplates().render("dazbox_confirmation", broken)


def test_unknown_kind_is_refused() -> None:
    """A kind without templates raises UnknownTemplate."""
    with pytest.raises(UnknownTemplate):
        EmailTemplates().render("nope", payload())


def test_compile_all_compiles_every_template_and_a_broken_one_fails_there(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jinja2 import TemplateSyntaxError

    (tmp_path / "receipt.subject.txt").write_text("Paid {{ amount }}")
    (tmp_path / "receipt.txt").write_text("{{ amount | sats }} sats")
    assert EmailTemplates(tmp_path).compile_all() == 2
    (tmp_path / "receipt.html").write_text("<p>{% if amount %}unclosed</p>")
    with pytest.raises(TemplateSyntaxError):
        EmailTemplates(tmp_path).compile_all()
