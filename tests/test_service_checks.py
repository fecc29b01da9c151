"""A test session fails, with one line naming the service, when PostgreSQL, Redis or Node is
missing, and runs without it only when its tests are deselected by marker.

Each case runs an inner pytest session (``pytester``, in-process) with this suite's database and
peer plugins, the service pointed at a closed loopback port or hidden from ``PATH``.
"""

from __future__ import annotations

import socket

import pytest

PLUGINS = ("-p", "tests.databases", "-p", "tests.peers.fixtures")
INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
addopts = --strict-markers
markers =
    lnbits: LNbits peer
    nwc: NWC peer
    postgres: PostgreSQL
    redis: Redis
"""


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """An inner session's folder with this suite's pytest settings."""
    pytester.makeini(INI)
    return pytester


def error_lines(result: pytest.RunResult) -> list[str]:
    """The lines of the inner session's output that report a missing service, without the short
    summary's copies (pytest truncates those to the terminal's width, so whether they match
    depends on the terminal)."""
    return [
        line
        for line in result.outlines
        if "deselect these tests with -m" in line and not line.startswith("ERROR ")
    ]


def test_postgres_down_fails_its_tests_with_one_line(
    inner: pytest.Pytester, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PostgreSQL unreachable, the PostgreSQL case errors (not skips) with one line saying
    how to start it, and the SQLite case still passes."""
    monkeypatch.setenv("LNGATE_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{closed_port}/x")
    inner.makepyfile(test_db="async def test_uses_a_database(db):\n    assert db is not None\n")
    result = inner.runpytest(*PLUGINS)
    result.assert_outcomes(passed=1, errors=1)
    assert error_lines(result) == [
        f"PostgreSQL is not usable at 127.0.0.1:{closed_port} (ConnectionRefusedError: [Errno 111] "
        f"Connect call failed ('127.0.0.1', {closed_port})): start it with `pg_ctlcluster "
        "<version> main start` (as .ci/run does) or point LNGATE_TEST_POSTGRES_URL at a server, "
        'or deselect these tests with -m "not postgres"'
    ]
    assert "Traceback" not in result.stdout.str()


def test_not_postgres_runs_without_postgres(
    inner: pytest.Pytester, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-m "not postgres"`` deselects the PostgreSQL case, and the session passes without it."""
    monkeypatch.setenv("LNGATE_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{closed_port}/x")
    inner.makepyfile(test_db="async def test_uses_a_database(db):\n    assert db is not None\n")
    result = inner.runpytest(*PLUGINS, "-m", "not postgres")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == pytest.ExitCode.OK


def test_redis_down_fails_its_tests_with_one_line(
    inner: pytest.Pytester, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Redis unreachable, a test using ``redis_url`` errors with one line; ``-m "not redis"``
    deselects it, because the fixture marks the test."""
    monkeypatch.setenv("LNGATE_TEST_REDIS_URL", f"redis://127.0.0.1:{closed_port}/15")
    inner.makepyfile(test_redis="def test_uses_redis(redis_url):\n    assert redis_url\n")
    result = inner.runpytest(*PLUGINS)
    result.assert_outcomes(errors=1)
    [line] = error_lines(result)
    assert line.startswith(f"Redis is not reachable at 127.0.0.1:{closed_port} (")
    assert line.endswith('or deselect these tests with -m "not redis"')
    inner.runpytest(*PLUGINS, "-m", "not redis").assert_outcomes(deselected=1)


def test_node_missing_fails_nwc_tests_with_one_line(
    inner: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without node and npm on PATH, a test using the NWC peer errors with one line naming
    Node.js, and carries the ``nwc`` marker even when its author forgot it."""
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-path")))
    inner.makepyfile(test_nwc="def test_uses_nwc(nwc_peer):\n    assert nwc_peer\n")
    result = inner.runpytest(*PLUGINS)
    result.assert_outcomes(errors=1)
    assert error_lines(result) == [
        "Node.js is missing (node and npm not on PATH; the NWC wallet peer runs on it): install "
        "Node.js >= 18 with npm (`apt-get install nodejs npm`), or deselect these tests with "
        '-m "not nwc"'
    ]
    inner.runpytest(*PLUGINS, "-m", "not nwc").assert_outcomes(deselected=1)
