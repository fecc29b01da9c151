"""A real LNbits 1.6.2 (FakeWallet funding source) on loopback, installed and run by the tests.

LNbits pins pydantic v1, so it lives in its own virtual environment, cached under
``$LNGATE_PEER_CACHE/lnbits-1.6.2/venv`` (default ``~/.cache/lngate/peers``) and reused while it
still imports. Each :class:`LNbitsPeer` gets a fresh data folder in a temporary directory, a free
loopback port, and a headless bootstrap: the first install (super user), a user with the wallets
"merchant" and "payer" (no fiat currency, so no price look-ups on the internet), and a funded payer.

Quirks handled here (see the LNbits peer notes shared with the project):

- ``lnbits`` is a supervisor that forks the uvicorn server; killing it leaves the server orphaned,
  and a crashing child leaves it waiting forever. So it runs in its own session and is stopped
  by process group, and "a traceback in the log with one live process left" is a failed start.
- ``lnbits/static`` and ``lnbits/templates`` are resolved from the working directory: it runs from
  a folder with symlinks into the installed package.
- Every route answers 307 to ``/first_install`` until the first install is completed.
- Settings read from the environment are stored in the database on the first start of a data
  folder; LNbits reads many unprefixed variables (``HOST``, ``DEBUG``, ...), so the server gets a
  small allow-listed environment, not ours.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

LNBITS_VERSION = "1.6.2"
FAKE_WALLET_SECRET = "ToTheMoon1"
"""LNbits' default FakeWallet seed; it fixes the payee key of every invoice (see payee_pubkey)."""

_HOST = "127.0.0.1"
# Webhook origins LNbits accepts: loopback only (its default rule rejects IP hosts with a 400).
_CALLBACK_RULES = r'["https?://(127\\.0\\.0\\.1|localhost|\\[::1\\])(:\\d+)?"]'
# Variables of ours that the server may see; everything else (LNBITS_*, HOST, PORT, DEBUG, ...)
# would silently change LNbits' settings.
_ENV_ALLOWED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SSL_CERT_FILE")


_RUNNING: weakref.WeakSet[LNbitsPeer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """A peer runs in its own session, so it would outlive an interrupted test run."""
    for peer in list(_RUNNING):
        peer.stop()


class PeerError(RuntimeError):
    """The peer could not be installed, started, bootstrapped or driven."""


def default_cache_root() -> Path:
    """Where peers are installed: ``$LNGATE_PEER_CACHE`` or ``~/.cache/lngate/peers``."""
    override = os.environ.get("LNGATE_PEER_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache/lngate/peers"


def free_port(host: str = _HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def fake_wallet_payee_pubkey(secret: str = FAKE_WALLET_SECRET) -> str:
    """The node key FakeWallet signs with: ``pbkdf2_hmac(sha256, secret, "FakeWallet", 2048)``."""
    from coincurve import PrivateKey

    private = hashlib.pbkdf2_hmac("sha256", secret.encode(), b"FakeWallet", 2048, 32)
    return PrivateKey(private).public_key.format(compressed=True).hex()


def _stderr_log(message: str) -> None:
    print(f"lnbits-peer: {message}", file=sys.stderr, flush=True)


def _live_group_members(pgid: int) -> list[int]:
    """Pids of the non-zombie processes in process group ``pgid`` (zombies may never be reaped
    here: PID 1 does not reap them)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: fall back to "does the group exist at all"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


class LNbitsPeer:
    """One LNbits server with a FakeWallet funding source, driven over its HTTP API.

    ``launch()`` installs (once per cache), starts and bootstraps it; ``stop()`` and ``start()``
    take it down and bring it back on the same port and data; ``close()`` stops it for good and
    deletes its data. After ``bootstrap()`` the wallet keys are attributes.
    """

    def __init__(
        self,
        *,
        cache_root: Path | None = None,
        port: int | None = None,
        start_timeout: float = 120.0,
        stop_timeout: float = 20.0,
        topup_sats: int = 1_000_000,
        log: Callable[[str], None] = _stderr_log,
    ) -> None:
        self.version = LNBITS_VERSION
        self.host = _HOST
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.topup_sats = topup_sats
        self.log = log
        self.install_dir = (cache_root or default_cache_root()) / f"lnbits-{self.version}"
        self.venv_dir = self.install_dir / "venv"
        self.workdir = Path(tempfile.mkdtemp(prefix="lngate-lnbits-"))
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "lnbits.log"
        self.keys: dict[str, Any] = {}
        self.payee_pubkey = fake_wallet_payee_pubkey()
        self.install_seconds: float | None = None
        """Seconds spent installing (0.0 when the cached venv was reused)."""
        self.start_seconds: float | None = None
        """Seconds from launching the process to the first health answer, for the last start."""
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"LNbitsPeer(url={self.url if self.port else None!r}, running={self.is_running})"

    # ----------------------------------------------------------------------------- lifecycle

    def launch(self) -> LNbitsPeer:
        """Install if needed, start, and bootstrap; stops again if any step fails."""
        try:
            self.ensure_installed()
            self.start()
            self.bootstrap()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> LNbitsPeer:
        return self.launch()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def venv_python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    def ensure_installed(self) -> None:
        """Install LNbits and ``bitstring<5`` into the cached venv unless it already works.

        A file lock makes concurrent test sessions wait for one installer instead of racing.
        """
        self.install_dir.mkdir(parents=True, exist_ok=True)
        with open(self.install_dir / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._installed():
                self.install_seconds = 0.0
                return
            if not (3, 10) <= sys.version_info[:2] <= (3, 12):
                raise PeerError(f"LNbits {self.version} needs Python 3.10-3.12, not {sys.version}")
            uv = self._uv_command()
            expected = "~30 s with uv" if uv else "a few minutes with pip; uv is faster"
            self.log(f"installing LNbits {self.version} into {self.venv_dir}")
            self.log(f"(first run only, {expected})")
            started = time.monotonic()
            shutil.rmtree(self.venv_dir, ignore_errors=True)
            (self.install_dir / "installed.json").unlink(missing_ok=True)
            # bitstring 5 removed ConstBitStream, which bolt11 (LNbits' codec) imports.
            packages = [f"lnbits=={self.version}", "bitstring<5"]
            if uv:
                self._run_install([*uv, "venv", "--python", sys.executable, str(self.venv_dir)])
                # No --compile-bytecode: it compiles every module (~14 s more) while the first
                # start compiles only what LNbits imports (~4 s), once per cache.
                target = ["--python", str(self.venv_python)]
                self._run_install([*uv, "pip", "install", *target, *packages])
            else:
                self._run_install([sys.executable, "-m", "venv", str(self.venv_dir)])
                self._run_install([str(self.venv_python), "-m", "pip", "install", *packages])
            if not self._imports():
                raise PeerError(f"LNbits installed in {self.venv_dir} but does not import")
            (self.install_dir / "installed.json").write_text(json.dumps({"lnbits": self.version}))
            self.install_seconds = time.monotonic() - started
            self.log(f"installed LNbits {self.version} in {self.install_seconds:.1f} s")

    def start(self) -> None:
        """Start the server (same port and data as before when restarting); wait until it answers.

        Raises :class:`PeerError`, with the tail of the log, if it crashes or does not answer
        within ``start_timeout``.
        """
        if self.is_running:
            raise PeerError(f"LNbits already running on {self.url}")
        self.stop()  # reap a crashed previous run, if any
        site = self._site_packages() / "lnbits"
        run_dir = self.workdir / "run"
        (run_dir / "lnbits").mkdir(parents=True, exist_ok=True)
        for name in ("static", "templates"):
            link = run_dir / "lnbits" / name
            if not link.is_symlink():
                link.symlink_to(site / name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        env = {key: os.environ[key] for key in _ENV_ALLOWED if key in os.environ}
        env.update(
            LNBITS_BACKEND_WALLET_CLASS="FakeWallet",
            FAKE_WALLET_SECRET=FAKE_WALLET_SECRET,
            LNBITS_DATA_FOLDER=str(self.data_dir),
            LNBITS_ADMIN_UI="true",
            LNBITS_BASEURL=f"{self.url}/",
            LNBITS_CALLBACK_URL_RULES=_CALLBACK_RULES,
            # without it a loopback webhook passes creation but is silently never sent
            LNBITS_CALLBACK_ALLOW_PRIVATE_IPS="true",
            LNBITS_RATE_LIMIT_NO="1000000",
            LNBITS_RATE_LIMIT_UNIT="minute",
            # no fetches from the internet at start-up, every minute, or per invoice
            LNBITS_EXTENSIONS_MANIFESTS="[]",
            LNBITS_WASM_EXTENSIONS_MANIFESTS="[]",
            LNBITS_PRICE_AGGREGATOR_ENABLED="false",
            LNBITS_EXCHANGE_RATE_PROVIDERS="[]",
            DEBUG="false",
        )
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        started = time.monotonic()
        with open(self.log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                [
                    str(self.venv_dir / "bin" / "lnbits"),
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                cwd=run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills the uvicorn child too
            )
        _RUNNING.add(self)
        self._wait_healthy(started, log_offset)
        self.start_seconds = time.monotonic() - started
        self.log(f"LNbits up on {self.url} after {self.start_seconds:.1f} s")

    def stop(self) -> None:
        """Stop the whole process group (TERM, then KILL after ``stop_timeout``) and reap it."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is None:
            return
        pgid = proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while _live_group_members(pgid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                time.sleep(0.2)
                break
            time.sleep(0.05)
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the server and delete its data folder; the peer cannot be started again."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def is_running(self) -> bool:
        """Whether any process of the server's group is alive (not whether it answers)."""
        return self._proc is not None and bool(_live_group_members(self._proc.pid))

    # ----------------------------------------------------------------------------- API access

    @property
    def url(self) -> str:
        if self.port is None:
            raise PeerError("the peer has no port until it is started")
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        key: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One HTTP call to the peer (no redirects followed): ``(status, parsed JSON or text)``.

        ``key`` goes in ``X-Api-Key``, ``token`` in ``Authorization: Bearer``.
        """
        headers = {"Accept": "application/json"}
        if key is not None:
            headers["X-Api-Key"] = key
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def _checked(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        status, body = self.request(method, path, **kwargs)
        if status not in (200, 201):
            raise PeerError(f"{what}: HTTP {status} for {method} {path}: {str(body)[:500]}")
        return body

    def bootstrap(self) -> dict[str, Any]:
        """First install, user "peer" with wallets "merchant" and "payer" (no fiat currency),
        payer credited with ``topup_sats``; returns (and keeps in ``keys``) what was made."""
        su_password = "su-" + os.urandom(9).hex()
        user_password = "pw-" + os.urandom(9).hex()
        status, _ = self.request("GET", "/api/v1/health")
        if status != 307:
            raise PeerError(f"expected a fresh LNbits (307 to /first_install), got HTTP {status}")
        su = self._checked(
            "first install",
            "PUT",
            "/api/v1/auth/first_install",
            json_body={
                "username": "admin",
                "password": su_password,
                "password_repeat": su_password,
            },
        )
        su_token = su["access_token"]
        su_account = self._checked("super user account", "GET", "/api/v1/auth", token=su_token)
        if not su_account.get("super_user"):
            raise PeerError("the first-install account is not the super user")
        user = self._checked(
            "register user",
            "POST",
            "/api/v1/auth/register",
            json_body={
                "username": "peer",
                "password": user_password,
                "password_repeat": user_password,
            },
        )
        user_token = user["access_token"]
        wallets = self._checked("list wallets", "GET", "/api/v1/wallets", token=user_token)
        merchant = self._checked(
            "rename wallet",
            "PATCH",
            "/api/v1/wallet",
            key=wallets[0]["adminkey"],
            json_body={"name": "merchant"},
        )
        payer = self._checked(
            "create payer wallet",
            "POST",
            "/api/v1/wallet",
            token=user_token,
            json_body={"name": "payer"},
        )
        # A wallet with a fiat currency looks up the BTC price on the internet for every invoice.
        for wallet in (merchant, payer):
            self._checked(
                "clear currency",
                "PATCH",
                "/api/v1/wallet",
                key=wallet["adminkey"],
                json_body={"currency": ""},
            )
        # FakeWallet has no outside money: only the super user can credit a wallet.
        if self.topup_sats > 0:
            self._checked(
                "credit payer",
                "PUT",
                "/users/api/v1/balance",
                token=su_token,
                json_body={"id": payer["id"], "amount": self.topup_sats},
            )
        self.keys = {
            "url": self.url,
            "merchant": {k: merchant[k] for k in ("id", "inkey", "adminkey")},
            "payer": {k: payer[k] for k in ("id", "inkey", "adminkey")},
            "user": {"id": wallets[0]["user"], "access_token": user_token},
            "super_user": {"id": su_account["id"], "access_token": su_token},
            "payee_pubkey": self.payee_pubkey,
        }
        keys_path = self.workdir / "keys.json"
        with open(os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.keys, f, indent=2)
        return self.keys

    @property
    def merchant_inkey(self) -> str:
        return self._key("merchant", "inkey")

    @property
    def merchant_adminkey(self) -> str:
        return self._key("merchant", "adminkey")

    @property
    def merchant_wallet_id(self) -> str:
        return self._key("merchant", "id")

    @property
    def payer_inkey(self) -> str:
        return self._key("payer", "inkey")

    @property
    def payer_adminkey(self) -> str:
        return self._key("payer", "adminkey")

    @property
    def payer_wallet_id(self) -> str:
        return self._key("payer", "id")

    @property
    def super_user_token(self) -> str:
        return self._key("super_user", "access_token")

    def pay(self, bolt11: str) -> dict[str, Any]:
        """Pay ``bolt11`` from the payer wallet; raises unless LNbits says ``status: success``.

        LNbits can answer 201 with ``status: failed`` (an expired invoice), so the body decides.
        """
        status, body = self.request(
            "POST",
            "/api/v1/payments",
            key=self.payer_adminkey,
            json_body={"out": True, "bolt11": bolt11},
        )
        if (
            status not in (200, 201)
            or not isinstance(body, dict)
            or body.get("status") != "success"
        ):
            raise PeerError(f"pay failed: HTTP {status}: {str(body)[:300]}")
        return body

    async def apay(self, bolt11: str) -> dict[str, Any]:
        """:meth:`pay` in a worker thread, so the event loop (and servers on it) keeps running."""
        import asyncio

        return await asyncio.to_thread(self.pay, bolt11)

    def log_tail(self, lines: int = 40, offset: int = 0) -> str:
        """The last ``lines`` lines of the server log written after byte ``offset``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ----------------------------------------------------------------------------- internals

    def _key(self, wallet: str, field: str) -> str:
        if not self.keys:
            raise PeerError("the peer is not bootstrapped")
        return self.keys[wallet][field]

    def _uv_command(self) -> list[str] | None:
        uv = shutil.which("uv")
        if uv:
            return [uv]
        probe = subprocess.run(
            [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
        )
        return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None

    def _run_install(self, command: list[str]) -> None:
        log_path = self.install_dir / "install.log"
        with open(log_path, "ab") as log_file:
            log_file.write(f"$ {' '.join(command)}\n".encode())
            log_file.flush()
            result = subprocess.run(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=900,
            )
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise PeerError(f"{command[0]} failed ({result.returncode}); log {log_path}:\n{tail}")

    def _imports(self) -> bool:
        # Importing lnbits itself takes ~4 s; bolt11 is what breaks (bitstring 5) and is cheap.
        check = (
            "import importlib.metadata as m, importlib.util as u, bolt11; "
            f"assert m.version('lnbits') == {self.version!r} and u.find_spec('lnbits')"
        )
        if not self.venv_python.exists():
            return False
        result = subprocess.run(
            [str(self.venv_python), "-c", check], capture_output=True, check=False, timeout=120
        )
        return result.returncode == 0

    def _installed(self) -> bool:
        marker = self.install_dir / "installed.json"
        try:
            recorded = json.loads(marker.read_text()).get("lnbits")
        except (OSError, ValueError):
            return False
        return recorded == self.version and self._imports()

    def _site_packages(self) -> Path:
        found = sorted(self.venv_dir.glob("lib/python3*/site-packages/lnbits"))
        if not found:
            raise PeerError(f"no LNbits package in {self.venv_dir}; run ensure_installed() first")
        return found[0].parent

    def _wait_healthy(self, started: float, log_offset: int) -> None:
        assert self._proc is not None
        deadline = started + self.start_timeout
        last = "no answer"
        while True:
            try:
                status, _ = self.request("GET", "/api/v1/health", timeout=2.0)
                # 307 = up, but the first install is not done yet (redirect to /first_install)
                if status in (200, 307):
                    return
                last = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                last = type(exc).__name__
            failure = self._start_failure(log_offset)
            if failure is None and time.monotonic() > deadline:
                failure = f"no healthy answer within {self.start_timeout:.0f} s (last: {last})"
            if failure is not None:
                tail = self.log_tail(40, log_offset)
                self.stop()
                raise PeerError(f"LNbits failed to start on {self.url}: {failure}\n{tail}")
            time.sleep(0.1)

    def _start_failure(self, log_offset: int) -> str | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            return f"the lnbits process exited with {self._proc.returncode}"
        try:
            with open(self.log_path, "rb") as f:
                f.seek(log_offset)
                log = f.read()
        except OSError:
            return None
        if b"Application startup failed" in log or b"address already in use" in log:
            return "startup failed (see log)"
        # the supervisor waits forever when its server child dies at import
        if b"Traceback" in log and len(_live_group_members(self._proc.pid)) <= 1:
            return "the server process crashed (see log)"
        return None
