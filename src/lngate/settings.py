"""Configuration from the environment and an optional ``.env`` file (pydantic-settings).

Only :mod:`lngate.bootstrap`, :mod:`lngate.web` and :mod:`lngate.cli` read :class:`Settings`;
everything else receives plain values. Every variable is documented in ``.env.example`` and
``docs/configuration.md``. A configuration that cannot work stops start-up with a message
naming the variable; secrets are ``SecretStr`` and never appear in a repr or a log line.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lngate.domain import Network

DEFAULT_DATABASE_URL = "sqlite:///./var/lngate.sqlite3"
_RATE_LIMIT = re.compile(r"^\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*$", re.I)


class ConfigError(Exception):
    """The configuration cannot work; the message names the variable(s) to fix."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_http_url(value: str) -> str:
    """Refuse a malformed URL, and ``http://`` to anything but loopback."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL like https://lnbits.example.com, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"invalid port in {value!r}") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"plain http:// to a non-loopback host ({parts.hostname}); "
            "use https:// so keys are not sent in clear"
        )
    return value


class Settings(BaseSettings):
    """Every setting of the gateway. Names match the original system's where it had one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- providers ----------------------------------------------------------------------
    lnbits_endpoint: str | None = Field(default=None, validation_alias="LNBITS_ENDPOINT")
    lnbits_invoice_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LNBITS_INVOICE_KEY", "LNBITS_API_KEY")
    )
    lnbits_admin_key: SecretStr | None = Field(default=None, validation_alias="LNBITS_ADMIN_KEY")
    lnbits_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="LNBITS_WEBHOOK_SECRET"
    )
    lnbits_node_pubkey: str | None = Field(default=None, validation_alias="LNBITS_NODE_PUBKEY")
    nwc_url: SecretStr | None = Field(default=None, validation_alias="NWC_URL")
    lightning_test_mode: bool | None = Field(default=None, validation_alias="LIGHTNING_TEST_MODE")
    lightning_network: Network = Field(default=Network.BITCOIN, validation_alias="LIGHTNING_NETWORK")
    provider_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, validation_alias="PROVIDER_TIMEOUT_SECONDS"
    )

    # --- failover -----------------------------------------------------------------------
    create_deadline_seconds: float = Field(
        default=3.0, gt=0, le=60, validation_alias="CREATE_DEADLINE_SECONDS"
    )
    attempt_timeout_default: float = Field(
        default=1.5, gt=0, le=60, validation_alias="ATTEMPT_TIMEOUT_DEFAULT"
    )
    attempt_timeout_floor: float = Field(
        default=0.25, gt=0, le=60, validation_alias="ATTEMPT_TIMEOUT_FLOOR"
    )
    attempt_timeout_ceiling: float = Field(
        default=2.0, gt=0, le=60, validation_alias="ATTEMPT_TIMEOUT_CEILING"
    )
    attempt_timeout_p95_factor: float = Field(
        default=3.0, gt=0, le=100, validation_alias="ATTEMPT_TIMEOUT_P95_FACTOR"
    )
    breaker_failure_threshold: int = Field(
        default=3, ge=1, le=1000, validation_alias="BREAKER_FAILURE_THRESHOLD"
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0, ge=0, le=3600, validation_alias="BREAKER_COOLDOWN_SECONDS"
    )

    # --- invoices -----------------------------------------------------------------------
    max_invoice_sats: int = Field(default=1_000_000, ge=1, validation_alias="MAX_INVOICE_SATS")
    invoice_expiry_seconds: int = Field(
        default=3600, ge=60, le=86400, validation_alias="INVOICE_EXPIRY_SECONDS"
    )

    # --- web ----------------------------------------------------------------------------
    public_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias=AliasChoices("PUBLIC_URL", "NEXTAUTH_URL")
    )
    admin_token: SecretStr | None = Field(default=None, validation_alias="ADMIN_TOKEN")
    rate_limit: str = Field(default="60/minute", validation_alias="RATE_LIMIT")
    redis_url: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="TRUSTED_PROXIES"
    )

    # --- storage, email, logs -----------------------------------------------------------
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL), validation_alias="DATABASE_URL"
    )
    resend_api_key: SecretStr | None = Field(default=None, validation_alias="RESEND_API_KEY")
    debug: str = Field(default="", validation_alias="DEBUG")
    log_format: str = Field(default="auto", validation_alias="LOG_FORMAT")

    @field_validator(
        "lnbits_endpoint", "lnbits_node_pubkey", "lnbits_invoice_key", "lnbits_admin_key",
        "lnbits_webhook_secret", "nwc_url", "admin_token", "redis_url", "resend_api_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty variable (``LNBITS_ENDPOINT=``) means "not configured"."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("lightning_network", mode="before")
    @classmethod
    def _network_by_name(cls, value: object) -> object:
        if isinstance(value, str) and value not in {n.value for n in Network}:
            return Network.from_name(value)
        return value

    @field_validator("lnbits_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("lnbits_node_pubkey")
    @classmethod
    def _pubkey(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"0[23][0-9a-fA-F]{64}", value.strip()):
            raise ValueError("must be a 33-byte compressed public key in hex (66 characters)")
        return value.strip().lower() if value else value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if not _RATE_LIMIT.match(value):
            raise ValueError(f"must look like '60/minute' or '10 per second', got {value!r}")
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        for item in value if isinstance(value, list) else []:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "json", "console"):
            raise ValueError("must be auto, json or console")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.lnbits_endpoint and self.lnbits_invoice_key is None:
            raise ValueError(
                "LNBITS_ENDPOINT is set but LNBITS_INVOICE_KEY (or LNBITS_API_KEY) is missing"
            )
        if self.lnbits_invoice_key is not None and not self.lnbits_endpoint:
            raise ValueError("LNBITS_INVOICE_KEY is set but LNBITS_ENDPOINT is missing")
        if not (self.attempt_timeout_floor <= self.attempt_timeout_default
                <= self.attempt_timeout_ceiling):
            raise ValueError("ATTEMPT_TIMEOUT_FLOOR <= ATTEMPT_TIMEOUT_DEFAULT <= "
                             "ATTEMPT_TIMEOUT_CEILING must hold")
        url = self.database_url.get_secret_value()
        if not url.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("DATABASE_URL must start with sqlite:// or postgresql://")
        return self

    # --- derived ------------------------------------------------------------------------
    @property
    def lnbits_configured(self) -> bool:
        """True when the LNbits provider has what it needs."""
        return bool(self.lnbits_endpoint and self.lnbits_invoice_key)

    @property
    def real_provider_configured(self) -> bool:
        """True when at least one real (non-test) provider is configured."""
        return self.lnbits_configured or self.nwc_url is not None

    @property
    def test_mode(self) -> bool:
        """Whether the test provider runs: explicit setting, else only with no real provider."""
        if self.lightning_test_mode is None:
            return not self.real_provider_configured
        return self.lightning_test_mode

    @property
    def verbose(self) -> bool:
        """``DEBUG=lightning:*`` (or ``*``) turns on verbose logs."""
        patterns = [p.strip() for p in self.debug.split(",")]
        return any(p in ("*", "lightning:*", "lightning") for p in patterns)

    def sqlite_path(self) -> Path | None:
        """The database file for a SQLite URL (``None`` for PostgreSQL or in-memory)."""
        if not (self.attempt_timeout_floor <= self.attempt_timeout_default
                <= self.attempt_timeout_ceiling):
            raise ValueError("ATTEMPT_TIMEOUT_FLOOR <= ATTEMPT_TIMEOUT_DEFAULT <= "
                             "ATTEMPT_TIMEOUT_CEILING must hold")
        url = self.database_url.get_secret_value()
        if not url.startswith("sqlite"):
            return None
        path = url.split("///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)


def load_settings(**overrides: object) -> Settings:
    """Read settings; a configuration that cannot work raises :class:`ConfigError`.

    The message lists each offending variable with what is wrong, without echoing secrets.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            variable = _variable_name(str(error["loc"][0])) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{variable}: {message}" if variable else message)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _variable_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return field.upper()
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()
