"""An in-process gateway (real app, real SQLite, the test provider) and an HTTP client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lngate.settings import Settings


def make_settings(tmp_path, **overrides: Any) -> Settings:  # type: ignore[no-untyped-def]
    """Settings for a test gateway: demo mode on a fresh SQLite file, no .env."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        "lightning_test_mode": True,
        "rate_limit": "10000/second",
        "email_folder": tmp_path / "outbox-mail",  # demo email sender: never the working dir
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (lifespan included) and yield a client talking to it in-process."""
    from lngate.web.app import create_app

    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def gateway_factory(tmp_path) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """Build a running gateway with settings overrides: ``async with gateway_factory(...)``."""

    def factory(**overrides: Any) -> Any:
        return running_gateway(make_settings(tmp_path, **overrides))

    return factory


@pytest.fixture
async def client(gateway_factory: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client to a demo-mode gateway."""
    async with gateway_factory() as http:
        yield http
