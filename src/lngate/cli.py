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


# --- monitoring: cleanup, config show, stats (issue 5) ----------------------------------------

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _database_error(exc: BaseException) -> typer.Exit:
    typer.secho(f"cannot use the database: {type(exc).__name__}: {exc}".splitlines()[0],
                fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.command()
def cleanup(
    days: Annotated[int | None, typer.Option(
        min=1, max=3650, help="Delete metrics older than this many days "
        "(default: METRICS_RETENTION_DAYS).")] = None,
) -> None:
    """Delete provider calls, their roll-ups and health probe results past the retention period.

    The running gateway does the same every hour; this is for a one-off purge.
    """
    from datetime import UTC, datetime, timedelta

    from lngate.services.metrics_queries import delete_older_than
    from lngate.store import Database

    settings = _settings()
    _configure_logs(settings)
    keep = days or settings.metrics_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=keep)

    async def run() -> dict[str, int]:
        db = Database.from_url(settings.database_url.get_secret_value())
        try:
            await db.migrate()
            return await delete_older_than(db, cutoff)
        finally:
            await db.aclose()

    try:
        deleted = asyncio.run(run())
    except Exception as exc:
        raise _database_error(exc) from None
    typer.echo(f"deleted metrics older than {keep} days (before {cutoff:%Y-%m-%d %H:%M} UTC):")
    for table, count in deleted.items():
        typer.echo(f"  {table:<24} {count:>10,}")


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of NAME=value.")]
    = False,
) -> None:
    """Print the effective configuration (environment, .env and defaults), secrets redacted.

    Keep it as a configuration backup: every secret reads <redacted> (set) or is empty (unset),
    and a database password is replaced by ***.
    """
    import json

    values = _effective_config(_settings())
    if as_json:
        typer.echo(json.dumps(values, indent=2))
        return
    settings = _settings()
    typer.echo("# lngate effective configuration (secrets redacted)")
    typer.echo(f"# test provider: {'enabled' if settings.test_mode else 'disabled'}")
    for name, value in values.items():
        typer.echo(f"{name}={value}")



def _effective_config(settings: Settings) -> dict[str, str]:
    """Every setting under its environment variable name, secrets redacted, in declared order."""
    from pathlib import Path
    from urllib.parse import urlsplit, urlunsplit

    from pydantic import AliasChoices, SecretStr

    values: dict[str, str] = {}
    for field_name, info in Settings.model_fields.items():
        alias = info.validation_alias
        name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else str(
            alias or field_name.upper())
        value = getattr(settings, field_name)
        if field_name == "database_url":
            parts = urlsplit(value.get_secret_value())
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
                parts = parts._replace(netloc=netloc)
            text = urlunsplit(parts)
        elif isinstance(value, SecretStr):
            text = "<redacted>"
        elif value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, Path):
            text = str(value)
        elif hasattr(value, "name") and hasattr(value, "value"):  # an enum: its setting name
            text = value.name.lower()
        else:
            text = str(value)
        values[name] = text
    return values

@app.command()
def stats(
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 3650,
                                         help="Window: the last HOURS hours.")] = 24.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the admin API's stats JSON.")]
    = False,
) -> None:
    """Print the provider statistics table (the admin API's stats) for the last HOURS hours."""
    import json

    from lngate.bootstrap import build_gateway
    from lngate.services.admin import statistics
    from lngate.services.metrics_queries import refresh_rollups

    settings = _settings()
    _configure_logs(settings)  # logs go to stderr; the table alone to stdout

    async def run() -> dict:  # type: ignore[type-arg]
        gateway = await build_gateway(settings)
        try:
            assert gateway.monitoring is not None
            await refresh_rollups(gateway.db, now=gateway.monitoring.clock())
            return await statistics(gateway.monitoring, hours)
        finally:
            await gateway.aclose()

    try:
        body = asyncio.run(run())
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        raise _database_error(exc) from None
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(_stats_table(body, hours))


def _stats_table(body: dict, hours: float) -> str:  # type: ignore[type-arg]
    def fmt(value: object, suffix: str = "") -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}{suffix}"
        return f"{value}{suffix}"

    header = (f"{'provider':<10} {'uptime':>7} {'invoices':>9} {'ok':>7} {'failed':>7} "
              f"{'success':>8} {'mean ms':>8} {'p50':>8} {'p95':>8} {'p99':>8}  last error")
    lines = [f"provider statistics, last {hours:g} h (to {body['lastUpdated']})", header,
             "-" * len(header)]
    for name, entry in body["providers"].items():
        m = entry["metrics"] or {}  # None: no invoice attempted through it in the window
        latency = m.get("latency", {})
        lines.append(
            f"{name:<10} {fmt(entry['status'].get('uptime'), '%'):>7} "
            f"{m.get('totalInvoices', 0):>9} "
            f"{m.get('successfulInvoices', 0):>7} {m.get('failedInvoices', 0):>7} "
            f"{fmt(m.get('successRate'), '%'):>8} {fmt(m.get('averageResponseTime')):>8} "
            f"{fmt(latency.get('p50')):>8} {fmt(latency.get('p95')):>8} "
            f"{fmt(latency.get('p99')):>8}  {(m.get('lastError') or '-')[:60]}")
    o = body["overall"]
    lines.append("-" * len(header))
    lines.append(
        f"{'overall':<10} {fmt(o['uptime'], '%'):>7} {o['totalInvoices']:>9} "
        f"{o['successfulInvoices']:>7} {o['totalInvoices'] - o['successfulInvoices']:>7} "
        f"{fmt(o['successRate'], '%'):>8} {fmt(o['averageResponseTime']):>8} "
        f"{fmt(o['p50']):>8} {fmt(o['p95']):>8} {fmt(o['p99']):>8}  "
        f"{o['healthyProviders']}/{o['totalProviders']} providers healthy")
    return "\n".join(lines)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
