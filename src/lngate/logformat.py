"""structlog without rich in a process that writes JSON lines.

``import structlog`` imports ``structlog.dev``, the console renderer, which imports rich (and
through it pygments) whenever rich is installed, for its tracebacks: about 3.6 MiB of memory in
every process. rich is installed with Typer, yet a process writing JSON lines (a serving worker
in production) never renders anything through it: structlog's JSON pipeline formats exceptions
with the standard library's ``traceback``.

So the entry points (the ``lngate`` command, the ASGI factory module) call
:func:`import_structlog_without_rich` before anything imports structlog, as the log format is
not known yet (reading the settings imports the providers, which import structlog). When the
settings then ask for a console, :func:`console_renderer` reloads ``structlog.dev`` with rich
importable again, so the console renderer is exactly the one structlog builds with rich.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def logs_as_json(fmt: str) -> bool:
    """Whether ``LOG_FORMAT`` ``fmt`` (``json``, ``console`` or ``auto``) means JSON lines here:
    ``auto`` is JSON unless stderr is a terminal."""
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def import_structlog_without_rich() -> None:
    """Import structlog with rich hidden from it, unless either is imported already.

    A ``None`` entry in ``sys.modules`` makes ``import rich`` raise ``ImportError``, which
    structlog handles as rich not installed; the entry is removed right after, so whatever else
    wants rich later still imports it.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        if "rich" in sys.modules and sys.modules["rich"] is None:
            del sys.modules["rich"]


def console_renderer() -> Any:
    """structlog's console renderer with its defaults, rich tracebacks included when rich is
    installed (``structlog.dev`` is reloaded if it was imported without rich)."""
    import structlog.dev

    if structlog.dev.rich is None and importlib.util.find_spec("rich") is not None:
        importlib.reload(structlog.dev)
    return structlog.dev.ConsoleRenderer()
