"""A real NWC (NIP-47) peer for tests: a Nostr relay and a wallet service on loopback.

* relay: rust-nostr ``LocalRelay`` (in-memory) from the ``nostr-sdk`` wheel, run by
  ``tests/peers/nwc/relay.py`` with this interpreter (our venv has nostr-sdk);
* wallet: ``@getalby/sdk`` ``NWCWalletService`` on Node, run by
  ``tests/peers/nwc/wallet_service.mjs``, whose request handler signs real BOLT11 invoices with a
  throwaway node key and offers test hooks and a control HTTP API (see that file's header).

The npm packages are installed once with ``npm ci`` (exact, from ``package-lock.json``) into
``$LNGATE_PEER_CACHE/nwc-<lock hash>/`` (default root ``~/.cache/lngate/peers``) and reused.
Each peer copies ``wallet_service.mjs`` into its own run directory next to a ``node_modules``
symlink into the cache: ESM ignores ``NODE_PATH`` and resolves bare imports from the file's
directory upwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent / "nwc"
NODE_FILES = ("package.json", "package-lock.json")
HOST = "127.0.0.1"


class PeerError(RuntimeError):
    """The peer could not be installed or started."""


def cache_root() -> Path:
    """Root directory of the peers' install cache (``LNGATE_PEER_CACHE`` overrides)."""
    root = os.environ.get("LNGATE_PEER_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "lngate" / "peers"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def install_node_modules(root: Path | None = None) -> tuple[Path, bool]:
    """``npm ci`` the wallet's packages into the cache unless present.

    Returns the ``node_modules`` directory and whether it had to be installed. The install runs
    in a temporary directory renamed into place, so concurrent sessions never see a half-done one.
    """
    lock = (HERE / "package-lock.json").read_bytes()
    target = (root or cache_root()) / f"nwc-{hashlib.sha256(lock).hexdigest()[:16]}"
    modules = target / "node_modules"
    if (modules / "@getalby" / "sdk" / "package.json").is_file():
        return modules, False
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PeerError(f"{tool} not found on PATH: the NWC peer needs Node >= 18 and npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        for name in NODE_FILES:
            shutil.copy2(HERE / name, staging / name)
        # --loglevel=error hides EBADENGINE (@getalby/sdk declares node>=22; the wallet polyfills
        # WebSocket on Node 20) and secp256k1's skipped build script (it ships a prebuild).
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise PeerError(f"npm ci failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        try:
            staging.rename(target)
        except OSError:
            if not (modules / "@getalby" / "sdk" / "package.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return modules, True


@dataclass
class _Proc:
    name: str
    argv: list[str]
    log: Path
    ready: str
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> None:
        if self.running:
            raise PeerError(f"{self.name} is already running")
        self.log.write_bytes(b"")
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C on pytest must not hit it before stop()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready in self.log.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise PeerError(f"{self.name} did not become ready within {timeout}s; log:\n{tail}")

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self.popen = None


class NWCPeer:
    """A relay plus an NWC wallet service on free loopback ports; start with :meth:`start`.

    The wallet's keys are generated on first start and kept in the run directory, so
    :attr:`uri` stays valid across :meth:`stop_wallet`/:meth:`start_wallet` and
    :meth:`stop_relay`/:meth:`start_relay` (the relay comes back on the same port).
    """

    def __init__(self, *, network: str = "bc", workdir: Path | None = None) -> None:
        if network not in ("bc", "tb", "bcrt", "tbs"):
            raise ValueError(f"unknown network prefix {network!r}")
        self.network = network
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lngate-nwc-peer-"))
        self.relay_port = 0
        self.control_port = 0
        self._relay: _Proc | None = None
        self._wallet: _Proc | None = None
        self._keys: dict[str, str] = {}
        self.installed_fresh = False
        """Whether :meth:`start` had to run ``npm ci`` (a cold cache)."""
        self.install_seconds = 0.0
        self.start_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> NWCPeer:
        """Install if needed, then start the relay and the wallet and wait until both are ready."""
        t0 = time.monotonic()
        modules, self.installed_fresh = install_node_modules()
        self.install_seconds = time.monotonic() - t0
        t1 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HERE / "wallet_service.mjs", self.workdir / "wallet_service.mjs")
        shutil.copy2(HERE / "package.json", self.workdir / "package.json")
        link = self.workdir / "node_modules"
        if not link.exists():
            link.symlink_to(modules, target_is_directory=True)
        self.relay_port, self.control_port = free_port(), free_port()
        self._relay = _Proc(
            name="nwc relay",
            argv=[
                sys.executable,
                str(HERE / "relay.py"),
                "--host",
                HOST,
                "--port",
                str(self.relay_port),
            ],
            log=self.workdir / "relay.log",
            ready="relay ready",
        )
        env = {
            **os.environ,
            "NWC_RELAY_URL": self.relay_url,
            "NWC_STATE_DIR": str(self.workdir / "state"),
            "NWC_CONTROL_PORT": str(self.control_port),
            "NWC_NETWORK": self.network,
            "NWC_FRESH_KEYS": "0",
        }
        self._wallet = _Proc(
            name="nwc wallet service",
            argv=["node", str(self.workdir / "wallet_service.mjs")],
            log=self.workdir / "wallet.log",
            ready="NWC wallet service ready",
            env=env,
            cwd=self.workdir,
        )
        try:
            self.start_relay()
            self.start_wallet()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t1
        return self

    def stop(self) -> None:
        """Stop both processes and remove the run directory (if this peer created it)."""
        for proc in (self._wallet, self._relay):
            if proc is not None:
                proc.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start_relay(self, timeout: float = 20.0) -> None:
        """Start the relay on its port (the same one after :meth:`stop_relay`).

        When the wallet is running, also wait until it has re-subscribed to requests (it retries
        with a backoff starting at 1 s), so that it hears requests again.
        """
        assert self._relay is not None, "call start() first"
        self._relay.start(timeout)
        if self._wallet is not None and self._wallet.running:
            self._wait_control(timeout, subscribed=True)

    def stop_relay(self) -> None:
        """Stop the relay; everything it stored is gone (it keeps events in memory only)."""
        assert self._relay is not None, "call start() first"
        self._relay.stop()

    def start_wallet(self, timeout: float = 30.0) -> None:
        """Start the wallet service, with the same keys as before, and wait until subscribed."""
        assert self._wallet is not None, "call start() first"
        self._wallet.start(timeout)
        self._keys = json.loads((self.workdir / "state" / "keys.json").read_text())
        self._wait_control(timeout, subscribed=True)

    def stop_wallet(self) -> None:
        """Stop the wallet service process (the relay keeps running)."""
        assert self._wallet is not None, "call start() first"
        self._wallet.stop()

    def _wait_control(self, timeout: float, *, subscribed: bool = False) -> None:
        """Wait until the control API answers (and, with ``subscribed``, requests are heard)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                health = self._get("/health")
                if health.get("ok") and (health.get("subscribed") or not subscribed):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PeerError(f"wallet service not ready within {timeout}s")
            time.sleep(0.05)

    # -- what tests use ----------------------------------------------------------------------

    @property
    def relay_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{HOST}:{self.relay_port}"

    @property
    def control_url(self) -> str:
        """Base URL of the wallet's control HTTP API."""
        return f"http://{HOST}:{self.control_port}"

    @property
    def uri(self) -> str:
        """The ``nostr+walletconnect://`` connection URI (contains the client secret)."""
        return self._keys["uri"]

    @property
    def wallet_pubkey(self) -> str:
        """The wallet service's Nostr public key (x-only hex), the URI's host part."""
        return self._keys["wallet_pubkey"]

    @property
    def client_secret(self) -> str:
        """The client secret in :attr:`uri`, for tests that check it never leaks."""
        return self._keys["client_secret"]

    @property
    def node_pubkey(self) -> str:
        """The Lightning node key that signs the invoices (compressed hex, 66 chars)."""
        return self._keys["node_pubkey"]

    def settle(self, payment_hash: str, *, settled_at: object = None) -> dict:
        """Mark the invoice paid; the wallet then publishes ``payment_received``.

        ``settled_at`` (any JSON value) is what the wallet reports as the settlement time
        instead of the current unix time: a past time, or a malformed one.
        """
        query = "" if settled_at is None else "?settled_at=" + quote(json.dumps(settled_at))
        return self._get(f"/settle/{payment_hash}{query}")

    def fail_next(self, code: str) -> None:
        """Make the next request of any method fail with NIP-47 error ``code``."""
        self._get(f"/fail-next/{code}")

    def mute(self, on: bool = True) -> None:
        """Stop (or resume) answering every request, like a hung wallet."""
        self._get(f"/mute/{1 if on else 0}")

    def unauthorized(self, on: bool = True) -> None:
        """Answer every request UNAUTHORIZED (a revoked connection), or stop doing so."""
        self._get(f"/unauthorized/{1 if on else 0}")

    def garble_next(self, mode: str) -> None:
        """Make the next answer malformed: ``notjson``, ``missing`` (no field but the invoice)
        or ``wrongtype``."""
        self._get(f"/garble-next/{mode}")

    def invoices(self) -> list[dict]:
        """Every invoice the wallet has issued."""
        return self._get("/invoices")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.control_url + path, timeout=5) as resp:
            return json.loads(resp.read())


if __name__ == "__main__":  # manual use: python tests/peers/nwc_peer.py
    peer = NWCPeer().start()
    print(
        f"installed_fresh={peer.installed_fresh} install={peer.install_seconds:.1f}s "
        f"start={peer.start_seconds:.1f}s",
        file=sys.stderr,
    )
    print(peer.uri)
    print(f"control: {peer.control_url}", file=sys.stderr)
    try:
        input("press Enter to stop\n")
    finally:
        peer.stop()
