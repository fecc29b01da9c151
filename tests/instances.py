"""Several gateway instances in one test: each built by bootstrap and running its background
loops as the web lifespan runs them (its own loops, and leadership)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lngate.bootstrap import Gateway, Overrides, build_gateway
from lngate.notify.alerts import AlertMessage
from lngate.settings import Settings
from lngate.tasks import Supervisor


class RecordingChannel:
    """An alert channel that keeps what it is sent."""

    name = "record"

    def __init__(self) -> None:
        self.messages: list[AlertMessage] = []

    async def send(self, message: AlertMessage) -> None:
        self.messages.append(message)


def instance_settings(url: str, folder: Path, **values: Any) -> Settings:
    """Settings of one instance on the database ``url``, no .env."""
    return Settings(_env_file=None, database_url=url,  # type: ignore[call-arg]
                    email_folder=folder / "mail", **values)


@asynccontextmanager
async def running_instance(settings: Settings, overrides: Overrides | None = None,
                           ) -> AsyncIterator[Gateway]:
    """A gateway running its loops (as the lifespan does) until the block ends."""
    gateway = await build_gateway(settings, overrides=overrides)
    supervisor = Supervisor()
    try:
        for name, loop in gateway.instance_loops.items():
            supervisor.start(name, loop)
        supervisor.start("leadership", gateway.leadership.run)
        await asyncio.wait_for(gateway.leadership.wait_settled(), 15)
        yield gateway
    finally:
        await supervisor.stop()
        await gateway.aclose()


async def eventually(predicate: Any, *, timeout: float = 15.0, interval: float = 0.05) -> None:
    """Wait until ``predicate()`` (sync or async) is truthy, or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(interval)
