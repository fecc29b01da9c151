"""A worker built by the uvicorn factory tunes its process for serving; a plain app does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lngate.heap import YOUNG_THRESHOLD

# Run in a child process: freezing the heap is process-wide and must not touch the test session.
_PROBE = """
import asyncio, gc, json, sys
import structlog
from asgi_lifespan import LifespanManager
from lngate.web.asgi import app_factory
from lngate.web.app import create_app
from lngate.settings import load_settings

async def started(app):
    async with LifespanManager(app):
        return {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0],
                "cached_loggers": structlog.get_config()["cache_logger_on_first_use"],
                "heap_trim": any(t.get_name() == "heap_trim" for t in asyncio.all_tasks())}

plain = asyncio.run(started(create_app(load_settings())))
served = asyncio.run(started(app_factory()))
print(json.dumps({"plain": plain, "served": served}))
"""


def test_the_served_app_settles_its_heap_and_caches_its_loggers(tmp_path: Path) -> None:
    """The uvicorn factory's app freezes its start-up objects, collects the young generation
    less often, builds each logger once and hands free heap pages back periodically; a plain
    create_app (as in tests) does none of these."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LNBITS_", "NWC_", "DATABASE_", "PROVIDERS"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
               EMAIL_FOLDER=str(tmp_path / "mail"))
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["plain"] == {"frozen": 0, "young": 700, "cached_loggers": False,
                             "heap_trim": False}
    assert seen["served"]["heap_trim"] is True
    assert seen["served"]["young"] == YOUNG_THRESHOLD
    assert seen["served"]["cached_loggers"] is True
    assert seen["served"]["frozen"] > 10_000
