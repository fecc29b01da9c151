"""What each provider type needs: one pydantic model per set of connection-string keys.

A spec is a provider as configured (``PROVIDERS``, or the shorthand ``LNBITS_*`` and
``NWC_URL`` variables), before anything is built. Its fields are the keys of a connection
string; secrets (the invoice key, the NWC URI, the rune, the macaroon) are ``SecretStr``, so
they are masked in reprs and found by :func:`lngate.config_secrets.secrets_in`. A spec builds
its provider's config dataclass (:meth:`ProviderSpec.config`) once when it is validated: every
check the provider makes (TLS files readable, a macaroon in hex...) happens when settings load,
and a provider that cannot be built stops start-up as a one-line configuration problem.

No message repeats a URL or a secret: a URL may carry a password or a token.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from lngate.config_secrets import SecretUrl

if TYPE_CHECKING:
    from lngate.providers.clnrest import ClnRestConfig
    from lngate.providers.lnbits import LNbitsConfig
    from lngate.providers.lndrest import LndRestConfig
    from lngate.providers.nwc import NWCConfig

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""A provider name: lowercase letters, digits, ``-`` and ``_``, at most 32 (the database's
``provider`` columns)."""
RESERVED_NAMES = frozenset({"test"})
"""Names the gateway uses itself (the test provider)."""
_NODE_KEY = re.compile(r"0[23][0-9a-f]{64}")
_CHECK_TIMEOUT = 5.0  # any positive value: the configs only check that it is positive


def check_server_url(value: str) -> str:
    """``value`` without a trailing ``/``, or ``ValueError``: an ``https`` URL, or ``http`` to a
    loopback address only; no user or password, query or fragment. The message never repeats
    the URL."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError("must not carry a user or password: the provider authenticates with "
                         "its own key")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL like https://node.example.com:3010")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"plain http:// to a non-loopback host ({parts.hostname}); use https:// "
                         "so keys are not sent in clear")
    return value


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_node_pubkey(value: str | None) -> str | None:
    """A compressed node key in lower-case hex, or ``ValueError``."""
    if value is None:
        return None
    key = value.strip().lower()
    if not _NODE_KEY.fullmatch(key):
        raise ValueError("must be a 33-byte compressed public key in hex (66 characters)")
    return key


class ProviderShorthand(BaseModel):
    """A bare ``lnbits`` or ``nwc`` entry: that provider as the ``LNBITS_*`` or ``NWC_URL``
    variables configure it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["lnbits", "nwc"]

    def __str__(self) -> str:
        return self.name


class ProviderSpec(BaseModel):
    """A configured provider: its unique name, its type (a row of the registry) and, optionally,
    the node key its invoices must be signed by."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str
    type: str
    node_pubkey: str | None = None
    """Pinned: the provider's invoices must be signed by this key from the first one on."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("must be 1 to 32 lowercase letters, digits, - or _ (starting with "
                             "a letter or digit)")
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved for the gateway's own test provider")
        return value

    @field_validator("node_pubkey")
    @classmethod
    def _node_pubkey(cls, value: str | None) -> str | None:
        return check_node_pubkey(value)

    @model_validator(mode="after")
    def _buildable(self) -> ProviderSpec:
        self.config(timeout=_CHECK_TIMEOUT)  # its ValueError names the problem, never a secret
        return self

    def config(self, *, timeout: float) -> object:
        """The provider's config dataclass, each call bounded by ``timeout`` seconds."""
        raise NotImplementedError


class _ServerSpec(ProviderSpec):
    """A provider reached over HTTP at ``server``."""

    server: str

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        return check_server_url(value)


class LNbitsSpec(_ServerSpec):
    """An LNbits wallet: ``server``, ``invoice_key``, optionally ``admin_key``."""

    invoice_key: SecretStr
    admin_key: SecretStr | None = None

    def config(self, *, timeout: float) -> LNbitsConfig:
        """The :class:`~lngate.providers.lnbits.LNbitsConfig` of this wallet."""
        from lngate.providers.lnbits import LNbitsConfig

        return LNbitsConfig(
            endpoint=self.server, invoice_key=self.invoice_key.get_secret_value(),
            admin_key=self.admin_key.get_secret_value() if self.admin_key else None,
            timeout=timeout,
        )


class NWCSpec(ProviderSpec):
    """An NWC wallet service: ``uri`` (``nostr+walletconnect://...``, a secret with its
    ``secret=`` parameter)."""

    uri: SecretUrl

    def config(self, *, timeout: float) -> NWCConfig:
        """The :class:`~lngate.providers.nwc.NWCConfig` (parses the URI: nostr-sdk is imported
        only when an NWC provider is configured)."""
        from lngate.providers.nwc import NWCConfig

        return NWCConfig(uri=self.uri.get_secret_value(), timeout=timeout)


TLS_KEYS = ("ca_cert", "tls_cert", "tls_fingerprint")


class _NodeSpec(_ServerSpec):
    """A Lightning node with its own certificate: at most one of ``ca_cert``, ``tls_cert``
    (file paths: a connection string cannot hold PEM text) and ``tls_fingerprint``; none: the
    system's CAs (a node behind a proxy with a public certificate)."""

    ca_cert: str | None = None
    tls_cert: str | None = None
    tls_fingerprint: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_tls_option(cls, data: object) -> object:
        if isinstance(data, dict):
            given = [key for key in TLS_KEYS if data.get(key)]
            if len(given) > 1:
                raise ValueError(f"give at most one of {', '.join(TLS_KEYS)}, not "
                                 f"{' and '.join(given)}")
        return data


class ClnRestSpec(_NodeSpec):
    """A Core Lightning node over clnrest: ``server``, ``rune``, a TLS option, optionally
    ``label_prefix``."""

    rune: SecretStr
    label_prefix: str = "lngate-"

    def config(self, *, timeout: float) -> ClnRestConfig:
        """The :class:`~lngate.providers.clnrest.ClnRestConfig` of this node (reads the
        certificate file, if any)."""
        from lngate.providers.clnrest import ClnRestConfig

        return ClnRestConfig(
            endpoint=self.server, rune=self.rune.get_secret_value(), ca_cert=self.ca_cert,
            tls_cert=self.tls_cert, tls_fingerprint=self.tls_fingerprint, timeout=timeout,
            label_prefix=self.label_prefix,
        )


class LndRestSpec(_NodeSpec):
    """An lnd node over its REST API: ``server``, ``macaroon`` (hex), a TLS option, optionally
    ``private_route_hints``."""

    macaroon: SecretStr
    private_route_hints: bool = False

    def config(self, *, timeout: float) -> LndRestConfig:
        """The :class:`~lngate.providers.lndrest.LndRestConfig` of this node (reads the
        certificate file, if any)."""
        from lngate.providers.lndrest import LndRestConfig

        return LndRestConfig(
            endpoint=self.server, macaroon=self.macaroon.get_secret_value(),
            tls_cert=self.tls_cert, tls_fingerprint=self.tls_fingerprint, ca_cert=self.ca_cert,
            timeout=timeout, private_route_hints=self.private_route_hints,
        )
