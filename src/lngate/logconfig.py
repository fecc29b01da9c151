"""structlog setup: JSON lines in production, readable output in a terminal.

Secrets never reach a log line: settings hold them as ``SecretStr`` and providers keep keys
out of reprs and messages; as a last guard, :func:`redact_secrets` replaces any configured
secret value that still shows up in an event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from lngate.logformat import console_renderer, logs_as_json

OWN_LOGGER = "lngate"
"""The standard-library logger tree of lngate's own modules (``lngate.*``)."""


def configure_logging(*, verbose: bool, fmt: str = "auto", secrets: Iterable[str] = (),
                      final: bool = False) -> None:
    """Configure structlog and the standard library's loggers once, at start-up.

    ``fmt`` is ``json``, ``console`` or ``auto`` (console when stderr is a terminal).
    ``verbose`` (``DEBUG=lightning:*``) turns on lngate's own debug logs only: the root logger
    stays at WARNING, because at DEBUG SQLAlchemy, aiosqlite, asyncio, aiohttp and nostr-sdk
    log every SQL statement with its values (customers' emails, webhook tokens) and more.

    ``final``: nothing will configure logging again in this process (a serving worker), so each
    logger is built once, on first use, instead of at every call: a filtered-out debug call
    otherwise still rebuilt its logger.
    """
    level = logging.DEBUG if verbose else logging.INFO
    as_json = logs_as_json(fmt)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets([s for s in secrets if s and len(s) >= 6]),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer() if as_json else console_renderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: LossyLineLogger(sys.stderr),
        cache_logger_on_first_use=final,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger(OWN_LOGGER).setLevel(level)


class LossyLineLogger(structlog.WriteLogger):
    """Writes each line whole, and drops a line it cannot write instead of raising into the
    caller.

    Whole: the line and its newline in one write. ``print`` writes them apart, and on an
    unbuffered stream (``PYTHONUNBUFFERED=1``, common in containers and services) that is two
    system calls, so the workers of ``lngate serve --workers N``, sharing one stream, put lines
    into each other (``{...}{...}``, seen in a test of two workers). Lossy: with logs on a full
    disk (or a closed pipe) every log call would otherwise fail the request or task that made
    it, readiness included, instead of that request or task saying why.
    """

    def msg(self, message: str) -> None:
        """Write ``message`` and its newline at once, or drop it when the stream refuses it."""
        try:
            super().msg(message)
        except (OSError, ValueError):  # ValueError: the stream is closed
            pass

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def redact_secrets(secrets: list[str]) -> Any:
    """A processor replacing any of ``secrets`` found in a string field with ``[redacted]``."""

    def processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        if not secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                for secret in secrets:
                    if secret in value:
                        value = value.replace(secret, "[redacted]")
                event[key] = value
        return event

    return processor
