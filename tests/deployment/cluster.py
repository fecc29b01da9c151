"""Several real ``lngate serve`` processes on one database, started, killed and restarted.

Each instance is ``python -m lngate serve --port <port>`` in its own process group, with the
same environment (the cluster's settings on top of this process's environment, less any
provider, database, alert or mail settings of ours) and its working directory in a temporary
folder, so no ``.env`` is read. Its output (JSON logs) goes to ``instance-<n>.log``; a restart
appends to the same file. :meth:`Cluster.kill` is a SIGKILL to the whole group: no shutdown
hook runs, as when a machine loses power.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.deployment.nginx import free_port

_OURS = ("LNBITS_", "NWC_", "DATABASE_", "SMTP_", "ALERT_", "HTTP_", "RATE_", "REDIS_",
         "TRUSTED_", "PUBLIC_", "ADMIN_", "RECONCILE_", "OUTBOX_", "HEALTH_", "LIGHTNING_",
         "EMAIL_", "SHOP_", "RESEND_", "LOG_", "DEBUG", "NEXTAUTH_")


class ClusterError(RuntimeError):
    """An instance did not start or become ready."""


@dataclass
class Instance:
    """One gateway process: its port, log and lifecycle times."""

    index: int
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    killed_at: list[float] = field(default_factory=list)
    """``time.time()`` of each SIGKILL."""
    ready_at: list[float] = field(default_factory=list)
    """``time.time()`` each start became ready."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """``count`` gateway instances sharing ``env`` (``DATABASE_URL`` and the rest)."""

    def __init__(self, folder: Path, count: int, env: Mapping[str, str], *,
                 start_timeout: float = 90.0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(_OURS)},
                    "LOG_FORMAT": "json", **env}
        self.start_timeout = start_timeout
        self.instances = [Instance(i, free_port(), folder / f"instance-{i}.log")
                          for i in range(count)]

    @property
    def ports(self) -> list[int]:
        return [instance.port for instance in self.instances]

    def spawn(self, index: int) -> None:
        """Start instance ``index`` (not waiting for it)."""
        instance = self.instances[index]
        if instance.alive:
            raise ClusterError(f"instance {index} is already running")
        with open(instance.log_path, "ab") as log:
            instance.process = subprocess.Popen(
                [sys.executable, "-m", "lngate", "serve", "--host", "127.0.0.1",
                 "--port", str(instance.port)],
                env=self.env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, index: int, *, path: str = "/readyz") -> float:
        """Wait until instance ``index`` answers 200 on ``path``; returns the seconds waited."""
        instance = self.instances[index]
        started = time.monotonic()
        deadline = started + self.start_timeout
        last = "no answer"
        while True:
            if instance.process is None or instance.process.poll() is not None:
                raise ClusterError(f"instance {index} exited during start-up:\n"
                                   f"{self.log_tail(index)}")
            try:
                answer = httpx.get(instance.url + path, timeout=2.0)
                if answer.status_code == 200:
                    instance.ready_at.append(time.time())
                    return time.monotonic() - started
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                raise ClusterError(f"instance {index} not ready on {path} within "
                                   f"{self.start_timeout:.0f} s ({last}):\n{self.log_tail(index)}")
            time.sleep(0.1)

    def start(self) -> Cluster:
        """Start every instance (in parallel) and wait until each is ready."""
        for index in range(len(self.instances)):
            self.spawn(index)
        for index in range(len(self.instances)):
            self.wait_ready(index)
        return self

    def kill(self, index: int) -> None:
        """SIGKILL instance ``index`` and its whole process group; reap it."""
        instance = self.instances[index]
        process = instance.process
        if process is None or process.poll() is not None:
            raise ClusterError(f"instance {index} is not running")
        instance.killed_at.append(time.time())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def restart(self, index: int) -> float:
        """Start instance ``index`` again on its port; returns the seconds until it was ready."""
        self.spawn(index)
        return self.wait_ready(index)

    def stop(self) -> None:
        """SIGTERM every live instance (graceful), SIGKILL after 15 s."""
        live = [i for i in self.instances if i.alive]
        for instance in live:
            assert instance.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(instance.process.pid, signal.SIGTERM)
        for instance in live:
            assert instance.process is not None
            try:
                instance.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(instance.process.pid, signal.SIGKILL)
                instance.process.wait(10)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, index: int, lines: int = 30) -> str:
        """The last lines of instance ``index``'s output."""
        try:
            text = self.instances[index].log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every JSON log line of every instance (all its runs), as ``(index, event)``."""
        for instance in self.instances:
            try:
                text = instance.log_path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        yield instance.index, json.loads(line)


@contextlib.contextmanager
def postgres_database(prefix: str = "lngate_deploy") -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one cluster, dropped afterwards.

    The server is the test suite's (``LNGATE_TEST_POSTGRES_URL``, default 127.0.0.1:5432).
    """
    import uuid

    from tests.databases import _admin
    from tests.peers.services import postgres_admin_url

    admin_url = postgres_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
