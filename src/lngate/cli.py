"""The ``lngate`` command line (Typer): serve, migrate, check, cleanup, stats, config show.

Exit status: 0 done; 1 a provider check failed or the database cannot be used; 2 a setting is
invalid. Either failure is one line per problem on stderr, naming the variable, no traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from lngate import __version__
from lngate.logformat import import_structlog_without_rich
from lngate.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from lngate.store.database import DatabaseUnusable

app = typer.Typer(
    name="lngate",
    help="lngate: a Lightning invoicing gateway with provider failover and verified settlement.",
    no_args_is_help=True,
    add_completion=False,
)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise _config_error(exc) from None


def _config_error(exc: ConfigError) -> typer.Exit:
    typer.secho(str(exc), fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; an unusable database or configuration ends the command in one line."""
    from lngate.store.database import DatabaseUnusable

    try:
        return asyncio.run(coroutine)
    except DatabaseUnusable as exc:
        raise _unusable(exc) from None
    except ConfigError as exc:
        raise _config_error(exc) from None


def _unusable(exc: DatabaseUnusable) -> typer.Exit:
    typer.secho(f"cannot use the database (DATABASE_URL): {exc.reason}",
                fg=typer.colors.RED, err=True)
    return typer.Exit(1)


async def _migrated(settings: Settings) -> None:
    """Migrate the database and check it is usable (raises ``DatabaseUnusable``)."""
    from lngate.store.database import Database

    db = Database.from_url(settings.database_url.get_secret_value())
    try:
        await db.migrate()
    finally:
        await db.aclose()


class _MigrationChild:
    """Migrates and checks the database in a child process, for ``serve``; :meth:`wait` ends
    the command as ``migrate`` would when that failed, its one line printed here.

    With one worker, the process of ``serve`` goes on to serve: migrating in it would keep
    Alembic, its templates and the scripts in its memory for good (about 8 MiB of the worker's
    RSS).
    """

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._receiver, sender = context.Pipe(duplex=False)
        self._child = context.Process(target=_migrate_child, args=(sender,),
                                      name="lngate-migrate")
        self._child.start()
        sender.close()

    def wait(self) -> None:
        """Return once the database is migrated; raise ``typer.Exit(1)`` if it cannot be."""
        from lngate.store.database import DatabaseUnusable

        try:
            failure = self._receiver.recv()
        except EOFError:  # the child died before answering (its traceback is on stderr)
            failure = ("down", "the migration process ended without an answer")
        finally:
            self._receiver.close()
            self._child.join()
        if failure is not None:
            kind, reason = failure
            raise _unusable(DatabaseUnusable(reason, kind=kind))


def _migrate_child(sender: Any) -> None:
    """:class:`_MigrationChild`'s process: sends ``None`` once migrated, else ``(kind, reason)``."""
    from lngate.store.database import DatabaseUnusable

    settings = _settings()
    _configure_logs(settings)
    try:
        asyncio.run(_migrated(settings))
    except DatabaseUnusable as exc:
        sender.send((exc.kind, exc.reason))
    else:
        sender.send(None)
    finally:
        sender.close()


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
                                         help="Worker processes (more than 1 needs PostgreSQL).")] = 1,
) -> None:
    """Start the HTTP gateway (migrates the database first)."""
    settings = _settings()
    if workers > 1 and settings.database_url.get_secret_value().startswith("sqlite"):
        typer.secho(f"--workers {workers} refused: DATABASE_URL is SQLite, which takes one "
                    "writer process; use one worker, or PostgreSQL for several",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    _configure_logs(settings)
    migration = _MigrationChild()  # it migrates while this process imports the application
    import lngate.web.app  # noqa: F401  (app_factory builds it once the migration is done)
    from lngate.web.asgi import SKIP_MIGRATIONS_ENV
    from lngate.web.http_server import HttpLimits, run_server

    migration.wait()
    os.environ[SKIP_MIGRATIONS_ENV] = "1"  # workers inherit it: migrations ran once, before
    if settings.demo_mode:
        typer.secho("DEMO MODE: no real provider is configured; the test provider issues "
                    "every invoice, and its invoices are not real", fg=typer.colors.YELLOW,
                    bold=True, err=True)
    limits = HttpLimits(
        max_header_bytes=settings.http_max_header_bytes, max_headers=settings.http_max_headers,
        read_timeout=settings.http_read_timeout_seconds,
        max_connections=settings.http_max_connections or 0,
    )
    run_server("lngate.web.asgi:app_factory", host=host, port=port, workers=workers,
               limits=limits, keepalive_timeout=settings.http_keepalive_timeout_seconds)


@app.command()
def migrate() -> None:
    """Apply database migrations (also done automatically at start) and check the database."""
    _run(_migrated(_settings()))
    typer.echo("database is up to date")


@app.command()
def check() -> None:
    """Check every configured provider: reachable, balance, create, validate and look up an invoice.

    Exits with status 1 when any provider fails a step.
    """
    from lngate.bootstrap import build_gateway, utcnow
    from lngate.services.provider_check import check_provider

    settings = _settings()
    _configure_logs(settings)  # logs (redacted) go to stderr; the table alone to stdout
    types = {spec.name: spec.type for spec in settings.provider_specs}

    async def run() -> list[Any]:
        gateway = await build_gateway(settings)
        try:
            results = []
            for provider in gateway.providers:
                typer.echo(f"checking {provider.name} ({types.get(provider.name, 'test')}) ...",
                           err=True)
                results.append(await check_provider(
                    provider, network=settings.lightning_network,
                    payee_keys=gateway.payee_keys, clock=utcnow,
                ))
            return results
        finally:
            await gateway.aclose()

    results = _run(run())
    if not results:
        typer.secho("no provider configured (set PROVIDERS, or LNBITS_ENDPOINT/LNBITS_INVOICE_KEY "
                    "or NWC_URL, or LIGHTNING_TEST_MODE=true)", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    width = max(len("provider"), *(len(r.provider) for r in results))
    header = f"{'provider':<{width}} {'type':<8} {'result':<6} {'reachable':<9} {'ms':>8} " \
             f"{'balance sat':>12} {'invoice':<8} {'lookup':<6} errors"
    typer.echo(header)
    typer.echo("-" * len(header))
    for r in results:
        typer.echo(
            f"{r.provider:<{width}} {types.get(r.provider, 'test'):<8} "
            f"{'OK' if r.ok else 'FAIL':<6} {'yes' if r.reachable else 'no':<9} "
            f"{(f'{r.response_ms:.1f}' if r.response_ms is not None else '-'):>8} "
            f"{(str(r.balance_sat) if r.balance_sat is not None else '-'):>12} "
            f"{'valid' if r.invoice_valid else 'invalid':<8} {'ok' if r.lookup_ok else 'fail':<6} "
            f"{'; '.join(r.errors) or '-'}"
        )
    if not all(r.ok for r in results):
        raise typer.Exit(1)


config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


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
    from lngate.store.database import Database

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

    deleted = _run(run())
    typer.echo(f"deleted metrics older than {keep} days (before {cutoff:%Y-%m-%d %H:%M} UTC):")
    for table, count in deleted.items():
        typer.echo(f"  {table:<24} {count:>10,}")


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of NAME=value.")]
    = False,
) -> None:
    """Print the effective configuration (environment, .env and defaults) as a loadable .env.

    Secrets are not printed: a secret that is set is a comment line (null in JSON), and a
    password inside a URL is removed. Save it as a configuration backup and supply the secrets
    from the environment.
    """
    import json

    from lngate.settings_export import render_dotenv, render_json

    settings = _settings()
    if as_json:
        typer.echo(json.dumps(render_json(settings), indent=2))
    else:
        typer.echo(render_dotenv(settings), nl=False)


@app.command()
def backup(
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="The backup folder to create; it must not exist "
        "(default: ./lngate-backup-<UTC time>).")] = None,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Write the secrets and URL passwords into the configuration "
        "file (then readable by its owner only).")] = False,
) -> None:
    """Back up the database and the configuration while the gateway runs.

    SQLite: a consistent copy of the database (SQLite's online backup) and the configuration,
    in a new folder. PostgreSQL: checks the connection, saves the configuration and prints the
    pg_dump / pg_restore commands (without the password). Exits 1 when the database cannot be
    read or the folder cannot be written.
    """
    from datetime import UTC, datetime
    from pathlib import Path

    from lngate.backup import BackupError, make_backup, postgres_commands, render_config
    from lngate.store.database import Database

    settings = _settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(output) if output else Path(f"lngate-backup-{stamp}")
    url = settings.database_url.get_secret_value()
    sqlite = settings.sqlite_path()
    if sqlite is None and url.startswith("sqlite"):
        typer.secho("DATABASE_URL is an in-memory SQLite database: nothing to back up",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    if sqlite is None:
        async def usable() -> None:  # the check every command makes: reachable, schema current
            db = Database.from_url(url)
            try:
                await db.check()
            finally:
                await db.aclose()

        typer.echo("checking the PostgreSQL database ...", err=True)
        _run(usable())
    try:
        result = make_backup(folder, config_text=render_config(
            settings, include_secrets=include_secrets), include_secrets=include_secrets,
            sqlite_path=sqlite, progress=lambda line: typer.echo(line, err=True))
    except BackupError as exc:
        typer.secho(f"backup failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backup written to {result.folder}/")
    if result.database is not None:
        typer.echo(f"  {result.database.name}  the database ({result.database_bytes:,} bytes)")
    typer.echo(f"  {result.config.name}  the configuration"
               + (" WITH secrets (mode 0600)" if include_secrets else ", secrets left out"))
    if sqlite is not None:
        typer.echo(f"restore: stop the gateway, copy {result.database} to {sqlite}, start it.")
        return
    dump = f"lngate-{stamp}.dump"
    dump_cmd, restore_cmd = postgres_commands(url, dump)
    typer.echo("PostgreSQL is backed up with its own tools, consistent while the gateway "
               "runs:\n"
               f"  {dump_cmd}\n"
               "restore into an empty database (then `lngate migrate`):\n"
               f"  {restore_cmd}\n"
               "The password is not shown: give it through PGPASSWORD or ~/.pgpass.")


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

    async def run() -> dict[str, Any]:
        gateway = await build_gateway(settings)
        try:
            assert gateway.monitoring is not None
            await refresh_rollups(gateway.db, now=gateway.monitoring.clock())
            return await statistics(gateway.monitoring, hours)
        finally:
            await gateway.aclose()

    body = _run(run())
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(_stats_table(body, hours))


@app.command()
def loadtest(
    scenario: Annotated[str, typer.Argument(
        help="health, create-invoice, order-and-pay (demo) or webhook (demo).")],
    url: Annotated[str, typer.Option(help="The running gateway.")] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(min=0.1, max=10_000,
                                        help="Requests started per second (open loop).")] = 5.0,
    duration: Annotated[float, typer.Option(min=1, max=86_400, help="Seconds.")] = 30.0,
    json_report: Annotated[str | None, typer.Option(help="Write the JSON report to this file.")]
    = None,
    admin_token: Annotated[str | None, typer.Option(
        envvar="ADMIN_TOKEN", help="Records the run on the gateway (its ADMIN_TOKEN).")] = None,
    webhook_secret: Annotated[str | None, typer.Option(
        envvar="LNBITS_WEBHOOK_SECRET",
        help="The gateway's LNBITS_WEBHOOK_SECRET (webhook scenario).")] = None,
    slo_invoice_ms: Annotated[float, typer.Option(
        min=0, help="p99 objective of create-invoice and order-and-pay.")] = 3000.0,
    slo_webhook_ms: Annotated[float, typer.Option(min=0, help="p99 objective of webhook.")]
    = 500.0,
    slo_health_ms: Annotated[float, typer.Option(min=0, help="p99 objective of health.")]
    = 1000.0,
    max_error_rate: Annotated[float, typer.Option(min=0, max=1,
                                                  help="Objective: errors / requests.")] = 0.01,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback target.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", help="Do not ask before creating real invoices on a non-demo gateway.")]
    = False,
    timeout: Annotated[float, typer.Option(min=0.1, max=600, help="Per request, seconds.")]
    = 10.0,
    max_in_flight: Annotated[int, typer.Option(
        min=1, max=100_000, help="Unanswered requests at most; more are counted as errors.")]
    = 1000,
    amount_sats: Annotated[int, typer.Option(min=1, help="Amount of each invoice or order.")]
    = 100,
) -> None:
    """Drive a RUNNING gateway at a fixed rate and check its service-level objectives.

    Exit status 0 when every objective is met, 1 when one is missed, 2 when the run was refused
    (see docs/loadtest.md).
    """
    from pathlib import Path

    from rich.console import Console

    from lngate.loadtest.runner import LoadTestOptions, run_loadtest
    from lngate.loadtest.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        typer.secho(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    objective_ms = {"health": slo_health_ms, "webhook": slo_webhook_ms}.get(scenario,
                                                                          slo_invoice_ms)
    options = LoadTestOptions(
        scenario=scenario, url=url, rate=rate, duration=duration, objective_ms=objective_ms,
        max_error_rate=max_error_rate, json_report=Path(json_report) if json_report else None,
        admin_token=admin_token,
        webhook_secret=webhook_secret, allow_remote=allow_remote, assume_yes=yes,
        timeout=timeout, max_in_flight=max_in_flight, amount_sats=amount_sats)
    code = asyncio.run(run_loadtest(
        options, confirm=lambda question: typer.confirm(question, default=False),
        console=Console(), errors=Console(stderr=True)))
    raise typer.Exit(code)


def _stats_table(body: dict[str, Any], hours: float) -> str:
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
    import_structlog_without_rich()  # before reading the settings imports it (logformat.py)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
