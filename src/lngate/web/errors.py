"""Error responses: ``{"error": <message shown to the customer>, "code": <machine code>}``."""

from __future__ import annotations

from typing import Any

import structlog

from lngate.errors import NoProviderAvailable
from lngate.store.database import describe_error, is_database_error, is_transient
from lngate.web.responses import JsonResponse

log = structlog.get_logger("lngate.web")


class ApiError(Exception):
    """An error answered to the client with a status, a message and a code."""

    def __init__(
        self, status: int, message: str, code: str, *, headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.extra = headers, extra

    def response(self) -> JsonResponse:
        """The JSON response for this error."""
        return JsonResponse(
            {"error": self.message, "code": self.code, **self.extra},
            status_code=self.status, headers=self.headers,
        )


def no_provider_error(exc: NoProviderAvailable) -> ApiError:
    """The 503 answered when no provider could issue an invoice.

    A customer sees each provider's error code only; the detailed reasons (hosts, ports,
    exception classes) go to the log here, and to the admin API and metrics through the
    recorded provider calls.
    """
    log.warning("no_provider_available", reasons=exc.reasons)
    return ApiError(503, "Aucun fournisseur Lightning n'a pu créer la facture", exc.code,
                    providers=exc.codes, headers={"Retry-After": "5"})


DATABASE_RETRY_AFTER = "2"
"""Seconds a client is told to wait after a database that could not serve its request."""


def database_unavailable_error(exc: BaseException) -> ApiError | None:
    """The 503 answered when the database could not serve a request for now: its write lock
    held past the wait (an overloaded process), a lost or refused connection, a transaction to
    retry. ``None`` for any other error, a bug among them (the app's 500).

    Nothing was acknowledged: a create whose invoice could not be stored answers this, and the
    invoice it had issued stays unknown to the shop and expires unpaid.
    """
    if not (is_database_error(exc) and is_transient(exc)):
        return None
    log.warning("database_unavailable", error=describe_error(exc))
    return ApiError(503, "Service momentanément indisponible, réessayez dans un instant",
                    "database_unavailable", headers={"Retry-After": DATABASE_RETRY_AFTER})
