"""The effective configuration as a ``.env`` file or JSON (``lngate config show``), secrets out.

The ``.env`` form loads as it is (``Settings(_env_file=path)``) and gives the same settings,
secrets aside:

- a secret that is set (a ``SecretStr``: keys, tokens, the NWC and webhook URLs) is not written
  as an assignment but as a comment, ``# ADMIN_TOKEN is set: a secret, not printed``, so the file
  still loads and nothing in it can be mistaken for the real value; supply those from the
  environment (which wins over ``.env``) or write them back in. A setting that holds a secret
  inside (``PROVIDERS`` with a connection string: its rune, macaroon or key) is a secret too,
  its comment naming the providers it lists;
- a URL with a password in it (``DATABASE_URL``, ``REDIS_URL``, ``LNBITS_ENDPOINT``...) is
  written without the password (user info and ``password=``/``sslpassword=`` query parameters),
  with a comment saying so: PostgreSQL can then take it from ``PGPASSWORD`` or ``~/.pgpass``;
- an unset setting is written ``NAME=`` (blank means unset).

In JSON, every variable maps to the same text as in the ``.env`` form, and a secret that is set
maps to ``null``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from pydantic import AliasChoices, BaseModel, SecretStr

from lngate.config_secrets import secrets_in
from lngate.settings import Settings

CREDENTIAL_QUERY_KEYS = frozenset({"password", "sslpassword"})
_PLAIN_VALUE_FORBIDDEN = set("'\"#\\\r\n")


@dataclass(frozen=True, slots=True)
class Entry:
    """One variable: its text (``None`` for a secret that is set) and an optional note."""

    name: str
    value: str | None
    note: str | None = None


def variable_name(field: str) -> str:
    """The environment variable a settings field is read from (its first alias)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()


def strip_credentials(url: str) -> tuple[str, bool]:
    """``url`` without its password (user info and credential query parameters).

    Returns the URL and whether anything was removed. Everything else is kept byte for byte.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url, False
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    removed = False
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
        removed = True
    before_fragment, hash_, fragment = tail.partition("#")
    path, question, query = before_fragment.partition("?")
    if question:
        items = query.split("&")
        kept = [item for item in items
                if unquote(item.split("=", 1)[0]).lower() not in CREDENTIAL_QUERY_KEYS]
        if len(kept) != len(items):
            removed = True
            before_fragment = path + ("?" + "&".join(kept) if kept else "")
    return f"{scheme}://{netloc}{before_fragment}{hash_}{fragment}", removed


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(item, BaseModel) for item in value):
        return "|".join(str(item) for item in value)  # PROVIDERS' shorthands
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def effective_entries(settings: Settings) -> list[Entry]:
    """Every setting under its variable name, in declared order, without secrets."""
    entries = []
    for field in Settings.model_fields:
        name = variable_name(field)
        value = getattr(settings, field)
        if isinstance(value, SecretStr) and not _is_url_with_parts(value.get_secret_value(),
                                                                    field):
            entries.append(Entry(name, None, "a secret, not printed"))
            continue
        if not isinstance(value, SecretStr) and secrets_in(value):
            entries.append(Entry(name, None, _holds_secrets(value)))
            continue
        text = value.get_secret_value() if isinstance(value, SecretStr) else _text(value)
        if "://" in text:
            text, removed = strip_credentials(text)
            if removed:
                entries.append(Entry(name, text, "its password is not printed"))
                continue
        entries.append(Entry(name, text))
    return entries


def _holds_secrets(value: object) -> str:
    """The note of a setting holding secrets inside; for ``PROVIDERS``, the providers' order."""
    if not isinstance(value, list):
        return "a secret, not printed"
    listed = [f"{item.name} ({item.type})" if hasattr(item, "type") else str(item)
              for item in value]
    return f"a secret, not printed (providers in order: {', '.join(listed)})"


# URLs whose only secret is an embedded password; the NWC and alert webhook URLs are secrets
# as a whole (the token is the path or a query parameter), so they are never printed.
_CONNECTION_URLS = frozenset({"database_url", "redis_url"})


def _is_url_with_parts(value: str, field: str) -> bool:
    return field in _CONNECTION_URLS and "://" in value


def dotenv_value(text: str) -> str:
    """``text`` written so that a ``.env`` reader (python-dotenv) gives it back unchanged."""
    if text == text.strip() and not (_PLAIN_VALUE_FORBIDDEN & set(text)):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_dotenv(settings: Settings) -> str:
    """The ``.env`` form (see the module docstring)."""
    lines = ["# lngate effective configuration (environment, .env and defaults); secrets are",
             "# not printed: each is a comment below, to supply from the environment.",
             f"# demo mode (the test provider serves customers): "
             f"{'yes' if settings.demo_mode else 'no'}"]
    for entry in effective_entries(settings):
        if entry.value is None:
            lines.append(f"# {entry.name} is set: {entry.note}")
            continue
        if entry.note:
            lines.append(f"# {entry.name}: {entry.note}")
        if "${" in entry.value:
            lines.append(f"# {entry.name} contains '${{': a .env reader expands it; check it")
        lines.append(f"{entry.name}={dotenv_value(entry.value)}")
    return "\n".join(lines) + "\n"


def render_json(settings: Settings) -> dict[str, str | None]:
    """The JSON form: variable -> text, ``None`` for a secret that is set."""
    return {entry.name: entry.value for entry in effective_entries(settings)}
