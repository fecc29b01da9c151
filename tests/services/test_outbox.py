"""The outbox worker against a real SMTP server: delivers once, retries with backoff, gives up,
never double-claims, and one bad message never holds up the others (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from lngate.domain import Product
from lngate.notify.email import Email, SmtpConfig, SmtpEmailSender
from lngate.notify.templates import EmailTemplates
from lngate.providers.testprovider import TestProvider
from lngate.services.orders import Customer
from lngate.services.outbox import OutboxConfig, deliver_due, retry_delay
from lngate.store.outbox import rows_for_order
from tests.peers.lnbits_peer import free_port
from tests.peers.smtp_peer import SMTPPeer
from tests.services.conftest import Kit

SHOP = "shop@daznode.test"
CONFIG = OutboxConfig(max_attempts=3, backoff=30, lease=120, shop_email=SHOP,
                      message_id_domain="daznode.test")


def sender(port: int) -> SmtpEmailSender:
    return SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=port, sender=f"DazNode <{SHOP}>",
                                      tls="none", timeout=2.0))


async def paid_dazbox(kit: Kit) -> str:
    """A settled DazBox order (two emails queued); returns its id."""
    created = await kit.order(Product.DAZBOX)
    assert isinstance(kit.provider, TestProvider)
    await kit.provider.mark_paid(created.invoice.payment_hash)
    await kit.settler.settle(created.invoice.payment_hash, source="test")
    return created.order.id


async def deliver(kit: Kit, port: int, config: OutboxConfig = CONFIG):  # type: ignore[no-untyped-def]
    return await deliver_due(db=kit.db, sender=sender(port), templates=EmailTemplates(),
                             clock=kit.clock, config=config)


async def rows(kit: Kit, order_id: str) -> dict[str, dict]:
    async with kit.db.connect() as conn:
        return {r["kind"]: r for r in await rows_for_order(conn, order_id)}


async def test_paid_order_emails_arrive_once(kit: Kit, smtp: SMTPPeer) -> None:
    """The customer's confirmation and the shop's notification are sent once, then marked sent."""
    order_id = await paid_dazbox(kit)
    report = await deliver(kit, smtp.port)
    assert report.outcomes == {"sent": 2}
    assert {m.rcpt_tos for m in smtp.received} == {("alice@example.com",), (SHOP,)}
    customer = smtp.to("alice@example.com")[0]
    assert customer.message["Message-ID"] == f"<{order_id}.dazbox_confirmation@daznode.test>"
    assert "12 rue des Lilas" in customer.body("plain") and order_id in customer.subject
    assert (await deliver(kit, smtp.port)).handled == 0
    assert len(smtp.received) == 2
    assert {r["status"] for r in (await rows(kit, order_id)).values()} == {"sent"}


async def test_smtp_down_is_retried_with_backoff_then_delivered_once(kit: Kit) -> None:
    """While the server is down rows wait 30 s, then 60 s; once it is up they are sent once."""
    down = SMTPPeer(port=free_port())  # not started: connection refused
    order_id = await paid_dazbox(kit)
    assert (await deliver(kit, down.port)).outcomes == {"retry": 2}
    state = await rows(kit, order_id)
    assert {r["attempts"] for r in state.values()} == {1}
    assert {r["next_attempt_at"] for r in state.values()} == {kit.clock.now + timedelta(seconds=30)}
    assert "smtp:" in state["dazbox_confirmation"]["last_error"]
    kit.clock.advance(29)
    assert (await deliver(kit, down.port)).handled == 0  # not due yet
    kit.clock.advance(1)
    assert (await deliver(kit, down.port)).outcomes == {"retry": 2}
    assert {r["next_attempt_at"] for r in (await rows(kit, order_id)).values()} == \
        {kit.clock.now + timedelta(seconds=60)}
    down.start()
    try:
        kit.clock.advance(60)
        assert (await deliver(kit, down.port)).outcomes == {"sent": 2}
        assert (await deliver(kit, down.port)).handled == 0
        assert len(down.received) == 2
    finally:
        down.stop()


async def test_attempts_run_out_then_the_row_fails(kit: Kit) -> None:
    """After max_attempts failures a row is failed and no longer tried."""
    order_id = await paid_dazbox(kit)
    port = free_port()
    for _ in range(CONFIG.max_attempts):
        await deliver(kit, port)
        kit.clock.advance(3600)
    state = await rows(kit, order_id)
    assert {r["status"] for r in state.values()} == {"failed"}
    assert {r["attempts"] for r in state.values()} == {3}
    assert (await deliver(kit, port)).handled == 0


async def test_permanent_refusal_is_not_retried(kit: Kit, smtp: SMTPPeer) -> None:
    """A 5xx answer fails the row at once; the other row is still sent."""
    order_id = await paid_dazbox(kit)
    smtp.reject("550 5.1.1 no such user")
    report = await deliver(kit, smtp.port)
    assert report.outcomes == {"failed": 1, "sent": 1}
    assert sorted(r["status"] for r in (await rows(kit, order_id)).values()) == ["failed", "sent"]


async def test_without_shop_email_the_shop_notification_is_skipped(kit: Kit,
                                                                   smtp: SMTPPeer) -> None:
    """With no SHOP_EMAIL the shop's copy is skipped (recorded), the customer's still sent."""
    order_id = await paid_dazbox(kit)
    config = OutboxConfig(shop_email=None)
    assert (await deliver(kit, smtp.port, config)).outcomes == {"sent": 1, "skipped": 1}
    state = await rows(kit, order_id)
    assert state["dazbox_shop_notification"]["status"] == "skipped"
    assert state["dazbox_shop_notification"]["last_error"] == "SHOP_EMAIL is not set"


async def test_a_claimed_row_waits_for_its_lease(kit: Kit, smtp: SMTPPeer) -> None:
    """A row claimed by a worker that died mid-send is sent again only after the lease."""

    class Dies:
        name = "dies"

        async def send(self, email: Email) -> None:
            raise asyncio.CancelledError  # the process stops mid-send

    order_id = await paid_dazbox(kit)
    try:
        await deliver_due(db=kit.db, sender=Dies(), templates=EmailTemplates(),
                          clock=kit.clock, config=CONFIG)
    except asyncio.CancelledError:
        pass
    kit.clock.advance(119)
    assert (await deliver(kit, smtp.port)).handled == 0  # both rows were claimed in one batch
    kit.clock.advance(1)
    assert (await deliver(kit, smtp.port)).outcomes == {"sent": 2}
    assert len(smtp.received) == 2
    assert {r["status"] for r in (await rows(kit, order_id)).values()} == {"sent"}


async def test_concurrent_workers_never_send_a_row_twice(kit: Kit, smtp: SMTPPeer) -> None:
    """Four workers delivering at once send each of 10 orders' emails exactly once."""
    for _ in range(10):
        await paid_dazbox(kit)

    class Slow(SmtpEmailSender):
        async def send(self, email: Email) -> None:
            await asyncio.sleep(0.01)
            await super().send(email)

    slow = Slow(SmtpConfig(host="127.0.0.1", port=smtp.port, sender=SHOP, tls="none"))
    config = OutboxConfig(batch_size=3, shop_email=SHOP)
    reports = await asyncio.gather(*(
        deliver_due(db=kit.db, sender=slow, templates=EmailTemplates(), clock=kit.clock,
                    config=config) for _ in range(4)))
    assert sum(r.outcomes["sent"] for r in reports) == 20
    ids = [m.message["Message-ID"] for m in smtp.received]
    assert len(ids) == 20 and len(set(ids)) == 20


def test_backoff_doubles_and_is_capped() -> None:
    """Retry delays are 30, 60, 120 ... seconds, never more than the cap."""
    config = OutboxConfig(backoff=30, max_backoff=3600)
    assert [retry_delay(n, config) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20, config) == 3600


# -- one bad message never stops the others ----------------------------------------------------

POISONS = {
    # an address the email package reads as "attacker@evil.com," (a second recipient)
    "encoded word in the email": {"email": "=?utf-8?q?attacker=40evil=2Ecom=2C?=@example.com"},
    "encoded word hiding a line break": {"email": "=?utf-8?q?a=0D=0ABcc:x@evil.com?=@example.com"},
    "DEL in the email": {"email": "ali\x7fce@example.com"},
    # orders taken before addresses were validated: PostgreSQL cannot store these as text
    "NUL in the email": {"email": "ali\x00ce@example.com"},
    "lone surrogate in the email": {"email": "ali\udc80ce@example.com"},
    "lone surrogate in the name": {"name": "Alice \ud800"},
}


async def paid_dazpay(kit: Kit, **customer: str) -> str:
    """A settled DazPay order (one receipt queued) for a customer with these fields."""
    values = {"email": "alice@example.com", "name": "Alice", **customer}
    created = await kit.order(Product.DAZPAY, customer=Customer(**values))
    assert isinstance(kit.provider, TestProvider)
    await kit.provider.mark_paid(created.invoice.payment_hash)
    await kit.settler.settle(created.invoice.payment_hash, source="test")
    return created.order.id


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
async def test_a_message_that_cannot_be_built_fails_alone(kit: Kit, smtp: SMTPPeer,
                                                          poison: str) -> None:
    """A receipt whose customer fields cannot make a safe email is settled like any other, then
    failed at once with its reason, and the eight good receipts around it are all sent in the
    same pass."""
    good = [await paid_dazpay(kit, email=f"customer{i}@example.com") for i in range(4)]
    bad = await paid_dazpay(kit, **POISONS[poison])
    good += [await paid_dazpay(kit, email=f"customer{i}@example.com") for i in range(4, 8)]
    config = OutboxConfig(max_attempts=8, batch_size=3, shop_email=SHOP)
    report = await deliver(kit, smtp.port, config)
    assert report.outcomes == {"sent": 8, "failed": 1}
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == \
        sorted(f"customer{i}@example.com" for i in range(8))
    assert all(len(m.rcpt_tos) == 1 for m in smtp.received)
    [row] = (await rows(kit, bad)).values()
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "recipient" in row["last_error"] or "unsendable" in row["last_error"]
    assert {r["status"] for o in good for r in (await rows(kit, o)).values()} == {"sent"}
    kit.clock.advance(7 * 86400)
    assert (await deliver(kit, smtp.port, config)).handled == 0


async def test_a_sender_crash_is_retried_within_max_attempts(kit: Kit, smtp: SMTPPeer) -> None:
    """A sender raising something other than EmailError costs that row one attempt (retried
    with backoff, failed after max_attempts); the other rows are still sent."""

    smtp_sender = SmtpEmailSender(SmtpConfig(host="127.0.0.1", port=smtp.port, sender=SHOP,
                                             tls="none"))

    class BrokenForBob:
        name = "broken"

        async def send(self, email: Email) -> None:
            if email.to == "bob@example.com":
                raise RuntimeError("sender bug")
            await smtp_sender.send(email)

    broken = BrokenForBob()
    bob = await paid_dazpay(kit, email="bob@example.com")
    alice = await paid_dazpay(kit)
    for _ in range(CONFIG.max_attempts + 2):
        await deliver_due(db=kit.db, sender=broken, templates=EmailTemplates(), clock=kit.clock,
                          config=CONFIG)
        kit.clock.advance(3600)
    [bob_row] = (await rows(kit, bob)).values()
    assert bob_row["status"] == "failed" and bob_row["attempts"] == CONFIG.max_attempts
    assert "RuntimeError: sender bug" in bob_row["last_error"]
    assert [r["status"] for r in (await rows(kit, alice)).values()] == ["sent"]
    assert [m.rcpt_tos for m in smtp.received] == [("alice@example.com",)]


async def test_attempts_never_exceed_the_maximum(kit: Kit, smtp: SMTPPeer) -> None:
    """A row whose every attempt dies mid-send is failed once its attempts are used up,
    not claimed again: attempts stop at max_attempts."""

    class Dies:
        name = "dies"

        async def send(self, email: Email) -> None:
            raise asyncio.CancelledError

    order_id = await paid_dazpay(kit)
    for _ in range(CONFIG.max_attempts):
        with pytest.raises(asyncio.CancelledError):
            await deliver_due(db=kit.db, sender=Dies(), templates=EmailTemplates(),
                              clock=kit.clock, config=CONFIG)
        kit.clock.advance(CONFIG.lease)
    report = await deliver(kit, smtp.port)
    assert report.outcomes == {"failed": 1}
    [row] = (await rows(kit, order_id)).values()
    assert row["status"] == "failed" and row["attempts"] == CONFIG.max_attempts
    assert row["last_error"] == "3 attempts used up; the last one never finished"
    assert smtp.received == []


class CountingDb:
    """The kit's database, counting the transactions opened; ``fail_at``: the number of the
    one that fails (a database hiccup)."""

    def __init__(self, db: Any, fail_at: int | None = None) -> None:
        self._db, self._fail_at, self.opened = db, fail_at, 0

    def connect(self) -> Any:
        return self._db.connect()

    def transaction(self) -> Any:
        self.opened += 1
        if self.opened == self._fail_at:
            raise ConnectionError("database hiccup")
        return self._db.transaction()


async def test_sent_emails_whose_outcome_cannot_be_recorded_wait_for_their_lease(
    kit: Kit, smtp: SMTPPeer
) -> None:
    """When recording a pass's sent emails fails (a database hiccup), those rows stay pending
    and are delivered again once their lease is over: sent at least once, never lost."""
    first = await paid_dazpay(kit, email="first@example.com")
    second = await paid_dazpay(kit, email="second@example.com")
    report = await deliver_due(db=CountingDb(kit.db, fail_at=2), sender=sender(smtp.port),  # type: ignore[arg-type]
                               templates=EmailTemplates(), clock=kit.clock, config=CONFIG)
    assert report.outcomes == {"crashed": 2}
    for order_id in (first, second):
        assert [r["status"] for r in (await rows(kit, order_id)).values()] == ["pending"]
    kit.clock.advance(CONFIG.lease)
    assert (await deliver(kit, smtp.port)).outcomes == {"sent": 2}
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == \
        ["first@example.com", "first@example.com", "second@example.com", "second@example.com"]


async def test_a_pass_sends_over_one_connection_and_records_in_one_transaction(
    kit: Kit, smtp: SMTPPeer
) -> None:
    """Three receipts cost one SMTP connection and two transactions: the claim, and one update
    marking all three sent."""
    orders = [await paid_dazpay(kit, email=f"c{i}@example.com") for i in range(3)]
    db, greeted = CountingDb(kit.db), smtp.greetings
    report = await deliver_due(db=db, sender=sender(smtp.port), templates=EmailTemplates(),  # type: ignore[arg-type]
                               clock=kit.clock, config=CONFIG)
    assert report.outcomes == {"sent": 3} and db.opened == 2
    assert smtp.greetings - greeted == 1
    for order_id in orders:
        [row] = (await rows(kit, order_id)).values()
        assert row["status"] == "sent" and row["sent_at"] is not None


async def test_a_slow_pass_records_what_it_sent_well_within_the_lease(
    kit: Kit, smtp: SMTPPeer
) -> None:
    """When sending takes a quarter of the lease, each sent email is recorded at once, so no
    row's lease can run out (and another worker send it again) while it waits to be recorded."""
    await paid_dazpay(kit, email="c1@example.com")
    await paid_dazpay(kit, email="c2@example.com")
    smtp_sender = sender(smtp.port)

    class SlowSender:
        name = "slow"

        async def send(self, email: Email) -> None:
            await smtp_sender.send(email)
            kit.clock.advance(CONFIG.lease / 4)

    db = CountingDb(kit.db)
    report = await deliver_due(db=db, sender=SlowSender(), templates=EmailTemplates(),  # type: ignore[arg-type]
                               clock=kit.clock, config=CONFIG)
    assert report.outcomes == {"sent": 2} and db.opened == 3
