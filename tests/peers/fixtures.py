"""Pytest plugin with the real peers, each started once per test session.

Enabled from ``tests/conftest.py`` (``pytest_plugins``). A test that uses a peer or a service
carries its marker (``lnbits``, ``nwc``, ``postgres``, ``redis``), so e.g. ``-m "not lnbits"``
runs without it: the markers are added here from the fixtures each test uses, so they cannot
drift from what the test really needs. A service that is needed and missing fails the test with
one line naming it (``tests/peers/services.py``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.peers.browser import BrowserPeer
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.nwc_peer import NWCPeer
from tests.peers.services import redis_test_url, require_node, require_redis
from tests.peers.smtp_peer import SMTPPeer

MARKER_OF_FIXTURE = {
    "lnbits_peer": "lnbits",
    "nwc_peer": "nwc",
    "postgres_url": "postgres",
    "redis_url": "redis",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the marker of every peer or service fixture it uses."""
    for item in items:
        used = getattr(item, "fixturenames", ())
        for fixture, marker in MARKER_OF_FIXTURE.items():
            if fixture in used and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _progress(config: pytest.Config) -> Callable[[str], None]:
    """Print past pytest's output capture, so a slow first install does not look like a hang."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def log(message: str) -> None:
        line = f"lnbits-peer: {message}"
        if reporter is None or capture is None:
            print(line, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return log


@pytest.fixture(scope="session")
def lnbits_peer(request: pytest.FixtureRequest) -> Iterator[LNbitsPeer]:
    """A real LNbits 1.6.2 (FakeWallet) with a funded payer wallet, for the whole session."""
    peer = LNbitsPeer(log=_progress(request.config))
    peer.launch()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[BrowserPeer]:
    """The system Chromium under Playwright, for tests marked ``browser`` (tests/peers/browser.py)."""
    async with BrowserPeer.launch() as peer:
        yield peer


@pytest.fixture(scope="session")
def nwc_peer() -> Iterator[NWCPeer]:
    """A real Nostr relay and NWC wallet service on loopback, for tests marked ``nwc``."""
    require_node()
    peer = NWCPeer().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def smtp_peer() -> Iterator[SMTPPeer]:
    """A real SMTP server (aiosmtpd) on loopback, for the session (tests/peers/smtp_peer.py)."""
    peer = SMTPPeer().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def smtp(smtp_peer: SMTPPeer) -> SMTPPeer:
    """The session's SMTP server, emptied, accepting, with no scripted rejections."""
    smtp_peer.start()
    smtp_peer.clear()
    return smtp_peer


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis database the tests may empty (``LNGATE_TEST_REDIS_URL`` overrides)."""
    url = redis_test_url()
    require_redis(url)
    return url
