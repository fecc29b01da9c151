"""In-process notifications that an invoice changed state (for Server-Sent Events).

Settlement publishes the payment hash after its transaction commits; a listener wakes and
re-reads the database. Nothing is carried in the notification itself, so a missed or spurious
wake-up is harmless, and listeners also re-read on a timer to see other processes' changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class InvoiceEvents:
    """Wake-ups per payment hash; one :class:`asyncio.Event` per listener."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = {}
        self._observers: list[Callable[[str], object]] = []

    def publish(self, payment_hash: str) -> None:
        """Wake every listener of ``payment_hash``, and tell every observer."""
        for event in self._listeners.get(payment_hash, ()):
            event.set()
        for observer in self._observers:
            observer(payment_hash)

    def observe(self, observer: Callable[[str], object]) -> None:
        """Also call ``observer(payment_hash)`` on every change of any invoice (the operator
        dashboard); it must neither block nor raise."""
        self._observers.append(observer)

    @contextmanager
    def listen(self, payment_hash: str) -> Iterator[asyncio.Event]:
        """An event set on each change of ``payment_hash`` while the block runs (clear it)."""
        event = asyncio.Event()
        self._listeners.setdefault(payment_hash, set()).add(event)
        try:
            yield event
        finally:
            listeners = self._listeners.get(payment_hash)
            if listeners is not None:
                listeners.discard(event)
                if not listeners:
                    del self._listeners[payment_hash]

    @property
    def listening(self) -> int:
        """How many listeners are registered (all hashes)."""
        return sum(len(s) for s in self._listeners.values())
