"""The create-order body rules, with French messages and a machine-readable ``code`` each.

The customer's email is checked by the gateway's one address validator
(:mod:`lngate.notify.addresses`) and stored in its normalized form, the one emails go to.
Customer text (name, address lines) is one cleaned line within its limit, without an RFC 2047
encoded word: a mail program would decode one into whatever it hides.
"""

from __future__ import annotations

import re
from typing import Any

from lngate.domain import Plan, Product
from lngate.notify.addresses import InvalidAddress, parse_mailbox
from lngate.services.orders import Address, Customer, OrderRequest
from lngate.web.errors import ApiError
from lngate.web.invoice_input import clean_description, parse_metadata

_FIELDS = {"product", "customer", "plan", "quantity", "amount", "metadata"}
_CUSTOMER_FIELDS = {"email", "name", "address", "pubkey"}
_ADDRESS_FIELDS = {"line1", "line2", "city", "postal_code", "country"}
_PUBKEY = re.compile(r"0[23][0-9a-f]{64}")
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bq]\?", re.IGNORECASE)
_LIMITS = {"name": 100, "line1": 200, "line2": 200, "city": 100, "postal_code": 20,
           "country": 56}


def _bad(message: str, code: str, **extra: Any) -> ApiError:
    return ApiError(400, message, code, **extra)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object, field: str, *, required: bool) -> str | None:
    """A cleaned single-line string within its length limit."""
    if value is None:
        if required:
            raise _bad(f"Le champ {field} est requis", "missing_field", field=field)
        return None
    if not isinstance(value, str):
        raise _bad(f"Le champ {field} doit être un texte", "invalid_field", field=field)
    cleaned = " ".join(clean_description(value).split())
    if not cleaned:
        if required:
            raise _bad(f"Le champ {field} est requis", "missing_field", field=field)
        return None
    limit = _LIMITS.get(field.rsplit(".", 1)[-1], 200)
    if len(cleaned) > limit:
        raise _bad(f"Le champ {field} dépasse {limit} caractères", "field_too_long", field=field)
    if _ENCODED_WORD.search(cleaned):  # a mail program would decode it into anything
        raise _bad(f"Le champ {field} contient une séquence encodée (=?...?=) non autorisée",
                   "invalid_field", field=field)
    return cleaned


def _address(value: object) -> Address:
    if value is None:
        raise _bad("L'adresse de livraison est requise pour la DazBox", "missing_address")
    if not isinstance(value, dict):
        raise _bad("L'adresse doit être un objet JSON", "invalid_address")
    unknown = set(value) - _ADDRESS_FIELDS
    if unknown:
        raise _bad(f"Champ d'adresse inconnu: {sorted(unknown)[0]}", "unknown_field",
                   field=f"customer.address.{sorted(unknown)[0]}")
    line1 = _text(value.get("line1"), "customer.address.line1", required=True)
    city = _text(value.get("city"), "customer.address.city", required=True)
    postal_code = _text(value.get("postal_code"), "customer.address.postal_code", required=True)
    country = _text(value.get("country"), "customer.address.country", required=True)
    line2 = _text(value.get("line2"), "customer.address.line2", required=False)
    assert line1 and city and postal_code and country
    return Address(line1=line1, city=city, postal_code=postal_code, country=country, line2=line2)


def _customer(value: object, product: Product) -> Customer:
    if value is None:
        raise _bad("Les informations client sont requises", "missing_customer")
    if not isinstance(value, dict):
        raise _bad("Le client doit être un objet JSON", "invalid_customer")
    unknown = set(value) - _CUSTOMER_FIELDS
    if unknown:
        raise _bad(f"Champ client inconnu: {sorted(unknown)[0]}", "unknown_field",
                   field=f"customer.{sorted(unknown)[0]}")
    email = value.get("email")
    if email is None or (isinstance(email, str) and not email.strip()):
        raise _bad("L'adresse email est requise", "missing_email")
    try:
        mailbox = parse_mailbox(email)
    except InvalidAddress as exc:
        raise _bad("Adresse email invalide", "invalid_email", reason=str(exc)) from None
    name = _text(value.get("name"), "customer.name", required=False)
    address = None
    if product is Product.DAZBOX:
        address = _address(value.get("address"))
    elif value.get("address") is not None:
        raise _bad("L'adresse ne concerne que la DazBox", "unexpected_field",
                   field="customer.address")
    pubkey = value.get("pubkey")
    if pubkey is not None:
        if product is not Product.DAZNODE:
            raise _bad("La clé de nœud ne concerne que DazNode", "unexpected_field",
                       field="customer.pubkey")
        if not isinstance(pubkey, str) or not _PUBKEY.fullmatch(pubkey.strip().lower()):
            raise _bad("Clé publique de nœud invalide (66 caractères hexadécimaux)",
                       "invalid_pubkey")
        pubkey = pubkey.strip().lower()
    return Customer(email=mailbox.address, name=name, address=address, pubkey=pubkey)


def parse_order_request(body: Any) -> OrderRequest:
    """Validate a create-order body; raises :class:`ApiError` (400) saying what is wrong.

    Prices are not read from the body: only a DazPay ``amount``, checked against the catalog
    by the service.
    """
    if not isinstance(body, dict):
        raise _bad("Le corps doit être un objet JSON", "invalid_body")
    unknown = set(body) - _FIELDS
    if unknown:
        field = sorted(unknown)[0]
        code = "price_not_allowed" if field in ("price", "amount_msat", "total") else \
            "unknown_field"
        raise _bad(f"Champ inconnu: {field}", code, field=field)
    product_name = body.get("product")
    if product_name is None:
        raise _bad("Le produit est requis", "missing_product")
    try:
        product = Product(product_name) if isinstance(product_name, str) else None
    except ValueError:
        product = None
    if product is None:
        raise _bad("Produit inconnu (dazbox, daznode ou dazpay)", "invalid_product",
                   products=[p.value for p in Product])
    customer = _customer(body.get("customer"), product)

    plan = None
    if body.get("plan") is not None:
        if product is not Product.DAZNODE:
            raise _bad("La formule ne concerne que DazNode", "unexpected_field", field="plan")
        try:
            plan = Plan(body["plan"]) if isinstance(body["plan"], str) else None
        except ValueError:
            plan = None
        if plan is None:
            raise _bad("Formule inconnue (monthly ou yearly)", "invalid_plan")

    quantity = 1
    if body.get("quantity") is not None:
        if product is not Product.DAZBOX:
            raise _bad("La quantité ne concerne que la DazBox", "unexpected_field",
                       field="quantity")
        quantity = body["quantity"]
        if not _is_int(quantity) or quantity < 1:
            raise _bad("La quantité doit être un entier positif", "invalid_quantity")

    amount = body.get("amount")
    if amount is not None:
        if product is not Product.DAZPAY:
            raise _bad("Le montant est fixé par le catalogue pour ce produit",
                       "price_not_allowed", field="amount")
        if not _is_int(amount) or amount <= 0:
            raise _bad("Le montant doit être un nombre positif", "invalid_amount")
    elif product is Product.DAZPAY:
        raise _bad("Le montant est requis pour DazPay", "missing_amount")

    metadata = parse_metadata(body.get("metadata"))
    return OrderRequest(product=product, customer=customer, plan=plan, quantity=quantity,
                        amount_sat=amount, metadata=metadata)
