"""Background loops: a database hiccup costs one pass, a bug reaches the supervisor, which logs
it and restarts the loop."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError
from structlog.testing import capture_logs

from lngate.tasks import Supervisor
from lngate.tasks.loops import DelayedWake, every


async def test_a_transient_error_skips_one_pass_and_the_loop_goes_on() -> None:
    """A lost connection in one pass is logged; the next pass runs at its time."""
    passes: list[int] = []

    async def flaky() -> None:
        passes.append(len(passes))
        if len(passes) == 2:
            raise OperationalError("SELECT 1", {}, ConnectionResetError("connection lost"))

    with capture_logs() as logs:
        task = asyncio.create_task(every(0.01, flaky, name="flaky"))
        while len(passes) < 5:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [e["event"] for e in logs] == ["task_pass_failed"]
    assert logs[0]["task"] == "flaky" and logs[0]["error"] == "OperationalError"


async def test_a_bug_ends_the_loop_for_the_supervisor_to_restart() -> None:
    """An error that is not a database hiccup leaves the loop: the supervisor logs it with its
    traceback and starts the loop again after a backoff."""
    starts: list[int] = []

    async def buggy() -> None:
        starts.append(1)
        await every(0.01, buggy_pass, name="buggy")

    with pytest.raises(ProgrammingError):
        await every(0.01, buggy_pass, name="direct")
    supervisor = Supervisor(max_backoff=0.05)
    with capture_logs() as logs:
        supervisor.start("buggy", buggy)
        while len(starts) < 3:
            await asyncio.sleep(0.01)
        await supervisor.stop()
    crashes = [e for e in logs if e["event"] == "task_crashed"]
    assert len(crashes) >= 2 and crashes[0]["task"] == "buggy"
    assert not [e for e in logs if e["event"] == "task_pass_failed"]


async def buggy_pass() -> None:
    raise ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))


async def test_a_wake_runs_the_pass_before_its_time() -> None:
    """Setting the wake event runs a pass at once instead of after the interval."""
    passes: list[float] = []
    wake = asyncio.Event()

    async def record() -> None:
        passes.append(asyncio.get_running_loop().time())

    task = asyncio.create_task(every(30, record, name="woken", wake=wake))
    try:
        while not passes:
            await asyncio.sleep(0.01)
        wake.set()
        while len(passes) < 2:
            await asyncio.sleep(0.01)
        assert passes[1] - passes[0] < 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_rings_within_the_delay_share_one_wake() -> None:
    """Five settlements 10 ms apart, with a 0.1 s wake delay, make one woken pass (their
    emails go as one batch), and a ring after that wake gets a wake of its own."""
    passes: list[float] = []
    wake = asyncio.Event()
    bell = DelayedWake(wake, 0.1)

    async def record() -> None:
        passes.append(asyncio.get_running_loop().time())

    task = asyncio.create_task(every(30, record, name="outbox", wake=wake))
    try:
        while not passes:  # the pass at start
            await asyncio.sleep(0.01)
        rung = asyncio.get_running_loop().time()
        for _ in range(5):
            bell.ring()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert len(passes) == 2 and 0.09 <= passes[1] - rung < 0.2
        bell.ring()
        await asyncio.sleep(0.2)
        assert len(passes) == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
