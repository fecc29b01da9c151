"""The JSON of the back office's answers: orders, their details, subscriptions, audit entries.

Times are ISO-8601 UTC with ``Z``, amounts in sats. Unlike the public ``GET /api/orders/{id}``,
these answers carry the customer's details: they are for the shop's operators only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lngate.domain import OrderAttention, msat_to_sat
from lngate.services.backoffice import OrderDetail
from lngate.store.audit import AuditEntry
from lngate.store.backoffice import OrderRow, ShipmentInfo, SubscriptionRow
from lngate.store.invoices import InvoiceRecord


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with ``Z``, or ``None``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def shipment_body(shipment: ShipmentInfo | None) -> dict[str, Any] | None:
    """A shipment, or ``None``."""
    if shipment is None:
        return None
    return {"id": shipment.id, "status": shipment.status.value, "quantity": shipment.quantity,
            "address": shipment.address, "recipientName": shipment.recipient_name,
            "createdAt": iso(shipment.created_at), "shippedAt": iso(shipment.shipped_at),
            "trackingNumber": shipment.tracking_number, "carrier": shipment.carrier}


def order_summary(row: OrderRow) -> dict[str, Any]:
    """An order in a list."""
    order = row.order
    return {
        "id": order.id,
        "status": order.status.value,
        "attention": row.attention.value if row.attention else None,
        "product": order.product.value,
        "plan": order.plan.value if order.plan else None,
        "quantity": order.quantity,
        "amount": msat_to_sat(order.amount_msat),
        "customer": {"email": order.customer.get("email"), "name": order.customer.get("name")},
        "paymentHash": order.payment_hash,
        "createdAt": iso(order.created_at),
        "paidAt": iso(order.paid_at),
        "paidLate": order.paid_late,
        "cancelledAt": iso(row.cancelled_at),
        "shipment": (None if row.shipment is None else {
            "status": row.shipment.status.value,
            "trackingNumber": row.shipment.tracking_number,
            "carrier": row.shipment.carrier,
            "shippedAt": iso(row.shipment.shipped_at)}),
    }


def invoice_body(invoice: InvoiceRecord) -> dict[str, Any]:
    """An order's invoice."""
    return {"paymentHash": invoice.payment_hash, "provider": invoice.provider,
            "state": invoice.state.value, "amount": msat_to_sat(invoice.amount_msat),
            "description": invoice.description, "isTest": invoice.is_test,
            "createdAt": iso(invoice.created_at), "expiresAt": iso(invoice.expires_at),
            "paidAt": iso(invoice.paid_at), "paidLate": invoice.paid_late,
            "bolt11": invoice.bolt11}


def subscription_body(row: SubscriptionRow, now: datetime) -> dict[str, Any]:
    """A DazNode subscription; ``status`` is ``active`` while its period runs."""
    return {"id": row.id, "status": "active" if row.period_end > now else "expired",
            "email": row.email, "pubkey": row.pubkey, "plan": row.plan,
            "periodStart": iso(row.period_start), "periodEnd": iso(row.period_end),
            "lastOrderId": row.last_order_id, "createdAt": iso(row.created_at),
            "updatedAt": iso(row.updated_at)}


def email_body(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row: an email sent, pending or given up on."""
    return {"kind": row["kind"], "recipient": row["recipient"],
            "toShop": row["recipient"] is None, "status": row["status"],
            "attempts": row["attempts"], "lastError": row["last_error"],
            "createdAt": iso(row["created_at"]), "sentAt": iso(row["sent_at"]),
            "nextAttemptAt": iso(row["next_attempt_at"]) if row["status"] == "pending" else None}


def audit_body(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry."""
    return {"id": entry.id, "at": iso(entry.created_at), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "details": entry.details}


def order_detail_body(detail: OrderDetail, now: datetime) -> dict[str, Any]:
    """An order in full: the order, its invoice(s), payment, fulfilment, emails, audit trail."""
    row, order, invoice = detail.row, detail.row.order, detail.invoice
    body = order_summary(row)
    body.update(customer=order.customer, metadata=order.metadata, fulfilment=order.fulfilment)
    if row.shipment is not None:
        fulfilment: dict[str, Any] | None = {"type": "shipment",
                                             "shipment": shipment_body(row.shipment)}
    elif detail.subscription is not None:
        fulfilment = {"type": "subscription",
                      "subscription": subscription_body(detail.subscription, now)}
    elif order.fulfilment and order.fulfilment.get("receipt"):
        fulfilment = {"type": "receipt"}
    else:
        fulfilment = None
    return {
        "order": body,
        "invoices": [invoice_body(invoice)] if invoice else [],
        "payment": {
            "paid": order.paid_at is not None,
            "paidAt": iso(order.paid_at),
            "paidLate": order.paid_late,
            "provider": invoice.provider if invoice else None,
            "invoiceState": invoice.state.value if invoice else None,
            "refundDue": row.attention is OrderAttention.REFUND_DUE,
        },
        "fulfilment": fulfilment,
        "emails": [email_body(email) for email in detail.emails],
        "audit": [audit_body(entry) for entry in detail.audit],
    }
