"""ASGI entry point for uvicorn workers: ``uvicorn --factory lngate.web.asgi:app_factory``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from lngate.logformat import import_structlog_without_rich
from lngate.settings import ConfigError, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

SKIP_MIGRATIONS_ENV = "LNGATE_SKIP_MIGRATIONS"


def app_factory() -> FastAPI:
    """Read settings, configure logs and build the app (one per worker process).

    A configuration that cannot work ends the process with one line per problem and status 2,
    as ``lngate serve`` does, also when uvicorn is started directly. The application is imported
    here, after structlog was imported without rich
    (:func:`~lngate.logformat.import_structlog_without_rich`).
    """
    import_structlog_without_rich()  # before reading the settings imports it
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    from lngate.bootstrap import secret_values
    from lngate.logconfig import configure_logging
    from lngate.web.app import create_app

    configure_logging(verbose=settings.verbose, fmt=settings.log_format,
                      secrets=secret_values(settings), final=True)
    return create_app(settings, migrate=os.environ.get(SKIP_MIGRATIONS_ENV) != "1", serving=True)
