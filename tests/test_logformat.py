"""A process writing JSON logs never loads rich (structlog's console renderer imports it), with
the same log lines; a console still gets structlog's renderer exactly as built with rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_LOG_AN_ERROR = """
import json, sys
{prelude}
import structlog
from lngate.logconfig import configure_logging

configure_logging(verbose=False, fmt={fmt!r})
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("lngate.test").exception("failed", order_id="o-1")
import structlog.dev
print(json.dumps({{"rich": sorted(m for m in ("rich", "pygments") if m in sys.modules),
                  "formatter": repr(structlog.dev.default_exception_formatter)}}))
"""
_HIDE = "from lngate.logformat import import_structlog_without_rich\nimport_structlog_without_rich()"
_KEEP = "pass\npass"  # as many lines as _HIDE: the logged traceback names line numbers


def run(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (imports are process-wide)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=env, check=True)


def without_timestamps(stderr: str) -> list[dict[str, object]]:
    """The JSON log lines of ``stderr``, timestamps removed."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    for line in lines:
        line.pop("timestamp")
    return lines


def test_json_logs_leave_rich_unloaded_and_read_the_same() -> None:
    """With JSON logs the process has no rich or pygments module, and an exception's log line
    is the same as in a process where structlog imported rich."""
    lean = run(_LOG_AN_ERROR.format(prelude=_HIDE, fmt="json"))
    plain = run(_LOG_AN_ERROR.format(prelude=_KEEP, fmt="json"))
    assert json.loads(lean.stdout)["rich"] == []
    assert json.loads(plain.stdout)["rich"] == ["pygments", "rich"]
    assert without_timestamps(lean.stderr) == without_timestamps(plain.stderr)
    assert without_timestamps(lean.stderr)[0]["exception"].endswith(
        "ZeroDivisionError: division by zero")


def test_console_logs_get_the_renderer_structlog_builds_with_rich() -> None:
    """Asked for a console, the process gets rich back: the same exception formatter as when
    structlog imported rich itself."""
    lean = json.loads(run(_LOG_AN_ERROR.format(prelude=_HIDE, fmt="console")).stdout)
    plain = json.loads(run(_LOG_AN_ERROR.format(prelude=_KEEP, fmt="console")).stdout)
    assert lean == plain
    assert lean["formatter"].startswith("RichTracebackFormatter(")


def test_a_worker_built_by_the_asgi_factory_has_no_rich(tmp_path: Path) -> None:
    """``lngate.web.asgi.app_factory`` (what every uvicorn worker runs) with JSON logs builds
    the application without loading rich."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LNBITS_", "NWC_", "DATABASE_", "PROVIDERS", "LOG_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}", LOG_FORMAT="json",
               EMAIL_FOLDER=str(tmp_path / "mail"))
    code = ("import sys\nfrom lngate.web.asgi import app_factory\napp_factory()\n"
            "print(sorted(m for m in ('rich', 'pygments') if m in sys.modules))")
    assert run(code, env=env).stdout.strip() == "[]"
