"""Runs named background loops, restarts one that crashes (with backoff), stops them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("lngate.tasks")


class Supervisor:
    """Owns the gateway's background tasks; started and stopped by the app's lifespan."""

    def __init__(self, *, max_backoff: float = 30.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._max_backoff = max_backoff

    def start(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run ``loop()`` under supervision; a crash is logged and the loop restarted."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} already running")
        self._tasks[name] = asyncio.create_task(self._supervise(name, loop), name=name)

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.5
        while True:
            try:
                await loop()
                log.info("task_finished", task=name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task_crashed", task=name, restart_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    @property
    def names(self) -> list[str]:
        """Names of the running tasks."""
        return [name for name, task in self._tasks.items() if not task.done()]

    async def stop(self) -> None:
        """Cancel every task and wait for them to finish."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
