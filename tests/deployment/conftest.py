"""Fixtures of the deployment tests: nginx, gateway clusters on PostgreSQL, progress lines.

These tests run real processes: nginx with the shipped configuration, several ``lngate serve``
instances on one PostgreSQL database, and (for the chaos test) the real LNbits. A missing nginx
fails them with one line saying how to install it; ``-m "not nginx"`` deselects them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

import pytest

from tests.deployment.cluster import Cluster, postgres_database
from tests.deployment.nginx import INSTALL_NGINX, Nginx, NginxError, nginx_binary
from tests.peers.services import fail_missing


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nginx: needs nginx (apt-get install nginx)")
    config.addinivalue_line("markers", "chaos: the chaos run (several gateways, nginx, LNbits "
                                       "restarted; a few minutes)")


@pytest.fixture(scope="session")
def nginx_available() -> str:
    """The nginx executable; fails the test with one line when nginx is not installed."""
    try:
        return nginx_binary()
    except NginxError:
        fail_missing("nginx", "is not installed", INSTALL_NGINX.removeprefix("install it with "),
                     "nginx")
        raise  # not reached: fail_missing raises


@pytest.fixture
def progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a progress line past pytest's output capture (long runs should not look hung)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def log(message: str) -> None:
        if reporter is None or capture is None:
            print(message, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"deployment: {message}")

    return log


RATE_LIMIT = 5
"""Creates per minute and client address in the demo cluster (``RATE_LIMIT``)."""


@dataclass
class Deployment:
    """Gateway instances on one PostgreSQL database, behind nginx."""

    cluster: Cluster
    nginx: Nginx

    def client(self, source: str, *, nginx: Nginx | None = None,
               **kwargs: Any) -> httpx.AsyncClient:
        """An HTTPS client to nginx whose connections come from the loopback address
        ``source`` (127.0.0.2, 127.0.0.3...), so each test is its own rate-limited client."""
        nginx = nginx or self.nginx
        transport = httpx.AsyncHTTPTransport(local_address=source, verify=nginx.client_ssl())
        return httpx.AsyncClient(base_url=nginx.url, transport=transport, timeout=15, **kwargs)


@pytest.fixture(scope="package")
def demo_deployment(nginx_available: str, tmp_path_factory: pytest.TempPathFactory,
                    ) -> Iterator[Deployment]:
    """Three demo-mode gateways (the test provider) on a fresh PostgreSQL database, behind
    nginx, trusting it (``TRUSTED_PROXIES=127.0.0.1``), with ``RATE_LIMIT`` creates a minute
    per client and no Redis: whatever they share goes through the database."""
    folder = tmp_path_factory.mktemp("deployment")
    with postgres_database("lngate_deploy") as url:
        env = {"DATABASE_URL": url, "LIGHTNING_TEST_MODE": "true",
               "TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT": f"{RATE_LIMIT}/minute",
               "RATE_LIMIT_CHECK": "100000/minute", "HEALTH_CHECK_INTERVAL": "5",
               "SSE_RECHECK_SECONDS": "0.5"}
        cluster = Cluster(folder / "gateways", 3, env)
        nginx = Nginx(folder / "nginx", cluster.ports)
        with cluster, nginx:
            yield Deployment(cluster, nginx)


@pytest.fixture(scope="package")
def single_instance_nginx(demo_deployment: Deployment,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """A second nginx with the same configuration in front of the first instance alone (for
    what must hold whether or not the instances share their counters)."""
    port = demo_deployment.cluster.instances[0].port
    with Nginx(tmp_path_factory.mktemp("nginx-single"), [port]) as nginx:
        yield nginx
