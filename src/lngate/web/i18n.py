"""The words of every HTML page, in French (the default) and English, and how a request picks one.

All the text a page shows lives in :data:`CATALOGUE`, never in templates or scripts: a
template writes ``{{ t("checkout.paid_title") }}``, and a script reads the words it needs from the
page (``data-*`` attributes or hidden elements) rather than carrying its own. Keys are grouped
by page (``checkout.``, ``error.``, ``admin.`` from ``web/i18n_admin.py``...); every language has
exactly the same keys (a test says so). A page picks its language from ``?lang=`` first, then ``Accept-Language``, else French.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lngate.web.i18n_admin import ADMIN_WORDS

DEFAULT_LANGUAGE = "fr"

CATALOGUE: Mapping[str, Mapping[str, str]] = {
    "fr": {
        "lang.name": "Français",
        "page.powered_by": "Paiement Lightning par lngate",
        "sats": "{amount} sats",
        "checkout.title": "Paiement Lightning",
        "checkout.test_banner": "TEST : facture de démonstration, aucun paiement réel",
        "checkout.amount": "Montant",
        "checkout.description": "Description",
        "checkout.qr_title": "QR code de la facture Lightning",
        "checkout.scan": "Scannez ce QR code avec votre portefeuille Lightning.",
        "checkout.open_wallet": "Ouvrir dans mon portefeuille",
        "checkout.webln": "Payer avec le portefeuille du navigateur",
        "checkout.webln_sent": "Paiement envoyé, en attente de confirmation…",
        "checkout.webln_failed": "Le portefeuille du navigateur n'a pas payé la facture.",
        "checkout.invoice": "Facture (BOLT11)",
        "checkout.copy": "Copier la facture",
        "checkout.copied": "Facture copiée",
        "checkout.copy_failed": "Copie impossible : sélectionnez le texte de la facture.",
        "checkout.expires_in": "Expire dans",
        "checkout.waiting": "En attente du paiement…",
        "checkout.refresh": "Actualiser le statut",
        "checkout.paid_title": "Paiement reçu",
        "checkout.paid_text": "Merci ! Votre paiement est confirmé.",
        "checkout.expired_title": "Facture expirée",
        "checkout.expired_text": "Cette facture n'est plus payable.",
        "checkout.expired_order_text":
            "Cette facture n'est plus payable : demandez-en une nouvelle pour la même commande.",
        "checkout.renew": "Nouvelle facture",
        "error.invoice_not_found": "Facture introuvable",
        "error.invoice_not_found_text":
            "Aucune facture ne correspond à cette adresse. Vérifiez le lien reçu.",
        "error.order_not_found": "Commande introuvable",
        "error.order_not_found_text":
            "Aucune commande ne correspond à cette adresse. Vérifiez le lien reçu.",
        "error.rate_limited": "Trop de requêtes",
        "error.rate_limited_text": "Réessayez dans un instant.",
        "error.unavailable": "Service momentanément indisponible",
        "error.unavailable_text":
            "Impossible de créer une nouvelle facture pour le moment. "
            "Réessayez dans quelques minutes.",
        **ADMIN_WORDS["fr"],  # the back office's pages (web/i18n_admin.py)
    },
    "en": {
        "lang.name": "English",
        "page.powered_by": "Lightning payment by lngate",
        "sats": "{amount} sats",
        "checkout.title": "Lightning payment",
        "checkout.test_banner": "TEST: demo invoice, no real payment",
        "checkout.amount": "Amount",
        "checkout.description": "Description",
        "checkout.qr_title": "QR code of the Lightning invoice",
        "checkout.scan": "Scan this QR code with your Lightning wallet.",
        "checkout.open_wallet": "Open in my wallet",
        "checkout.webln": "Pay with the browser wallet",
        "checkout.webln_sent": "Payment sent, waiting for confirmation…",
        "checkout.webln_failed": "The browser wallet did not pay the invoice.",
        "checkout.invoice": "Invoice (BOLT11)",
        "checkout.copy": "Copy the invoice",
        "checkout.copied": "Invoice copied",
        "checkout.copy_failed": "Cannot copy: select the invoice text instead.",
        "checkout.expires_in": "Expires in",
        "checkout.waiting": "Waiting for the payment…",
        "checkout.refresh": "Refresh the status",
        "checkout.paid_title": "Payment received",
        "checkout.paid_text": "Thank you! Your payment is confirmed.",
        "checkout.expired_title": "Invoice expired",
        "checkout.expired_text": "This invoice can no longer be paid.",
        "checkout.expired_order_text":
            "This invoice can no longer be paid: ask for a new one for the same order.",
        "checkout.renew": "New invoice",
        "error.invoice_not_found": "Invoice not found",
        "error.invoice_not_found_text":
            "No invoice matches this address. Check the link you received.",
        "error.order_not_found": "Order not found",
        "error.order_not_found_text":
            "No order matches this address. Check the link you received.",
        "error.rate_limited": "Too many requests",
        "error.rate_limited_text": "Try again in a moment.",
        "error.unavailable": "Service temporarily unavailable",
        "error.unavailable_text":
            "A new invoice cannot be created right now. Try again in a few minutes.",
        **ADMIN_WORDS["en"],
    },
}
LANGUAGES = tuple(CATALOGUE)
_THOUSANDS = {"fr": "\u202f", "en": ","}  # French: narrow no-break space


@dataclass(frozen=True, slots=True)
class Translator:
    """The words of one language: ``t("checkout.paid_title")``; an unknown key is an error."""

    language: str

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOGUE[self.language][key]
        return text.format(**values) if values else text

    def sats(self, amount: int) -> str:
        """``400000`` -> ``400 000 sats`` (French) or ``400,000 sats`` (English)."""
        grouped = f"{amount:,}".replace(",", _THOUSANDS[self.language])
        return self("sats", amount=grouped)


def negotiate_language(query: str | None, accept_language: str | None) -> str:
    """The page's language: ``?lang=`` when it names a known one, else the best known language
    of ``Accept-Language`` (by quality, then order), else French."""
    if query and query.strip().lower() in CATALOGUE:
        return query.strip().lower()
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in CATALOGUE:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        candidate = (-quality, position, language)
        if quality > 0 and (best is None or candidate < best):
            best = candidate
    return best[2] if best else DEFAULT_LANGUAGE
