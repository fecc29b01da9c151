"""Is this a gateway we may load? Loopback targets only (unless allowed), and demo mode known.

Demo mode is read without creating anything: ``POST /api/demo/pay/<64 zeros>`` is mounted in
pure demo mode only, where it answers 404 with the code ``not_found`` (no such test invoice);
any other gateway answers 404 ``http_404`` (no such route). Anything else, or no answer, is
treated as "not demo": the safe side.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp

DEMO_PROBE = "/api/demo/pay/" + "0" * 64


class TargetRefused(Exception):
    """The target may not be loaded (one line saying why)."""


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


async def require_loopback(url: str, *, allow_remote: bool) -> None:
    """Refuse a URL that is not http(s) or, unless ``allow_remote``, whose host is not (or
    does not resolve only to) a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"the target must be an http(s) URL like http://127.0.0.1:8000, "
                            f"got {url!r}")
    if allow_remote:
        return
    host = parts.hostname
    if host == "localhost" or _loopback(host):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None,
                                                             type=socket.SOCK_STREAM)
    except OSError:
        infos = []
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_loopback(a) for a in addresses):
        raise TargetRefused(f"{host} is not a loopback address: a load test sends real "
                            "traffic; pass --allow-remote to load a remote gateway")


async def is_demo(session: aiohttp.ClientSession, base_url: str, *, timeout: float) -> bool:
    """Whether the gateway answers as one in pure demo mode (see the module docstring)."""
    try:
        async with session.post(base_url.rstrip("/") + DEMO_PROBE,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 404:
                return False
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(body, dict) and body.get("code") == "not_found"


async def reachable(session: aiohttp.ClientSession, base_url: str, *, timeout: float) -> str | None:
    """``None`` when the gateway answers ``/healthz``, else why not (one line)."""
    try:
        async with session.get(base_url.rstrip("/") + "/healthz",
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status == 200:
                return None
            return f"GET /healthz answered {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"no answer from {base_url} ({type(exc).__name__})"
