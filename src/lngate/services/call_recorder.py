"""Every provider call is logged at once and stored in ``provider_calls`` in batches.

Batching keeps the insert off the create-invoice path: one multi-row insert every
``flush_interval`` seconds instead of one per call. A crash loses at most that interval of
metrics, never an invoice.

Log levels (one ``provider_call`` line per call, see :func:`log_level`): a failed create is a
WARNING; everything else is DEBUG. A successful create is told at INFO by the invoice service
(``invoice_created``), a settled payment by settlement (``invoice_settled``), and a lookup that
finally failed by settlement too (``settle_lookup_failed``); lookups are mostly background work
(the reconciler's polls), which must not fill the INFO log. Skipped attempts (circuit open) are
not calls: the breaker's state changes are logged where they happen.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import structlog

from lngate.resilience.router import CREATE_INVOICE, AttemptRecord, Outcome
from lngate.store import Database
from lngate.store.provider_calls import ProviderCall, store_calls

log = structlog.get_logger("lngate.provider")


def log_level(call: ProviderCall) -> str:
    """``"warning"`` for a create that failed or timed out, else ``"debug"``."""
    failed = call.outcome in (Outcome.FAILURE.value, Outcome.TIMEOUT.value)
    return "warning" if failed and call.operation == CREATE_INVOICE else "debug"


class CallRecorder:
    """Buffers :class:`ProviderCall` rows and writes them in batches."""

    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self._db = db
        self._buffer: list[ProviderCall] = []
        self._max_batch = max_batch
        self.batch_full = asyncio.Event()
        """Set when a batch is full: flush now rather than at the next interval."""

    def record(self, call: ProviderCall) -> None:
        """Log one provider call now (at :func:`log_level`) and queue it for storage."""
        event = log.warning if log_level(call) == "warning" else log.debug
        event(
            "provider_call",
            provider=call.provider,
            operation=call.operation,
            duration_ms=round(call.duration_ms, 2),
            outcome=call.outcome,
            error_code=call.error_type,
            error=call.error_message,
        )
        self._buffer.append(call)
        if len(self._buffer) >= self._max_batch:
            self.batch_full.set()

    def record_attempt(self, attempt: AttemptRecord) -> None:
        """Record one router attempt (its start is on the monotonic clock)."""
        started_at = datetime.now(UTC) - timedelta(seconds=time.monotonic() - attempt.started_at)
        self.record(ProviderCall(
            provider=attempt.provider, operation=attempt.operation, started_at=started_at,
            duration_ms=attempt.duration_s * 1000, outcome=attempt.outcome.value,
            error_type=attempt.error_type, error_message=attempt.error_message,
        ))

    @property
    def pending(self) -> int:
        """Calls recorded but not yet stored."""
        return len(self._buffer)

    async def flush(self) -> int:
        """Store everything buffered; returns how many rows were written (on a failure they
        stay buffered for the next flush)."""
        self.batch_full.clear()
        if not self._buffer:
            return 0
        batch, self._buffer = self._buffer, []
        try:
            await store_calls(self._db, batch)
        except Exception:
            self._buffer[:0] = batch  # keep them for the next try
            raise
        return len(batch)
