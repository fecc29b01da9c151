"""One tree for every failure a provider call can end in.

::

    LngateError
    ├── CallFailed                    a call to a provider ended without an answer (carries
    │   │                             ``provider``), whoever's fault it was
    │   ├── ProviderError             the provider's side failed
    │   │   ├── ProviderUnavailable   transient: retried, counts for the breaker, fails over
    │   │   ├── ProviderRejected      permanent: the provider refused this request; never retried
    │   │   │   └── ProviderAuthFailed  our credentials were refused
    │   │   └── InvalidInvoice        the provider returned a BOLT11 that fails validation
    │   └── GatewayOverloaded         our own event loop lagged the call out of its time: says
    │                                 nothing about the provider
    └── NoProviderAvailable           no provider could issue a valid invoice (carries reasons)

Expected outcomes (an unknown invoice, an unpaid one) are return values, not exceptions.
Every class has a stable machine-readable ``code`` used in API error bodies and logs.

The same failure is the same class at every provider (``tests/providers/test_contract.py``):

- a *malformed answer* (a 2xx that is not JSON, lacks a field, or has one of the wrong type;
  for NWC, an answer the client library cannot parse) is ``ProviderUnavailable``: the provider,
  or a proxy before it, is broken right now, not our request, so it counts for the breaker and
  the router tries another provider. ``InvalidInvoice`` is only for a BOLT11 that the
  gateway's validation refuses (signature, payee, amount, hash, network, expiry);
- an *invalid argument* (an amount <= 0, a memo longer than an invoice holds, an expiry out of
  range, a payment hash that is not 64 hex digits) is ``ProviderRejected``, raised before
  anything is sent, never ``ValueError``: the request is wrong wherever it goes.
"""

from __future__ import annotations


class LngateError(Exception):
    """Base of every lngate error."""

    code = "error"


class CallFailed(LngateError):
    """A call to a provider ended without an answer."""

    code = "call_failed"

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


class ProviderError(CallFailed):
    """A call to a provider failed on the provider's side."""

    code = "provider_error"


class ProviderUnavailable(ProviderError):
    """Transient failure: connection refused or reset, timeout, 5xx, 429."""

    code = "provider_unavailable"

    def __init__(
        self, message: str, *, provider: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """Permanent failure: the provider understood the request and refused it."""

    code = "provider_rejected"


class ProviderAuthFailed(ProviderRejected):
    """The provider refused our credentials (401/403, NIP-47 UNAUTHORIZED)."""

    code = "provider_auth_failed"


class InvalidInvoice(ProviderError):
    """The provider returned an invoice that fails validation; it is never shown to a client."""

    code = "invalid_invoice"


class GatewayOverloaded(CallFailed):
    """A call ran out of time because this process's event loop lagged, not because the
    provider was slow: the gateway is overloaded. It never counts against the provider
    (:mod:`lngate.resilience.failures`)."""

    code = "gateway_overloaded"


class NoProviderAvailable(LngateError):
    """Every provider failed or was skipped.

    ``reasons`` maps provider name to the detailed why (for logs and the admin API: it may name
    hosts, ports and exception classes); ``codes`` maps it to the error's ``code`` alone, which
    is all a customer may see.
    """

    code = "no_provider_available"

    def __init__(self, reasons: dict[str, str], codes: dict[str, str] | None = None) -> None:
        detail = "; ".join(f"{name}: {why}" for name, why in reasons.items()) or "none configured"
        super().__init__(f"no provider could issue a valid invoice ({detail})")
        self.reasons = reasons
        self.codes = codes if codes is not None else dict.fromkeys(reasons, ProviderError.code)
