"""Secrets in the configuration, found from their type.

Every secret a setting holds is a ``SecretStr``: masked in every ``repr``, never printed by
``lngate config show``. :func:`secrets_in` walks a settings model (nested models, such as the
parsed provider specs, and lists of them included) and returns every such value, so the log
redaction guard covers a new secret setting the moment it is declared, with no list to keep.

A :class:`SecretUrl` is a URL that is a secret as a whole and whose credentials (the user-info
password, and ``password=``, ``sslpassword=`` and ``secret=`` query parameters: a database
password, the NWC URI's ``secret``) are secrets on their own too: a log line that shows only
the password must not leak it either.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, SecretStr

CREDENTIAL_PARAMETERS = frozenset({"password", "sslpassword", "secret"})


class SecretUrl(SecretStr):
    """A secret URL whose embedded credentials are secrets too (see the module docstring)."""

    def embedded_secrets(self) -> list[str]:
        """The user-info password and credential query parameters of the URL."""
        text = self.get_secret_value()
        try:
            parts = urlsplit(text)
            password = parts.password
        except ValueError:  # a malformed URL: the whole value is still a secret
            return []
        found = [unquote(password)] if password else []
        found += [value for key, value in parse_qsl(parts.query, keep_blank_values=False)
                  if key.lower() in CREDENTIAL_PARAMETERS]
        return found


def secrets_in(value: object) -> list[str]:
    """Every secret held in ``value``: its ``SecretStr`` values, walked through models, lists,
    tuples and dicts, with each :class:`SecretUrl`'s embedded credentials; blanks left out."""
    return [secret for secret in _walk(value) if secret]


def _walk(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
        if isinstance(value, SecretUrl):
            yield from value.embedded_secrets()
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _walk(getattr(value, field))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
