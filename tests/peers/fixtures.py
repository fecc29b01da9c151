"""Pytest plugin with the real peers, each started once per test session.

Enabled from ``tests/conftest.py`` (``pytest_plugins``). Tests that use a peer are marked, e.g.
``@pytest.mark.lnbits``, so ``-m "not lnbits"`` runs without it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.peers.browser import BrowserPeer
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.nwc_peer import NWCPeer
from tests.peers.smtp_peer import SMTPPeer


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
