"""Measurement-only patches for ``bench_create_invoice.py --ablations`` (never used otherwise).

Put on PYTHONPATH of a gateway process, this module runs at interpreter start (in every uvicorn
worker too) and, per ``LNGATE_BENCH_ABLATE`` (comma-separated), switches off one piece of the
create-invoice path so its cost shows up as the difference in CPU ms per invoice:

- ``ratelimit``: the per-IP limiter always allows (no ``limits`` call);
- ``logs``: structlog drops every event below CRITICAL (no JSON rendering, no write);
- ``recorder``: provider calls are neither logged nor queued for ``provider_calls``;
- ``insert``: the invoice row is not inserted (the transaction still opens and commits);
- ``db``: no database work at all on the create path (no transaction, no insert).

A patch whose target no longer exists is reported on stderr and skipped.
"""

from __future__ import annotations

import os
import sys

_WANTED = {w.strip() for w in os.environ.get("LNGATE_BENCH_ABLATE", "").split(",") if w.strip()}


def _say(message: str) -> None:
    print(f"lngate-bench-ablate: {message}", file=sys.stderr, flush=True)


def _apply() -> None:
    if "ratelimit" in _WANTED:
        try:
            from lngate.web import ratelimit

            async def check(self, route, key):  # noqa: ANN001, ANN202
                return ratelimit.RateDecision(True)

            ratelimit.RateLimiter.check = check
            _say("rate limiter disabled")
        except (ImportError, AttributeError) as exc:
            _say(f"ratelimit patch skipped: {exc!r}")

    if "logs" in _WANTED:
        try:
            import logging

            import structlog

            from lngate import logconfig

            original = logconfig.configure_logging

            def configure_logging(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                original(*args, **kwargs)
                structlog.configure(
                    wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

            logconfig.configure_logging = configure_logging
            _say("logs below CRITICAL dropped")
        except (ImportError, AttributeError) as exc:
            _say(f"logs patch skipped: {exc!r}")

    if "recorder" in _WANTED:
        try:
            from lngate.services.call_recorder import CallRecorder

            CallRecorder.record_attempt = lambda self, attempt: None
            _say("provider-call recording disabled")
        except (ImportError, AttributeError) as exc:
            _say(f"recorder patch skipped: {exc!r}")

    if "insert" in _WANTED or "db" in _WANTED:
        try:
            import contextlib

            from lngate.services import invoices

            async def insert_invoice(conn, record):  # noqa: ANN001, ANN202
                return None

            invoices.insert_invoice = insert_invoice
            try:  # the group-commit writer, where there is one
                from lngate.store import invoice_writer

                async def writer_insert(self, record):  # noqa: ANN001, ANN202
                    return None

                invoice_writer.InvoiceWriter.insert = writer_insert
                _say("group-commit writer insert disabled")
            except (ImportError, AttributeError):
                pass
            if "db" in _WANTED:
                class _NoDb:
                    def __init__(self, db):  # noqa: ANN001
                        self._db = db

                    def __getattr__(self, name):  # noqa: ANN001, ANN202
                        return getattr(self._db, name)

                    @contextlib.asynccontextmanager
                    async def transaction(self):  # noqa: ANN202
                        yield None

                original_create = invoices.create_invoice

                async def create_invoice(request, ctx):  # noqa: ANN001, ANN202
                    import dataclasses

                    no_db = dataclasses.replace(ctx, db=_NoDb(ctx.db))
                    return await original_create(request, no_db)

                invoices.create_invoice = create_invoice
                from lngate.web import routes_invoices

                routes_invoices.create_invoice = create_invoice
            _say("invoice insert disabled" + (" and no transaction" if "db" in _WANTED else ""))
        except (ImportError, AttributeError) as exc:
            _say(f"insert/db patch skipped: {exc!r}")


if _WANTED:
    _apply()
