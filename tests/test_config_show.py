"""`lngate config show`: a .env (or JSON) that loads as it is and gives the same settings, and
never a secret, a password inside a URL included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from lngate.settings import Settings
from lngate.settings_export import dotenv_value, strip_credentials

NWC_URL = ("nostr+walletconnect://79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
           "?relay=wss%3A%2F%2Frelay.example.com&secret=" + "7" * 64)
SECRETS = {  # supplied from the environment when the saved file is loaded again
    "LNBITS_INVOICE_KEY": "invoice-key-secret-1",
    "LNBITS_ADMIN_KEY": "admin-key-secret-2",
    "LNBITS_WEBHOOK_SECRET": "webhook-secret-3-0123456789",
    "NWC_URL": NWC_URL,
    "ADMIN_TOKEN": "admin-token-secret-4",
    "RESEND_API_KEY": "re_secret_5",
    "SMTP_PASSWORD": "smtp-secret-6",
    "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/secret7",
    "PROVIDERS": "lnbits | name=node;type=clnrest;server=https://node.example.com:3010;"
                 "rune=rune-secret-8== | nwc",
}
PASSWORDS = ["db-pass-9", "query-pass-10", "redis-pass-11"]
CONFIGURATION = {
    **SECRETS,
    "LNBITS_ENDPOINT": "https://lnbits.example.com",
    "DATABASE_URL": "postgresql://gate:db-pass-9@db.example.com:5432/lngate"
                    "?sslmode=require&password=query-pass-10",
    "REDIS_URL": "redis://:redis-pass-11@127.0.0.1:6379/0",
    "LIGHTNING_NETWORK": "regtest",
    "LIGHTNING_TEST_MODE": "false",
    "RATE_LIMIT": "10 per second",
    "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
    "EMAIL_FROM": "Shop #1 <shop@example.com>",
    "EMAIL_FOLDER": "var/mail box",
    "HEALTH_CHECK_INTERVAL": "15",
    "ALERT_EMAIL": "ops@example.com",
    "HTTP_MAX_CONNECTIONS": "500",
    "PUBLIC_URL": "https://pay.example.com",
}


def lngate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``tmp_path`` with no lngate variable but ``env``."""
    names = set(Settings.model_fields) | {n.upper() for n in Settings.model_fields}
    base = {k: v for k, v in os.environ.items()
            if k.lower() not in names and k not in ("LNBITS_API_KEY", "NEXTAUTH_URL", "DEBUG")}
    return subprocess.run([sys.executable, "-m", "lngate", *args], env={**base, **env},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No lngate variable in this process's environment; a working directory without .env."""
    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name in ("LNBITS_API_KEY", "NEXTAUTH_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def comparable(settings: Settings) -> dict[str, Any]:
    """Every setting, a URL's password removed, secrets compared by value."""
    values = {}
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and "://" in value:
            value = strip_credentials(value)[0]
        values[field] = value
    return values


def test_saved_dotenv_loads_as_is_with_the_same_settings(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    """config show > file; loading that file (secrets from the environment) gives the same settings."""
    result = lngate(tmp_path, "config", "show", **CONFIGURATION)
    assert result.returncode == 0, result.stderr
    for secret in [*SECRETS.values(), *PASSWORDS, "7" * 64]:
        assert secret not in result.stdout
    saved = tmp_path / "backup.env"
    saved.write_text(result.stdout)
    for name, value in SECRETS.items():
        clean_environment.setenv(name, value)
    original = Settings(_env_file=None, **{  # type: ignore[call-arg]
        k: v for k, v in CONFIGURATION.items() if k not in SECRETS})
    loaded = Settings(_env_file=saved)  # type: ignore[call-arg]
    assert comparable(loaded) == comparable(original)
    assert loaded.database_url.get_secret_value() == (
        "postgresql://gate@db.example.com:5432/lngate?sslmode=require")
    assert loaded.email_from == "Shop #1 <shop@example.com>"
    assert loaded.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]


def test_secrets_are_comments_and_passwords_are_announced(tmp_path: Path) -> None:
    """A set secret is a comment line naming it; a URL's removed password is said so above it."""
    result = lngate(tmp_path, "config", "show", **CONFIGURATION)
    lines = result.stdout.splitlines()
    assert "# ADMIN_TOKEN is set: a secret, not printed" in lines
    assert not any(line.startswith(("ADMIN_TOKEN=", "NWC_URL=")) for line in lines)
    at = lines.index("DATABASE_URL=postgresql://gate@db.example.com:5432/lngate?sslmode=require")
    assert lines[at - 1] == "# DATABASE_URL: its password is not printed"
    assert "LNBITS_ENDPOINT=https://lnbits.example.com" in lines
    assert ("# PROVIDERS is set: a secret, not printed (providers in order: lnbits, "
            "node (clnrest), nwc)") in lines
    assert "REDIS_URL=redis://127.0.0.1:6379/0" in lines
    assert "LNBITS_NODE_PUBKEY=" in lines  # unset: blank


def test_default_configuration_round_trips(tmp_path: Path,
                                           clean_environment: pytest.MonkeyPatch) -> None:
    """With nothing set, the printed file loads to the defaults (the SQLite URL intact)."""
    result = lngate(tmp_path, "config", "show")
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=sqlite:///./var/lngate.sqlite3" in result.stdout.splitlines()
    saved = tmp_path / "backup.env"
    saved.write_text(result.stdout)
    loaded = Settings(_env_file=saved)  # type: ignore[call-arg]
    assert comparable(loaded) == comparable(Settings(_env_file=None))  # type: ignore[call-arg]


def test_json_round_trips_through_the_environment(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    """--json maps every variable to its text (null for a set secret); fed back, same settings."""
    result = lngate(tmp_path, "config", "show", "--json", **CONFIGURATION)
    assert result.returncode == 0, result.stderr
    for secret in [*SECRETS.values(), *PASSWORDS]:
        assert secret not in result.stdout
    values = json.loads(result.stdout)
    assert {name for name, value in values.items() if value is None} == set(SECRETS)
    for name, value in values.items():
        clean_environment.setenv(name, SECRETS[name] if value is None else value)
    loaded = Settings(_env_file=None)  # type: ignore[call-arg]
    original = Settings(_env_file=None, **{  # type: ignore[call-arg]
        k: v for k, v in CONFIGURATION.items() if k not in SECRETS})
    assert comparable(loaded) == comparable(original)


@pytest.mark.parametrize("text", ["plain", "a b <c@d>", "x #y", "it's", 'say "hi"', "back\\slash",
                                  " padded ", ""])
def test_dotenv_values_read_back_unchanged(tmp_path: Path, text: str) -> None:
    """Each value is written so that the .env reader gives it back as it was."""
    from dotenv import dotenv_values

    (tmp_path / "x.env").write_text(f"NAME={dotenv_value(text)}\n")
    assert dotenv_values(tmp_path / "x.env")["NAME"] == text
