"""A serving process loads the page, email, QR, PostgreSQL and Redis rate-limit libraries only
when first used, and that first use works (each stays in every worker's memory once loaded);
FastAPI's check for pydantic v1 models no longer loads pydantic.v1, yet still refuses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAZY = ("jinja2", "segno", "asyncpg", "aiosmtplib", "limits", "pydantic.v1")

FIRST_USE = f"""
import sys
from lngate.settings import Settings
from lngate.web.app import create_app

create_app(Settings(_env_file=None))
from lngate.web.ratelimit import RateLimiter
RateLimiter("60/minute", per_route={{"check-invoice": "120/minute"}})
print("loaded after create_app:", sorted(m for m in {LAZY!r} if m in sys.modules))

from lngate.store.database import is_transient
assert is_transient(OSError()) and not is_transient(ValueError())
print("loaded after is_transient:", sorted(m for m in {LAZY!r} if m in sys.modules))

from lngate.web.routes_checkout import qr_svg
assert qr_svg("lnbc1abc").startswith("<svg")

from lngate.web.pages import environment
assert "<html" in environment().get_template("error.html").render(
    t=lambda *a, **k: "x", lang="fr", other_languages=[], title="t", message="m")

from lngate.notify.templates import EmailTemplates, UnknownTemplate
from tests.notify.test_templates import payload
rendered = EmailTemplates().render("dazbox_confirmation", payload())
assert "DazBox" in rendered.subject and "Alice" in rendered.html
try:
    EmailTemplates().render("no_such_kind", {{}})
except UnknownTemplate:
    pass
else:
    raise AssertionError("an unknown kind rendered")

import asyncpg
assert is_transient(asyncpg.PostgresConnectionError())
assert is_transient(asyncpg.exceptions.SerializationError())
assert not is_transient(asyncpg.exceptions.UniqueViolationError())
print("first uses: ok")
"""


def test_the_app_leaves_page_email_qr_and_postgres_libraries_unloaded_until_first_use() -> None:
    result = subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "loaded after create_app: []",
        "loaded after is_transient: []",
        "first uses: ok",
    ]


V1_MODEL = """
from pydantic import v1
from fastapi import FastAPI
import lngate.web  # noqa: F401

class Legacy(v1.BaseModel):
    amount: int

app = FastAPI()
try:
    @app.post("/legacy")
    def legacy(body: Legacy) -> None: ...
except Exception as exc:
    print(type(exc).__name__)
"""


def test_a_pydantic_v1_model_is_still_refused_once_pydantic_v1_is_loaded() -> None:
    """The lazy check answers as FastAPI's own once pydantic.v1 is imported: a route taking a
    v1 model is refused with FastAPI's error."""
    result = subprocess.run([sys.executable, "-c", V1_MODEL], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "PydanticV1NotSupportedError"


STARTED = """
import asyncio, sys, tempfile
from asgi_lifespan import LifespanManager
from lngate.settings import Settings
from lngate.web.app import create_app

async def main(sender: str) -> None:
    tmp = tempfile.mkdtemp()
    extra = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_tls": "none"} if sender == "smtp" else {}
    app = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp}/g.sqlite3",
                              lightning_test_mode=True, email_folder=f"{tmp}/mail", **extra))
    async with LifespanManager(app):
        environments = app.state.gateway.email_templates._environments or ()
        print("started:", sorted(m for m in ("jinja2", "aiosmtplib") if m in sys.modules),
              sum(len(env.cache) for env in environments))

asyncio.run(main(sys.argv[1]))
"""


def _started_with(sender: str) -> str:
    result = subprocess.run([sys.executable, "-c", STARTED, sender], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("started:")]
    return line.removeprefix("started: ")


def test_a_gateway_that_sends_email_has_its_libraries_and_templates_ready_once_started() -> None:
    templates = sum(1 for path in (REPO / "src/lngate/notify/templates").iterdir()
                    if path.is_file())
    assert _started_with("smtp") == f"['aiosmtplib', 'jinja2'] {templates}"


def test_a_demo_gateway_writing_emails_to_a_folder_still_loads_them_with_the_first_email() -> None:
    assert _started_with("folder") == "[] 0"
