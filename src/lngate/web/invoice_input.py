"""The create-invoice body rules, with the French messages the shop's front end shows."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from lngate.services.invoices import InvoiceRequest
from lngate.web.errors import ApiError

MAX_DESCRIPTION_BYTES = 639
MAX_METADATA_BYTES = 4096
MIN_EXPIRY, MAX_EXPIRY = 60, 86400
MAX_IDEMPOTENCY_KEY = 255


def clean_description(text: str) -> str:
    """Remove control characters and surrounding whitespace."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc").strip()


def parse_invoice_request(
    body: Any, *, max_sats: int, default_expiry: int, idempotency_key: str | None
) -> InvoiceRequest:
    """Validate a create-invoice body; raises :class:`ApiError` with the contract's message."""
    if not isinstance(body, dict):
        raise ApiError(400, "Le corps doit être un objet JSON", "invalid_body")
    amount, description = body.get("amount"), body.get("description")
    if amount is None or description is None:
        raise ApiError(400, "Le montant et la description sont requis", "missing_fields")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ApiError(400, "Le montant doit être un nombre positif", "invalid_amount")
    if amount > max_sats:
        raise ApiError(400, f"Montant maximum: {max_sats:,} sats", "amount_too_large",
                       maxAmount=max_sats)
    if not isinstance(description, str):
        raise ApiError(400, "La description doit être un texte", "invalid_description")
    description = clean_description(description)
    if not description:
        raise ApiError(400, "Le montant et la description sont requis", "missing_fields")
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        raise ApiError(400, f"La description dépasse {MAX_DESCRIPTION_BYTES} octets",
                       "description_too_long")
    metadata = parse_metadata(body.get("metadata"))
    expiry = body.get("expiry", default_expiry)
    if (not isinstance(expiry, int) or isinstance(expiry, bool)
            or not MIN_EXPIRY <= expiry <= MAX_EXPIRY):
        raise ApiError(400, f"L'expiration doit être un entier entre {MIN_EXPIRY} et "
                       f"{MAX_EXPIRY} secondes", "invalid_expiry")
    return InvoiceRequest(amount_sat=amount, description=description, expiry=expiry,
                          metadata=metadata, idempotency_key=_idempotency_key(idempotency_key))


def parse_metadata(value: Any) -> dict[str, Any] | None:
    """The optional ``metadata`` object (create-invoice and orders), at most 4 KB; raises
    :class:`ApiError` (400)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, "Les métadonnées doivent être un objet JSON", "invalid_metadata")
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        raise ApiError(400, "Les métadonnées dépassent 4 Ko", "metadata_too_large")
    return value


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise ApiError(400, "Idempotency-Key invalide (1 à 255 caractères imprimables)",
                       "invalid_idempotency_key")
    return value
