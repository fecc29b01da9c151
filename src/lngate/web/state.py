"""What the routes reach through ``request.app.state``: the gateway and web-only helpers."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from lngate.bootstrap import Gateway
from lngate.web.client_ip import ClientIP
from lngate.web.errors import ApiError
from lngate.web.ratelimit import RateLimiter


@dataclass
class WebState:
    """Objects only the HTTP layer needs."""

    rate_limiter: RateLimiter
    client_ip: ClientIP


def gateway_of(request: Request) -> Gateway:
    """The running gateway."""
    return request.app.state.gateway


def web_of(request: Request) -> WebState:
    """The HTTP layer's helpers."""
    return request.app.state.web


async def enforce_rate_limit(request: Request, route: str) -> None:
    """Count this request against the client IP's limit on ``route``; 429 past it."""
    web = web_of(request)
    decision = await web.rate_limiter.check(route, web.client_ip(request))
    if not decision.allowed:
        raise ApiError(429, "Trop de requêtes, réessayez plus tard", "rate_limited",
                       headers={"Retry-After": str(decision.retry_after)},
                       retryAfter=decision.retry_after)
