"""Configuration from the environment and an optional ``.env`` file (pydantic-settings).

Only :mod:`lngate.bootstrap`, :mod:`lngate.web` and :mod:`lngate.cli` read :class:`Settings`;
everything else receives plain values. Every variable is documented in ``.env.example`` and
``docs/configuration.md``. A configuration that cannot work stops start-up with a message
naming the variable; secrets are ``SecretStr`` and never appear in a repr or a log line.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from lngate.config_secrets import SecretUrl
from lngate.domain import Network
from lngate.notify.addresses import InvalidAddress, parse_mailbox
from lngate.provider_registry import ProviderEntry, parse_providers
from lngate.rate_limit_notation import parse_limit
from lngate.provider_specs import (
    LNbitsSpec,
    NWCSpec,
    ProviderShorthand,
    ProviderSpec,
    check_node_pubkey,
    check_server_url,
    is_loopback,
)

DEFAULT_DATABASE_URL = "sqlite:///./var/lngate.sqlite3"


class ConfigError(Exception):
    """The configuration cannot work: one line per problem, each naming its variable."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else problems
        super().__init__("\n".join(f"invalid configuration: {p}" for p in self.problems))


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
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"plain http:// to a non-loopback host ({parts.hostname}); "
            "use https:// so keys are not sent in clear"
        )
    return value


class Settings(BaseSettings):
    """Every setting of the gateway. Names match the original system's where it had one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True,
        # A blank `NAME=` in the environment must still shadow the .env file, so blanks are
        # kept while the sources are merged and dropped afterwards (see _blank_means_unset).
        env_ignore_empty=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, data: object) -> object:
        """``NAME=`` means "not set": the default applies, whichever source said it."""
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items()
                if not (isinstance(value, str) and not value.strip())}

    # --- providers ----------------------------------------------------------------------
    providers: Annotated[list[ProviderSpec | ProviderShorthand], NoDecode] = Field(
        default_factory=list, validation_alias="PROVIDERS"
    )
    """The providers in priority order, as written (see :mod:`lngate.provider_registry`);
    :attr:`provider_specs` is the resolved list."""
    _provider_specs: list[ProviderSpec] = PrivateAttr(default_factory=list)
    lnbits_endpoint: str | None = Field(default=None, validation_alias="LNBITS_ENDPOINT")
    lnbits_invoice_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LNBITS_INVOICE_KEY", "LNBITS_API_KEY")
    )
    lnbits_admin_key: SecretStr | None = Field(default=None, validation_alias="LNBITS_ADMIN_KEY")
    lnbits_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="LNBITS_WEBHOOK_SECRET"
    )
    lnbits_node_pubkey: str | None = Field(default=None, validation_alias="LNBITS_NODE_PUBKEY")
    nwc_url: SecretUrl | None = Field(default=None, validation_alias="NWC_URL")
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
        default=0.5, gt=0, le=60, validation_alias="ATTEMPT_TIMEOUT_FLOOR"
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
    redis_url: SecretUrl | None = Field(default=None, validation_alias="REDIS_URL")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="TRUSTED_PROXIES"
    )
    rate_limit_check: str = Field(default="120/minute", validation_alias="RATE_LIMIT_CHECK")
    rate_limit_webhook: str = Field(default="600/minute", validation_alias="RATE_LIMIT_WEBHOOK")
    check_reuse_seconds: float = Field(default=2.0, ge=0, le=60,
                                       validation_alias="CHECK_REUSE_SECONDS")
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"], validation_alias="CORS_ALLOW_ORIGINS"
    )
    max_creates_in_flight: int = Field(default=64, ge=0, le=100_000,
                                       validation_alias="MAX_CREATES_IN_FLIGHT")

    # --- HTTP server (`lngate serve`) ---------------------------------------------------
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024,
                                       validation_alias="HTTP_MAX_HEADER_BYTES")
    http_max_headers: int = Field(default=100, ge=10, le=1000, validation_alias="HTTP_MAX_HEADERS")
    http_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300,
                                             validation_alias="HTTP_READ_TIMEOUT_SECONDS")
    http_keepalive_timeout_seconds: int = Field(default=5, ge=1, le=300,
                                                validation_alias="HTTP_KEEPALIVE_TIMEOUT_SECONDS")
    http_max_connections: int | None = Field(default=None, ge=16, le=1_000_000,
                                             validation_alias="HTTP_MAX_CONNECTIONS")

    # --- storage, email, logs -----------------------------------------------------------
    database_url: SecretUrl = Field(
        default=SecretUrl(DEFAULT_DATABASE_URL), validation_alias="DATABASE_URL"
    )
    resend_api_key: SecretStr | None = Field(default=None, validation_alias="RESEND_API_KEY")
    debug: str = Field(default="", validation_alias="DEBUG")
    log_format: str = Field(default="auto", validation_alias="LOG_FORMAT")

    # --- monitoring: health probes, metrics, alerts ---------------------------------------
    health_check_interval: float = Field(default=30.0, gt=0, le=3600,
                                         validation_alias="HEALTH_CHECK_INTERVAL")
    health_check_timeout: float = Field(default=1.0, gt=0, le=60,
                                        validation_alias="HEALTH_CHECK_TIMEOUT")
    metrics_retention_days: int = Field(default=30, ge=1, le=3650,
                                        validation_alias="METRICS_RETENTION_DAYS")
    metrics_window_hours: float = Field(default=24.0, gt=0, le=24 * 3650,
                                        validation_alias="METRICS_WINDOW_HOURS")
    alert_failure_count: int = Field(default=4, ge=1, le=1000, validation_alias="ALERT_FAILURE_COUNT")
    alert_failure_window: int = Field(default=5, ge=1, le=1000,
                                      validation_alias="ALERT_FAILURE_WINDOW")
    alert_slow_response_seconds: float = Field(default=10.0, gt=0, le=3600,
                                               validation_alias="ALERT_SLOW_RESPONSE_SECONDS")
    alert_unavailable_seconds: float = Field(default=300.0, ge=0, le=86400,
                                             validation_alias="ALERT_UNAVAILABLE_SECONDS")
    alert_cooldown_seconds: float = Field(default=900.0, ge=0, le=7 * 86400,
                                          validation_alias="ALERT_COOLDOWN_SECONDS")
    alert_recovery_calls: int = Field(default=3, ge=1, le=1000,
                                      validation_alias="ALERT_RECOVERY_CALLS")
    alert_email: str | None = Field(default=None, validation_alias="ALERT_EMAIL")
    alert_slack_webhook_url: SecretStr | None = Field(default=None,
                                                      validation_alias="ALERT_SLACK_WEBHOOK_URL")
    alert_discord_webhook_url: SecretStr | None = Field(
        default=None, validation_alias="ALERT_DISCORD_WEBHOOK_URL")
    alert_channel_timeout_seconds: float = Field(default=10.0, gt=0, le=120,
                                                 validation_alias="ALERT_CHANNEL_TIMEOUT_SECONDS")

    @field_validator("alert_email", "alert_slack_webhook_url", "alert_discord_webhook_url",
                     mode="before")
    @classmethod
    def _monitoring_blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("alert_email")
    @classmethod
    def _alert_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_mailbox(value, local=True).address
        except InvalidAddress as exc:
            raise ValueError(f"must be one email address like ops@example.com, got {value!r} "
                             f"({exc})") from None

    @field_validator("alert_slack_webhook_url", "alert_discord_webhook_url")
    @classmethod
    def _alert_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            return SecretStr(_check_http_url(value.get_secret_value()))
        except ValueError:  # the URL embeds the webhook's token: the message must not echo it
            raise ValueError("must be an https:// webhook URL (plain http:// only to a "
                             "loopback address)") from None

    @model_validator(mode="after")
    def _monitoring_coherent(self) -> Settings:
        if self.alert_failure_count > self.alert_failure_window:
            raise ValueError("ALERT_FAILURE_COUNT must not exceed ALERT_FAILURE_WINDOW")
        return self

    # --- payments: orders, catalog, webhook, reconciler, outbox, emails, push -------------
    # Catalog prices in sats; the client never sets a price except a DazPay amount.
    dazbox_price_sats: int = Field(default=400_000, ge=1, validation_alias="DAZBOX_PRICE_SATS")
    dazbox_max_quantity: int = Field(default=10, ge=1, le=1000,
                                     validation_alias="DAZBOX_MAX_QUANTITY")
    daznode_monthly_sats: int = Field(default=80_000, ge=1,
                                      validation_alias="DAZNODE_MONTHLY_SATS")
    daznode_yearly_discount_percent: int = Field(
        default=0, ge=0, le=90, validation_alias="DAZNODE_YEARLY_DISCOUNT_PERCENT"
    )
    dazpay_min_sats: int = Field(default=1, ge=1, validation_alias="DAZPAY_MIN_SATS")
    reconcile_interval_seconds: float = Field(
        default=15.0, gt=0, le=3600, validation_alias="RECONCILE_INTERVAL_SECONDS"
    )
    reconcile_margin_seconds: int = Field(
        default=600, ge=0, le=7 * 86400, validation_alias="RECONCILE_MARGIN_SECONDS"
    )
    reconcile_batch_size: int = Field(default=500, ge=1, le=10_000,
                                      validation_alias="RECONCILE_BATCH_SIZE")
    reconcile_concurrency: int = Field(default=16, ge=1, le=256,
                                       validation_alias="RECONCILE_CONCURRENCY")
    # The reconciler's schedule (services/reconciler.py): first check, then gaps growing with
    # the invoice's age up to a maximum, one at expiry, the last at expiry + the margin.
    reconcile_first_check_seconds: float = Field(
        default=60.0, ge=0, le=86400, validation_alias="RECONCILE_FIRST_CHECK_SECONDS"
    )
    reconcile_backoff_factor: float = Field(default=2.0, ge=1, le=10,
                                            validation_alias="RECONCILE_BACKOFF_FACTOR")
    reconcile_max_gap_seconds: float = Field(
        default=600.0, gt=0, le=86400, validation_alias="RECONCILE_MAX_GAP_SECONDS"
    )
    reconcile_lease_seconds: float = Field(default=60.0, ge=10, le=3600,
                                           validation_alias="RECONCILE_LEASE_SECONDS")
    reconcile_lookups_per_second: float = Field(
        default=20.0, ge=0, le=10_000, validation_alias="RECONCILE_LOOKUPS_PER_SECOND"
    )

    @model_validator(mode="after")
    def _reconcile_schedule_coherent(self) -> Settings:
        if self.reconcile_max_gap_seconds < self.reconcile_first_check_seconds:
            raise ValueError("RECONCILE_MAX_GAP_SECONDS must not be shorter than "
                             "RECONCILE_FIRST_CHECK_SECONDS")
        return self

    smtp_host: str | None = Field(default=None, validation_alias="SMTP_HOST")
    smtp_port: int | None = Field(default=None, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    smtp_tls: str = Field(default="starttls", validation_alias="SMTP_TLS")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120,
                                        validation_alias="SMTP_TIMEOUT_SECONDS")
    email_from: str = Field(default="DazNode <noreply@localhost>", validation_alias="EMAIL_FROM")
    shop_email: str | None = Field(default=None, validation_alias="SHOP_EMAIL")
    resend_api_url: str = Field(default="https://api.resend.com", validation_alias="RESEND_API_URL")
    email_folder: Path = Field(default=Path("var/outbox-mail"), validation_alias="EMAIL_FOLDER")
    outbox_poll_interval_seconds: float = Field(
        default=2.0, gt=0, le=86400, validation_alias="OUTBOX_POLL_INTERVAL_SECONDS"
    )
    outbox_max_attempts: int = Field(default=8, ge=1, le=100,
                                     validation_alias="OUTBOX_MAX_ATTEMPTS")
    outbox_backoff_seconds: float = Field(
        default=30.0, gt=0, le=86400, validation_alias="OUTBOX_BACKOFF_SECONDS"
    )
    outbox_lease_seconds: float = Field(default=120.0, gt=0, le=86400,
                                        validation_alias="OUTBOX_LEASE_SECONDS")
    sse_recheck_seconds: float = Field(default=3.0, gt=0, le=60,
                                       validation_alias="SSE_RECHECK_SECONDS")
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300,
                                         validation_alias="SSE_HEARTBEAT_SECONDS")
    sse_max_seconds: float = Field(default=900.0, gt=0, le=86400,
                                   validation_alias="SSE_MAX_SECONDS")

    # --- back office: operator sessions in the browser (web/admin_session.py) ---------------
    admin_session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60,
                                       validation_alias="ADMIN_SESSION_MINUTES")
    rate_limit_admin_login: str = Field(default="5/minute",
                                        validation_alias="RATE_LIMIT_ADMIN_LOGIN")

    @field_validator("rate_limit_admin_login")
    @classmethod
    def _admin_login_rate_limit(cls, value: str) -> str:
        return parse_limit(value).text

    @field_validator(
        "lnbits_endpoint", "lnbits_node_pubkey", "lnbits_invoice_key", "lnbits_admin_key",
        "lnbits_webhook_secret", "nwc_url", "admin_token", "redis_url", "resend_api_key",
        "smtp_host", "smtp_username", "smtp_password", "shop_email", "smtp_port",
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
        return None if value is None else check_server_url(value)

    @field_validator("providers", mode="before")
    @classmethod
    def _parse_providers(cls, value: object) -> object:
        """Entries as text (a list of texts: one entry each) become specs and shorthands."""
        if isinstance(value, str):
            return parse_providers(value)
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return parse_providers("\n".join(value))
        return value

    @field_validator("nwc_url")
    @classmethod
    def _nwc_url(cls, value: SecretUrl | None) -> SecretUrl | None:
        """Parsed here, with the provider's own parser, so a bad URI stops start-up at once."""
        if value is None:
            return None
        from lngate.providers.nwc import parse_nwc_url  # nostr-sdk: only when NWC is used

        parse_nwc_url(value.get_secret_value())  # its messages never contain the secret
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretUrl) -> SecretUrl:
        check_database_url(value.get_secret_value())
        return value

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
        return check_node_pubkey(value)

    @field_validator("rate_limit", "rate_limit_check", "rate_limit_webhook")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        return parse_limit(value).text

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

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        for origin in value if isinstance(value, list) else []:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                                  or parts.path or parts.query):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com "
                                 "(or * for any)")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "json", "console"):
            raise ValueError("must be auto, json or console")
        return value

    @field_validator("smtp_tls")
    @classmethod
    def _smtp_tls(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("none", "starttls", "tls"):
            raise ValueError("must be none, starttls or tls")
        return value

    @field_validator("email_from", "shop_email")
    @classmethod
    def _email_header(cls, value: str | None, info: ValidationInfo) -> str | None:
        """EMAIL_FROM: an address, optionally with a display name (kept as written: the senders
        parse it with the same validator); SHOP_EMAIL: one address, kept normalized."""
        if value is None:
            return None
        sender = info.field_name == "email_from"
        try:
            mailbox = parse_mailbox(value, local=True, display_name=sender)
        except InvalidAddress as exc:
            example = "DazNode <noreply@example.com>" if sender else "shop@example.com"
            raise ValueError(f"must be an email address like {example}, got {value!r} "
                             f"({exc})") from None
        return value.strip() if sender else mailbox.address

    @field_validator("lnbits_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (it keys the webhook tokens)")
        return value

    @field_validator("resend_api_url")
    @classmethod
    def _resend_url(cls, value: str) -> str:
        return _check_http_url(value)

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
        return self

    @model_validator(mode="after")
    def _resolve_providers(self) -> Settings:
        """Resolve shorthands into specs, in priority order, and check the names are unique
        and that no provider variable is set for nothing. Without ``PROVIDERS``: LNbits (when
        ``LNBITS_ENDPOINT`` is set), then NWC (when ``NWC_URL`` is)."""
        entries: list[ProviderEntry] = list(self.providers)
        if not entries:
            entries += [ProviderShorthand(name="lnbits")] if self.lnbits_configured else []
            entries += [ProviderShorthand(name="nwc")] if self.nwc_url is not None else []
        problems: list[str] = []
        specs: list[ProviderSpec] = []
        for entry in entries:
            try:
                spec = (self._shorthand_spec(entry) if isinstance(entry, ProviderShorthand)
                        else entry)
            except ValidationError as exc:  # its variables passed their own checks: unlikely
                problems += [f"PROVIDERS: {entry.name}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors(include_input=False, include_url=False)]
                continue
            if spec is None:
                needs = ("LNBITS_ENDPOINT and LNBITS_INVOICE_KEY" if entry.name == "lnbits"
                         else "NWC_URL")
                problems.append(f"PROVIDERS: {entry.name} is listed but {needs} is not set")
            elif any(s.name == spec.name for s in specs):
                problems.append(f"PROVIDERS: the name {spec.name!r} is given to more than one "
                                "provider")
            else:
                specs.append(spec)
        listed = {e.name for e in self.providers if isinstance(e, ProviderShorthand)}
        if self.providers:
            for shorthand, variable, value in (("lnbits", "LNBITS_ENDPOINT", self.lnbits_endpoint),
                                               ("nwc", "NWC_URL", self.nwc_url)):
                if value is not None and shorthand not in listed:
                    problems.append(f"{variable}: is set, but PROVIDERS does not list "
                                    f"{shorthand}: add {shorthand} to PROVIDERS where it "
                                    f"belongs in the order, or unset {variable}")
        if problems:
            raise ValueError("\n".join(problems))
        self._provider_specs = specs
        return self

    def _shorthand_spec(self, entry: ProviderShorthand) -> ProviderSpec | None:
        """The spec a bare ``lnbits`` or ``nwc`` stands for; ``None`` when its variables are
        not set."""
        if entry.name == "lnbits":
            if not (self.lnbits_endpoint and self.lnbits_invoice_key):
                return None
            return LNbitsSpec(name="lnbits", type="lnbits", server=self.lnbits_endpoint,
                              invoice_key=self.lnbits_invoice_key,
                              admin_key=self.lnbits_admin_key,
                              node_pubkey=self.lnbits_node_pubkey)
        if self.nwc_url is None:
            return None
        return NWCSpec(name="nwc", type="nwc", uri=self.nwc_url)

    # --- derived ------------------------------------------------------------------------
    @property
    def lnbits_configured(self) -> bool:
        """True when the LNbits provider has what it needs."""
        return bool(self.lnbits_endpoint and self.lnbits_invoice_key)

    @property
    def provider_specs(self) -> list[ProviderSpec]:
        """The configured providers in priority order: ``PROVIDERS`` with its shorthands
        resolved, or (without it) LNbits then NWC from their own variables."""
        return list(self._provider_specs)

    @property
    def real_provider_configured(self) -> bool:
        """True when at least one real (non-test) provider is configured."""
        return bool(self._provider_specs)

    @property
    def test_mode(self) -> bool:
        """``LIGHTNING_TEST_MODE`` as given, else on only with no real provider; what it means
        depends on :attr:`demo_mode`."""
        if self.lightning_test_mode is None:
            return not self.real_provider_configured
        return self.lightning_test_mode

    @property
    def demo_mode(self) -> bool:
        """Pure demo mode: the test provider serves customers. Only when no real provider is
        configured and ``LIGHTNING_TEST_MODE`` is not ``false``; beside a real provider the
        test provider is private (the admin's simulations)."""
        return self.test_mode and not self.real_provider_configured

    @property
    def verbose(self) -> bool:
        """``DEBUG=lightning:*`` (or ``*``) turns on verbose logs."""
        patterns = [p.strip() for p in self.debug.split(",")]
        return any(p in ("*", "lightning:*", "lightning") for p in patterns)

    def sqlite_path(self) -> Path | None:
        """The database file for a SQLite URL (``None`` for PostgreSQL or in-memory)."""
        url = self.database_url.get_secret_value()
        if not url.startswith("sqlite"):
            return None
        path = url.split("///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)


def check_database_url(url: str) -> None:
    """Raise ``ValueError`` when ``url`` is not a usable SQLite or PostgreSQL URL.

    The message never repeats the URL: it may carry a password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url.startswith(("sqlite://", "sqlite+aiosqlite://", "postgresql://", "postgres://",
                           "postgresql+asyncpg://")):
        raise ValueError("must start with sqlite:/// or postgresql://")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("is not a valid database URL (postgresql://user:password@host:5432/db "
                         "or sqlite:///path/to/file.sqlite3)") from None
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise ValueError("names no file: sqlite:///relative/path.sqlite3 or "
                         "sqlite:////absolute/path.sqlite3")


def load_settings(**overrides: Any) -> Settings:
    """Read settings; a configuration that cannot work raises :class:`ConfigError`.

    There is one problem per line, each naming its variable, without echoing secrets.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            variable = _variable_name(str(error["loc"][0])) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            # a check may report several problems, one per line (PROVIDERS does)
            problems += [f"{variable}: {line}" if variable else line
                         for line in message.splitlines()]
        raise ConfigError(problems) from None
    except SettingsError as exc:  # e.g. a .env file that cannot be parsed
        raise ConfigError([str(exc).splitlines()[0]]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the .env file: {exc}"]) from None


def _variable_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return field.upper()
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()
