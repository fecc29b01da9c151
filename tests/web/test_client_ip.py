"""The client address rate limits apply to: X-Forwarded-For is believed only from trusted
proxies, and only for the hops they appended."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from lngate.web.client_ip import ClientIP


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers,
                    "client": (peer, 50000), "query_string": b""})


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    """Any client can send X-Forwarded-For: without TRUSTED_PROXIES it changes nothing."""
    assert ClientIP()(request("198.51.100.9", "1.2.3.4")) == "198.51.100.9"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client() -> None:
    """A request straight from a client keeps its own address, whatever it claims."""
    assert ClientIP(["10.0.0.0/8"])(request("198.51.100.9", "1.2.3.4")) == "198.51.100.9"


@pytest.mark.parametrize(("lines", "client"), [
    (["203.0.113.5"], "203.0.113.5"),
    (["6.6.6.6, 203.0.113.5"], "203.0.113.5"),
    (["6.6.6.6, 203.0.113.5, 10.0.0.2"], "203.0.113.5"),
    # a client sending two lines cannot choose its address: all lines are read, in order
    (["6.6.6.6", "7.7.7.7, 203.0.113.5"], "203.0.113.5"),
    (["1.1.1.1", "2.2.2.2", "203.0.113.5"], "203.0.113.5"),
])
def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(
    lines: list[str], client: str
) -> None:
    """Behind trusted proxies, the client is the last hop they did not add themselves."""
    assert ClientIP(["10.0.0.0/8", "127.0.0.1"])(request("127.0.0.1", *lines)) == client


def test_only_trusted_hops_fall_back_to_the_peer() -> None:
    """When every hop is a trusted proxy, the peer address is used."""
    assert ClientIP(["10.0.0.0/8"])(request("10.0.0.1", "10.0.0.7")) == "10.0.0.1"
