"""What the routes reach through ``request.app.state``: the gateway and web-only helpers."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from lngate.bootstrap import Gateway
from lngate.web.client_ip import ClientIP
from lngate.web.ratelimit import RateLimiter


@dataclass
class WebState:
    """Objects only the HTTP layer needs."""

    rate_limiter: RateLimiter
    client_ip: ClientIP


def gateway_of(request: Request) -> Gateway:
    """The running gateway."""
    return request.app.state.gateway  # type: ignore[no-any-return]


def web_of(request: Request) -> WebState:
    """The HTTP layer's helpers."""
    return request.app.state.web  # type: ignore[no-any-return]
