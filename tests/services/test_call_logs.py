"""Provider calls in the logs: one INFO line per create, no INFO line for a background lookup,
a WARNING for a failed create, and the details at DEBUG (call recorder + LNbits double)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from lngate.domain import Network
from lngate.errors import NoProviderAvailable
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.router import Router
from lngate.services.call_recorder import CallRecorder
from lngate.services.invoices import InvoiceContext, InvoiceRequest, create_invoice
from lngate.services.payee_keys import PayeeKeys
from lngate.services.events import InvoiceEvents
from lngate.services.settlement import SettleOutcome, Settler
from lngate.store import Database
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.services.conftest import SettableClock

REQUEST = InvoiceRequest(amount_sat=21, description="logs", expiry=600)


@dataclass
class Gateway:
    """The create and settle paths wired as bootstrap wires them, with the call recorder."""

    invoices: InvoiceContext
    router: Router
    recorder: CallRecorder
    db: Database
    clock: SettableClock
    settler: Settler


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
    async with LNbitsDouble() as double:
        provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=1.0),
                                  make_session(1.0))
        recorder = CallRecorder(sqlite_db)
        router = Router([provider], breakers={}, timeouts=AttemptTimeoutPolicy(),
                        clock=time.monotonic, lookup_timeout=1.0,
                        on_attempt=recorder.record_attempt)
        payee_keys = PayeeKeys()
        payee_keys.pin(provider.name, FAKE_NODE_PUBKEY)
        clock = SettableClock()
        invoices = InvoiceContext(db=sqlite_db, router=router, network=Network.BITCOIN,
                                  payee_keys=payee_keys, wall_clock=clock)
        try:
            settler = Settler(db=sqlite_db, router=router, clock=clock, events=InvoiceEvents())
            yield Gateway(invoices, router, recorder, sqlite_db, clock, settler), double
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
