"""Where a paid-invoice stream keeps its place, so a restart misses no payment.

Core Lightning numbers paid invoices (``pay_index``) and LND numbers settlements
(``settle_index``); both can replay everything after a number. A provider with a paid stream
takes a :class:`CursorStore`, loads the number when its stream starts and saves the number of
each payment once the consumer has handled it (when the consumer asks for the next one). So a
restart resumes after the last payment handled: a payment is delivered again only if the
process stopped while handling it, and never skipped. A store that fails to save is logged and
skipped; it costs a repeated doorbell after a restart, never a lost one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CursorStore(Protocol):
    """The last stream position a provider's consumer handled; one store per provider."""

    async def load(self) -> int | None:
        """The saved position, ``None`` when nothing was ever saved."""
        ...

    async def save(self, cursor: int) -> None:
        """Remember ``cursor`` (it only grows)."""
        ...


class MemoryCursorStore:
    """A :class:`CursorStore` in memory: for tests and for a gateway that keeps no state."""

    def __init__(self, cursor: int | None = None) -> None:
        self.cursor = cursor

    async def load(self) -> int | None:
        """The position last saved (or given), ``None`` when none."""
        return self.cursor

    async def save(self, cursor: int) -> None:
        """Remember ``cursor``."""
        self.cursor = cursor
