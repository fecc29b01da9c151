"""Logs: provider calls are logged with their fields, and no secret ever reaches a log line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from lngate.bootstrap import secret_values
from lngate.logconfig import configure_logging
from tests.doubles.lnbits_double import LNbitsDouble, RecordedRequest, Reply
from tests.web.conftest import make_settings, running_gateway

NWC_SECRET = "9" * 64
NWC_URL = ("nostr+walletconnect://79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
           "?relay=ws%3A%2F%2F127.0.0.1%3A9&secret="
           + NWC_SECRET)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The test points logs at pytest's capture; later tests get the defaults back."""
    yield
    structlog.reset_defaults()
    logging.basicConfig(level=logging.WARNING, stream=sys.__stderr__, force=True)


def echo_key(request: RecordedRequest) -> Reply:
    """A hostile upstream that repeats our API key back in its error."""
    return Reply(403, json={"detail": f"key {request.headers.get('X-Api-Key')} is not allowed"})


async def test_no_secret_reaches_a_log_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """With verbose JSON logs and an upstream echoing our key, no secret is printed or answered."""
    async with LNbitsDouble() as double:
        double.always("create", echo_key)
        settings = make_settings(
            tmp_path, lnbits_endpoint=double.url, lnbits_invoice_key=double.invoice_key,
            lnbits_admin_key="admin-key-secret-123", lnbits_webhook_secret="webhook-secret-456",
            admin_token="admin-token-secret-789", nwc_url=NWC_URL, debug="lightning:*",
            log_format="json", lightning_test_mode=True,
        )
        secrets = [double.invoice_key, "admin-key-secret-123", "webhook-secret-456",
                   "admin-token-secret-789", NWC_SECRET]
        assert set(secrets) <= set(secret_values(settings))
        configure_logging(verbose=True, fmt="json", secrets=secret_values(settings))
        async with running_gateway(settings) as http:
            response = await http.post("/api/create-invoice",
                                       json={"amount": 5, "description": "secret test"})
            await http.app.state.gateway.recorder.flush()  # type: ignore[attr-defined]
    output = capsys.readouterr()
    logged = output.out + output.err
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("event") == "provider_call"]
    assert any(c["provider"] == "lnbits" and c["outcome"] == "failure"
               and c["error_code"] == "provider_auth_failed" for c in calls)
    assert all({"timestamp", "provider", "operation", "duration_ms", "outcome"} <= set(c)
               for c in calls)
    for secret in secrets:
        assert secret not in logged, "a secret reached the logs"
        assert secret not in response.text, "a secret reached the API answer"


async def test_verbose_logs_are_lngate_only_no_sql_and_no_customer_data(
    tmp_path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    """DEBUG=lightning:* makes lngate verbose; SQL, customer emails and tokens stay out of the logs."""
    from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY
    from tests.web.payments import (
        WEBHOOK_SECRET,
        lnbits_body,
        order_body,
        post_webhook,
        webhook_target,
    )

    async with LNbitsDouble() as double:
        settings = make_settings(
            tmp_path, lnbits_endpoint=double.url, lnbits_invoice_key=double.invoice_key,
            lnbits_node_pubkey=FAKE_NODE_PUBKEY, lnbits_webhook_secret=WEBHOOK_SECRET,
            lightning_test_mode=False, debug="lightning:*", log_format="json",
            outbox_poll_interval_seconds=0.05,
        )
        assert settings.verbose
        configure_logging(verbose=True, fmt="json", secrets=secret_values(settings))
        assert logging.getLogger("lngate.resilience.router").isEnabledFor(logging.DEBUG)
        async with running_gateway(settings) as http:
            created = await http.post("/api/create-invoice",
                                      json={"amount": 5, "description": "verbose test"})
            assert created.status_code == 200, created.text
            order = await http.post("/api/orders", json=order_body("dazbox"))
            assert order.status_code == 201, order.text
            payment_hash = order.json()["invoice"]["payment_hash"]
            _, params = webhook_target(double.requests_to("create")[-1].json["webhook"])
            double.mark_paid(payment_hash)
            paid = await post_webhook(http, lnbits_body(double.invoices[payment_hash]),
                                      params=params)
            assert paid.status_code == 200, paid.text
            await http.app.state.gateway.recorder.flush()  # type: ignore[attr-defined]
    output = capsys.readouterr()
    logged = output.out + output.err
    assert "provider_call" in logged  # lngate's own logs are there
    for forbidden in ("SELECT ", "INSERT INTO", "UPDATE ", "BEGIN", "alice@example.com",
                      params["token"], params["nonce"]):
        assert forbidden not in logged, f"{forbidden!r} reached the logs"


class CountingStream:
    """A stream that keeps each write apart, as an unbuffered one hands each to the system."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_line_is_written_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each log line goes out with its newline in one write: with ``PYTHONUNBUFFERED=1`` every
    write is a system call, and the workers of ``serve --workers N`` share the stream, so a line
    written in two parts (print's way) let another worker's line in between."""
    stream = CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(verbose=True, fmt="json")
    structlog.get_logger("lngate.test").info("first", n=1)
    structlog.get_logger("lngate.test").warning("second", n=2)
    assert [json.loads(w)["event"] for w in stream.writes] == ["first", "second"]
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in stream.writes)
