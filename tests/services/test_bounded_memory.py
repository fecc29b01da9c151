"""What a serving process keeps per invoice stays bounded however many invoices it serves:
the remembered "still pending" answers and the event streams' listeners."""

from __future__ import annotations

from typing import Any

import pytest

from lngate.services import settlement
from lngate.services.events import InvoiceEvents
from lngate.services.settlement import Settler


def settler(now: list[float], *, reuse: float = 2.0) -> Settler:
    """A Settler whose remembered checks alone are exercised (no database, no provider)."""
    unused: Any = None
    return Settler(db=unused, router=unused, clock=unused, events=InvoiceEvents(),
                   check_reuse_seconds=reuse, monotonic=lambda: now[0])


def test_remembered_pending_answers_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settlement, "MAX_REMEMBERED_CHECKS", 50)
    now = [100.0]
    s = settler(now)
    for n in range(10_000):
        s._remember_pending(f"{n:064x}")
    assert len(s._pending_seen) == 50
    assert next(iter(s._pending_seen)) == f"{10_000 - 50:064x}"  # the oldest went first


def test_remembered_pending_answers_expire_with_their_reuse_period() -> None:
    now = [100.0]
    s = settler(now, reuse=2.0)
    for n in range(1_000):
        s._remember_pending(f"{n:064x}")
    now[0] += 2.5
    s._remember_pending("f" * 64)
    assert list(s._pending_seen) == ["f" * 64]


def test_event_listeners_are_dropped_when_their_streams_end() -> None:
    events = InvoiceEvents()
    for n in range(1_000):
        with events.listen(f"{n:064x}"), events.listen(f"{n:064x}"):
            assert events.listening == 2
    assert events.listening == 0
    assert events._listeners == {}
