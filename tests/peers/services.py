"""The services a test session needs from this machine, and one line saying which is missing.

PostgreSQL and Redis are not started by the suite (``.ci/run`` starts them on CI); Node runs the
NWC wallet peer. A test that needs one of them and cannot reach it *fails* with a one-line
message naming the service, how to start it and how to deselect its tests: a session must never
pass by quietly skipping them. Deselecting with ``-m "not <marker>"`` is the only way to run
without them.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlsplit

import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own, emptied by its tests
CONNECT_TIMEOUT = 5.0

START_POSTGRES = ("start it with `pg_ctlcluster <version> main start` (as .ci/run does) "
                  "or point LNGATE_TEST_POSTGRES_URL at a server")
START_REDIS = ("start it with `redis-server --daemonize yes --port 6379` (as .ci/run does) "
               "or point LNGATE_TEST_REDIS_URL at a server")
INSTALL_NODE = "install Node.js >= 18 with npm (`apt-get install nodejs npm`)"


def postgres_admin_url() -> str:
    """The URL of a PostgreSQL database to connect to while creating the session's database."""
    return os.environ.get("LNGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def redis_test_url() -> str:
    """The URL of the Redis database the tests may empty."""
    return os.environ.get("LNGATE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def missing(service: str, problem: str, remedy: str, marker: str) -> str:
    """The one-line failure message for a service a test needs and cannot use."""
    return f"{service} {problem}: {remedy}, or deselect these tests with -m \"not {marker}\""


def fail_missing(service: str, problem: str, remedy: str, marker: str) -> None:
    """Fail the current test (or fixture) with :func:`missing`'s line, without a traceback."""
    pytest.fail(missing(service, problem, remedy, marker), pytrace=False)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no detail"
    return f"{type(error).__name__}: {text}"


def postgres_unreachable(url: str, error: BaseException) -> None:
    """Fail: PostgreSQL at ``url`` refused or errored (``error``)."""
    where = urlsplit(url)
    fail_missing("PostgreSQL", f"is not usable at {where.hostname}:{where.port or 5432} "
                 f"({_one_line(error)})", START_POSTGRES, "postgres")


def require_redis(url: str) -> None:
    """Fail unless a Redis server answers ``PING`` at ``url``."""
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 6379
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as conn:
            conn.settimeout(CONNECT_TIMEOUT)
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
    except OSError as exc:
        problem = f"is not reachable at {host}:{port} ({_one_line(exc)})"
    else:
        problem = "" if answer.startswith(b"+PONG") else (
            f"at {host}:{port} did not answer PING ({answer[:40]!r})")
    if problem:  # failed outside the except block: one line, no chained traceback
        fail_missing("Redis", problem, START_REDIS, "redis")


def require_node() -> None:
    """Fail unless ``node`` and ``npm`` are on ``PATH`` (the NWC wallet peer runs on Node)."""
    absent = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if absent:
        fail_missing("Node.js", f"is missing ({' and '.join(absent)} not on PATH; the NWC "
                     "wallet peer runs on it)", INSTALL_NODE, "nwc")
