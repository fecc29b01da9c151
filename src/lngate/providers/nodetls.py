"""How to trust a Lightning node's own TLS certificate (LND's ``tls.cert``, clnrest's certificates).

Nodes serve self-signed certificates, so the system's CAs cannot vouch for them. Three ways,
exactly one of which a configuration may choose:

- **pinned certificate** (``cert``: the PEM file or its text, e.g. LND's ``tls.cert`` or
  clnrest's ``server.pem``): the server must present exactly that certificate, compared by
  its SHA-256; the chain and the host name are not checked (the pin is stronger than both);
- **pinned fingerprint** (``fingerprint``: the SHA-256 of the certificate, hex, colons
  allowed: what ``openssl x509 -noout -fingerprint -sha256 -in tls.cert`` prints): the same,
  without a file to copy;
- **CA** (``ca_cert``: PEM file or text, e.g. clnrest's ``ca.pem``): ordinary verification
  against that CA only, host name included.

With none of them the system's CAs are used (a node behind a reverse proxy with a public
certificate). A certificate that does not match makes every call fail before any byte is sent:
the provider is unavailable, never talked to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from lngate.providers.http import tls_context

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
TlsOption = ssl.SSLContext | aiohttp.Fingerprint | None
"""What a session's connector takes: a context, a pin, or ``None`` for the system's CAs."""


def read_pem(value: str, *, what: str) -> str:
    """``value`` as PEM text: the text itself, or the content of the file it names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    path = Path(value).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {value!r}: {exc.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{what}: {value!r} holds no PEM certificate")
    return text


def cert_fingerprint(pem: str, *, what: str) -> str:
    """The SHA-256 (hex) of the first certificate in ``pem``, as the server presents it."""
    begin, finish = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = pem.find(begin)
    end = pem.find(finish, start)
    if start < 0 or end < 0:
        raise ValueError(f"{what}: not a PEM certificate")
    try:
        der = ssl.PEM_cert_to_DER_cert(pem[start:end + len(finish)])
    except ValueError:  # binascii.Error included
        raise ValueError(f"{what}: the PEM certificate is not valid base64") from None
    return hashlib.sha256(der).hexdigest()


def normalise_fingerprint(value: str, *, what: str) -> str:
    """A SHA-256 fingerprint as 64 lowercase hex digits (colons, spaces and case ignored)."""
    text = re.sub(r"[\s:]", "", value).lower()
    if text.startswith("sha256fingerprint="):
        text = text.removeprefix("sha256fingerprint=")
    if not _FINGERPRINT.fullmatch(text):
        raise ValueError(f"{what}: a SHA-256 fingerprint is 64 hex digits")
    return text


def tls_option(
    *, ca_cert: str | None = None, cert: str | None = None, fingerprint: str | None = None,
    what: str = "TLS",
) -> TlsOption:
    """The connector setting for a node; raises ``ValueError`` naming what is wrong.

    Give at most one of ``ca_cert``, ``cert`` and ``fingerprint`` (see the module).
    """
    chosen = [name for name, value in
              (("ca_cert", ca_cert), ("cert", cert), ("fingerprint", fingerprint)) if value]
    if len(chosen) > 1:
        raise ValueError(f"{what}: give only one of {', '.join(chosen)}")
    if fingerprint:
        digest = normalise_fingerprint(fingerprint, what=what)
        return aiohttp.Fingerprint(bytes.fromhex(digest))
    if cert:
        digest = cert_fingerprint(read_pem(cert, what=what), what=what)
        return aiohttp.Fingerprint(bytes.fromhex(digest))
    if ca_cert:
        pem = read_pem(ca_cert, what=what)
        try:
            return tls_context(pem)
        except ssl.SSLError as exc:
            raise ValueError(f"{what}: the CA certificate cannot be loaded: {exc}") from None
    return None


def check_endpoint(endpoint: str, *, what: str) -> str:
    """``endpoint`` without a trailing ``/``, or ``ValueError``: an ``https`` URL, or ``http``
    to this machine only (a rune or macaroon must not cross a network in clear text); no
    credentials, query or fragment."""
    parts = urlsplit(endpoint)
    if "@" in parts.netloc:  # checked first: the messages below show the endpoint
        raise ValueError(f"{what} endpoint must not carry credentials")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} endpoint must be an https URL, got {endpoint!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} endpoint must not have a query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{what} endpoint must use https unless it is on this machine, got {endpoint!r}"
        )
    return endpoint.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
