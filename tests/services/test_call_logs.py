"""Provider calls in the logs: one INFO line per create, no INFO line for a background lookup,
a WARNING for a failed create, and the details at DEBUG (call recorder + LNbits double)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from lngate.bootstrap import Gateway, Overrides, build_gateway
from lngate.errors import NoProviderAvailable
from lngate.notify.email import FolderEmailSender
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.settlement import SettleOutcome
from lngate.store import Database
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.services.conftest import SettableClock, kit_settings

REQUEST = InvoiceRequest(amount_sat=21, description="logs", expiry=600)


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event, DEBUG included, as captured dicts."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.reset_defaults()


@pytest.fixture
async def gateway(sqlite_db: Database) -> AsyncIterator[tuple[Gateway, LNbitsDouble]]:
    """The gateway bootstrap builds around LNbits (the double), with its call recorder."""
    async with LNbitsDouble() as double:
        provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=1.0),
                                  make_session(1.0))
        built = await build_gateway(kit_settings(sqlite_db), migrate=False, overrides=Overrides(
            db=sqlite_db, providers=[provider], clock=SettableClock(),
            email_sender=FolderEmailSender(Path("/nonexistent-mail"), sender="t@localhost")))
        built.payee_keys.pin(provider.name, FAKE_NODE_PUBKEY)
        try:
            yield built, double
        finally:
            await provider.aclose()


def above_debug(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["log_level"], e["event"]) for e in logs if e["log_level"] != "debug"]


async def test_a_create_is_one_info_line(
    gateway: tuple[Gateway, LNbitsDouble], logs: list[dict[str, Any]]
) -> None:
    """Creating an invoice logs one INFO line; the provider call and its HTTP exchange are
    DEBUG lines."""
    gw, _ = gateway
    issued = await create_invoice(REQUEST, gw.invoices)

    assert above_debug(logs) == [("info", "invoice_created")]
    [call] = [e for e in logs if e["event"] == "provider_call"]
    assert call["log_level"] == "debug" and call["operation"] == "create_invoice"
    assert call["outcome"] == "success" and call["provider"] == "lnbits"
    exchange = [e["event"] for e in logs if e["event"].startswith("lnbits.")]
    assert exchange == ["lnbits.request", "lnbits.answer"]
    [created] = [e for e in logs if e["event"] == "invoice_created"]
    assert created["payment_hash"] == issued.invoice.payment_hash
    assert gw.recorder.pending == 1  # still stored for the metrics


async def test_a_background_lookup_logs_nothing_at_info(
    gateway: tuple[Gateway, LNbitsDouble], logs: list[dict[str, Any]]
) -> None:
    """The reconciler's lookup of a pending invoice logs no INFO line, only DEBUG ones."""
    gw, _ = gateway
    issued = await create_invoice(REQUEST, gw.invoices)
    logs.clear()

    outcome = await gw.settler.settle(issued.invoice.payment_hash, source="reconciler")

    assert outcome is SettleOutcome.NOT_PAID
    assert above_debug(logs) == []
    [call] = [e for e in logs if e["event"] == "provider_call"]
    assert call["operation"] == "invoice_status" and call["log_level"] == "debug"


async def test_failed_background_lookups_are_not_info_lines(
    gateway: tuple[Gateway, LNbitsDouble], logs: list[dict[str, Any]]
) -> None:
    """A lookup that fails logs no INFO line: its calls are DEBUG (settlement reports it)."""
    gw, double = gateway
    issued = await create_invoice(REQUEST, gw.invoices)
    double.always("status", Reply(503, json={"detail": "down"}))
    logs.clear()

    outcome = await gw.settler.settle(issued.invoice.payment_hash, source="reconciler")

    assert outcome is SettleOutcome.PROVIDER_UNAVAILABLE
    calls = [e for e in logs if e["event"] == "provider_call"]
    assert calls and {e["log_level"] for e in calls} == {"debug"}
    assert all(level != "info" for level, _ in above_debug(logs))


async def test_a_failed_create_is_one_warning_per_call(
    gateway: tuple[Gateway, LNbitsDouble], logs: list[dict[str, Any]]
) -> None:
    """A create the provider refuses is one WARNING line for that call, with its error code."""
    gw, double = gateway
    double.always("create", Reply(403, json={"detail": "Invoice (or Admin) key required."}))

    with pytest.raises(NoProviderAvailable):
        await create_invoice(REQUEST, gw.invoices)

    assert above_debug(logs) == [("warning", "provider_call")]
    [call] = [e for e in logs if e["event"] == "provider_call"]
    assert call["outcome"] == "failure" and call["error_code"] == "provider_auth_failed"
