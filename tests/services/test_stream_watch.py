"""The event streams' shared re-read: one statement per chunk of watched invoices, waking only
the streams whose invoice is no longer pending, and nothing kept once the streams end."""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from lngate.domain import InvoiceState
from lngate.services import stream_watch
from lngate.services.events import InvoiceEvents
from lngate.services.stream_watch import StreamWatch
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, insert_invoices

CREATED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def record(n: int, state: InvoiceState) -> InvoiceRecord:
    payment_hash = hashlib.sha256(f"watched-{n}".encode()).hexdigest()
    return InvoiceRecord(
        payment_hash=payment_hash, provider="lnbits", provider_ref=payment_hash,
        bolt11="lnbc1watched", amount_msat=1000, description="watched", metadata=None,
        state=state, is_test=False, created_at=CREATED,
        expires_at=CREATED + timedelta(hours=1),
        paid_at=CREATED if state is InvoiceState.PAID else None)


def count_statements(db: Database) -> list[str]:
    from sqlalchemy import event

    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", before)  # reads go there
    return statements


async def test_one_read_wakes_the_streams_of_changed_invoices_only(
        sqlite_db: Database, monkeypatch: Any) -> None:
    monkeypatch.setattr(stream_watch, "CHUNK", 4)
    records = [record(n, InvoiceState.PENDING if n % 3 else InvoiceState.PAID)
               for n in range(10)]
    async with sqlite_db.transaction() as conn:
        await insert_invoices(conn, records)
    events = InvoiceEvents()
    watch = StreamWatch(sqlite_db, events)
    statements = count_statements(sqlite_db)
    unknown = "f" * 64
    with ExitStack() as streams:
        changed = {}
        for payment_hash in [r.payment_hash for r in records] + [unknown]:
            changed[payment_hash] = streams.enter_context(events.listen(payment_hash))
            streams.enter_context(watch.watch(payment_hash))
        streams.enter_context(watch.watch(records[0].payment_hash))  # a second stream
        assert watch.watched == 11
        assert await watch.recheck() == 4  # records 0, 3, 6 and 9 are paid
        assert [h for h, event in changed.items() if event.is_set()] == \
            [r.payment_hash for r in records if r.state is InvoiceState.PAID]
        assert len([s for s in statements if "FROM invoices" in s]) == 3  # 11 hashes, 4 a read
    assert watch.watched == 0


async def test_nothing_is_kept_once_the_streams_end(sqlite_db: Database) -> None:
    watch = StreamWatch(sqlite_db, InvoiceEvents())
    for n in range(1_000):
        payment_hash = f"{n:064x}"
        with watch.watch(payment_hash), watch.watch(payment_hash):
            assert watch.watched == 1
        assert watch.watched == 0
    assert await watch.recheck() == 0
