"""The ``lngate`` command line (Typer): serve, migrate, check."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

import typer

from lngate import __version__
from lngate.settings import ConfigError, Settings, load_settings

app = typer.Typer(
    name="lngate",
    help="lngate: a Lightning invoicing gateway with provider failover and verified settlement.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _configure_logs(settings: Settings) -> None:
    from lngate.bootstrap import secret_values
    from lngate.logconfig import configure_logging

    configure_logging(verbose=settings.verbose, fmt=settings.log_format,
                      secrets=secret_values(settings))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64,
                                         help="Worker processes (use PostgreSQL for more than 1).")] = 1,
) -> None:
    """Start the HTTP gateway (migrates the database first)."""
    import uvicorn

    from lngate.store import Database
    from lngate.web.asgi import SKIP_MIGRATIONS_ENV

    settings = _settings()
    _configure_logs(settings)
    if workers > 1 and settings.sqlite_path() is not None:
        typer.secho("warning: several workers on SQLite serialise on its single writer; "
                    "PostgreSQL is the choice for more than one worker", fg=typer.colors.YELLOW,
                    err=True)

    async def migrate_once() -> None:
        db = Database.from_url(settings.database_url.get_secret_value())
        try:
            await db.migrate()
        finally:
            await db.aclose()

    asyncio.run(migrate_once())
    os.environ[SKIP_MIGRATIONS_ENV] = "1"  # workers inherit it: migrations ran once, here
    if settings.test_mode:
        typer.secho("DEMO MODE: the test provider is enabled; its invoices are not real "
                    "(LIGHTNING_TEST_MODE)", fg=typer.colors.YELLOW, bold=True, err=True)
    uvicorn.run("lngate.web.asgi:app_factory", factory=True, host=host, port=port,
                workers=workers, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, proxy_headers=False)


@app.command()
def migrate() -> None:
    """Apply database migrations (also done automatically at start)."""
    from lngate.store import Database

    settings = _settings()

    async def run() -> None:
        db = Database.from_url(settings.database_url.get_secret_value())
        try:
            await db.migrate()
        finally:
            await db.aclose()

    try:
        asyncio.run(run())
    except OSError as exc:
        typer.secho(f"cannot reach the database: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo("database is up to date")


@app.command()
def check() -> None:
    """Check every configured provider: reachable, balance, create, validate and look up an invoice.

    Exits with status 1 when any provider fails a step.
    """
    from lngate.bootstrap import build_gateway, utcnow
    from lngate.services.provider_check import check_provider

    settings = _settings()

    async def run() -> list:  # type: ignore[type-arg]
        gateway = await build_gateway(settings)
        try:
            results = []
            for provider in gateway.providers:
                typer.echo(f"checking {provider.name} ...", err=True)
                results.append(await check_provider(
                    provider, network=settings.lightning_network,
                    payee_keys=gateway.payee_keys, clock=utcnow,
                ))
            return results
        finally:
            await gateway.aclose()

    results = asyncio.run(run())
    if not results:
        typer.secho("no provider configured (set LNBITS_ENDPOINT/LNBITS_INVOICE_KEY or NWC_URL, "
                    "or LIGHTNING_TEST_MODE=true)", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    header = f"{'provider':<10} {'result':<6} {'reachable':<9} {'ms':>8} {'balance sat':>12} " \
             f"{'invoice':<8} {'lookup':<6} errors"
    typer.echo(header)
    typer.echo("-" * len(header))
    for r in results:
        typer.echo(
            f"{r.provider:<10} {'OK' if r.ok else 'FAIL':<6} {'yes' if r.reachable else 'no':<9} "
            f"{(f'{r.response_ms:.1f}' if r.response_ms is not None else '-'):>8} "
            f"{(str(r.balance_sat) if r.balance_sat is not None else '-'):>12} "
            f"{'valid' if r.invoice_valid else 'invalid':<8} {'ok' if r.lookup_ok else 'fail':<6} "
            f"{'; '.join(r.errors) or '-'}"
        )
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
