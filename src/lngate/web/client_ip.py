"""The client's IP address, trusting ``X-Forwarded-For`` only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request


class ClientIP:
    """Resolves the address rate limits apply to."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def __call__(self, request: Request) -> str:
        """The peer address, or the last untrusted hop of ``X-Forwarded-For`` behind a proxy."""
        peer = request.client.host if request.client else "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        # Every header line, in order: a client can send several, and only the hops appended
        # by our proxies (the rightmost ones) can be believed.
        hops = [h.strip() for line in request.headers.getlist("x-forwarded-for")
                for h in line.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return peer
