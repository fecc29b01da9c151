"""Times reported by providers, read defensively.

A provider's payment time decides whether a payment was late, so a value that cannot be a
payment time (unparseable, out of range, before the invoice was made, before Lightning existed)
is dropped: the caller gets ``None`` and falls back to its own clock. Each drop is logged at
DEBUG with the provider and field; nothing here raises.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

log = structlog.get_logger(__name__)

EARLIEST = datetime(2018, 1, 1, tzinfo=UTC)
"""No Lightning payment happened before this; an earlier time (e.g. 0) is a placeholder."""


def from_unix(
    seconds: object, *, provider: str, field: str, not_before: datetime | None = None
) -> datetime | None:
    """Unix seconds (an int) as an aware UTC datetime, or ``None`` when not a plausible time."""
    when: datetime | None = None
    reason: str | None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        reason = "not an integer of seconds"
    else:
        try:
            when = datetime.fromtimestamp(seconds, UTC)
            reason = _implausible(when, not_before)
        except (OverflowError, OSError, ValueError):
            reason = "out of range"
    return _accepted(when, reason, seconds, provider=provider, field=field)


def from_iso(
    text: object, *, provider: str, field: str, not_before: datetime | None = None
) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime, or ``None`` when not a plausible time.

    A time without an offset is taken as UTC (LNbits writes some of its times so, all in UTC).
    """
    when: datetime | None = None
    reason: str | None
    if not isinstance(text, str):
        reason = "not a string"
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            reason = "not an ISO-8601 time"
        else:
            when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            reason = _implausible(when, not_before)
    return _accepted(when, reason, text, provider=provider, field=field)


def _implausible(when: datetime, not_before: datetime | None) -> str | None:
    if when < EARLIEST:
        return f"before {EARLIEST.date().isoformat()}"
    if not_before is not None and when < not_before:
        return "before the invoice was created"
    return None


def _accepted(
    when: datetime | None, reason: str | None, raw: object, *, provider: str, field: str
) -> datetime | None:
    if reason is None:
        return when
    log.debug("provider_time_unusable", provider=provider, field=field, value=repr(raw)[:64],
              reason=reason)
    return None
