"""``lngate backup``: the database and the configuration, copied while the gateway runs.

On SQLite the database is copied with SQLite's online backup API (``sqlite3.Connection.backup``)
in one step: it reads one snapshot, so the copy is consistent, and in WAL mode (the gateway's)
the running gateway keeps writing meanwhile. The copy is checked (``PRAGMA quick_check``) and
left in rollback-journal mode, one self-contained file. On PostgreSQL nothing is copied here:
:func:`postgres_commands` gives the ``pg_dump``/``pg_restore`` commands for the configured
database, its password left out (PostgreSQL's tools read ``PGPASSWORD`` or ``~/.pgpass``).

Either way the configuration is saved beside it, as ``lngate config show`` prints it: secrets
left out, or, with ``include_secrets``, written in and the file readable by its owner only.

A backup is a new folder, never an existing one: it is assembled in a hidden folder beside it
and renamed into place when complete, so a folder with the final name is always a whole backup.
The folder is private (0700) and so is the database copy (0600): it holds customers' addresses.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from lngate.settings import Settings
from lngate.settings_export import (
    dotenv_value,
    effective_entries,
    render_dotenv,
    strip_credentials,
    variable_name,
)

DATABASE_FILE = "lngate.sqlite3"
CONFIG_FILE = "lngate.env"
_COUNTED_TABLES = ("invoices", "orders")


class BackupError(Exception):
    """The backup cannot be made; the message is one line saying why."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote."""

    folder: Path
    database: Path | None
    config: Path
    database_bytes: int = 0
    rows: dict[str, int] | None = None
    """Rows of the main tables in the copy (invoices, orders)."""


def render_config(settings: Settings, *, include_secrets: bool) -> str:
    """The configuration as a loadable ``.env``: ``lngate config show``'s, or with every secret
    and URL password written in (``include_secrets``)."""
    if not include_secrets:
        return render_dotenv(settings)
    values = {variable_name(field): getattr(settings, field) for field in Settings.model_fields}
    lines = ["# lngate configuration WITH its secrets (lngate backup --include-secrets).",
             "# Keep it as private as the keys themselves."]
    for entry in effective_entries(settings):
        raw = values[entry.name]
        text = entry.value
        if text is None or entry.note:  # a secret, or a URL whose password was left out
            text = raw.get_secret_value() if isinstance(raw, SecretStr) else str(raw)
        if "${" in text:  # python-dotenv expands ${...} even in quotes: no escape exists
            lines.append(f"# {entry.name} contains '${{': a .env reader expands it; check it")
        lines.append(f"{entry.name}={dotenv_value(text)}")
    return "\n".join(lines) + "\n"


def postgres_commands(url: str, dump_file: str) -> list[str]:
    """``pg_dump`` and ``pg_restore`` command lines for ``url``, its password left out."""
    bare, _ = strip_credentials(url)
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if bare.startswith(prefix):
            bare = "postgresql://" + bare[len(prefix):]
    quoted = "'" + bare.replace("'", "'\\''") + "'"
    return [
        f"pg_dump --format=custom --no-owner --file={dump_file} {quoted}",
        f"pg_restore --clean --if-exists --no-owner --dbname={quoted} {dump_file}",
    ]


def copy_sqlite(source: Path, target: Path) -> dict[str, int]:
    """Copy the SQLite database ``source`` to the new file ``target`` (mode 0600), consistently,
    while other processes may write to it; returns the rows of the main tables in the copy."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source} (DATABASE_URL)")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        # mode=rw: never create an empty database where the gateway's should be.
        src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from None
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)  # one step: one snapshot, whatever writers do meanwhile
            dst.execute("PRAGMA journal_mode=DELETE")
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"the copy of {source} fails its integrity check: {verdict}")
            rows = {}
            for table in _COUNTED_TABLES:
                with contextlib.suppress(sqlite3.OperationalError):  # not migrated yet
                    rows[table] = dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read {source}: {exc}") from None
    finally:
        src.close()
    _fsync(target)
    return rows


def make_backup(folder: Path, *, config_text: str, include_secrets: bool,
                sqlite_path: Path | None,
                progress: Callable[[str], None] = lambda _: None) -> BackupResult:
    """Write the backup folder ``folder`` (which must not exist): the SQLite copy when
    ``sqlite_path`` is given, and the configuration. All or nothing."""
    if folder.exists() or folder.is_symlink():
        raise BackupError(f"{folder} already exists: give --output a new folder")
    if sqlite_path is not None and not sqlite_path.is_file():
        raise BackupError(f"no SQLite database at {sqlite_path} (DATABASE_URL)")
    parent = folder.parent
    staging = parent / f".{folder.name}.partial-{secrets.token_hex(4)}"
    try:
        staging.mkdir(mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot write to {parent}: {exc.strerror or exc}") from None
    try:
        database = None
        rows = None
        size = 0
        if sqlite_path is not None:
            progress(f"copying the SQLite database {sqlite_path} "
                     f"({_size(sqlite_path)}, online backup) ...")
            rows = copy_sqlite(sqlite_path, staging / DATABASE_FILE)
            size = (staging / DATABASE_FILE).stat().st_size
            progress("database copied and checked: " + ", ".join(
                f"{count:,} {table}" for table, count in rows.items()))
            database = folder / DATABASE_FILE
        mode = 0o600 if include_secrets else 0o644
        progress(f"writing the configuration ({'with' if include_secrets else 'without'} "
                 "secrets) ...")
        _write_new(staging / CONFIG_FILE, config_text.encode(), mode)
        _fsync(staging)
        os.rename(staging, folder)  # atomic: the final name only ever holds a whole backup
        _fsync(parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"cannot write the backup in {parent}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupResult(folder, database, folder / CONFIG_FILE, size, rows)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "size unknown"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
