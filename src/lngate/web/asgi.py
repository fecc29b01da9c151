"""ASGI entry point for uvicorn workers: ``uvicorn --factory lngate.web.asgi:app_factory``."""

from __future__ import annotations

import os

from fastapi import FastAPI

from lngate.bootstrap import secret_values
from lngate.logconfig import configure_logging
from lngate.settings import load_settings
from lngate.web.app import create_app

SKIP_MIGRATIONS_ENV = "LNGATE_SKIP_MIGRATIONS"


def app_factory() -> FastAPI:
    """Read settings, configure logs and build the app (one per worker process)."""
    settings = load_settings()
    configure_logging(verbose=settings.verbose, fmt=settings.log_format,
                      secrets=secret_values(settings))
    return create_app(settings, migrate=os.environ.get(SKIP_MIGRATIONS_ENV) != "1")
