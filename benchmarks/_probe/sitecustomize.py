"""Measurement-only hooks for ``bench_growth.py`` and ``bench_memory.py`` (never used otherwise).

Put on PYTHONPATH of a gateway process, this module runs at interpreter start and, when asked
through the environment, observes the process without changing what it does:

- ``LNGATE_BENCH_SQL_LOG=<path>``: every SQL statement the process sends (SQLAlchemy's
  ``after_cursor_execute``, on every engine) is counted and timed; one example of its
  parameters is kept. The totals are pickled to ``<path>.<pid>`` (one file per process: ``serve``
  migrates in a child) every two seconds and at exit, as
  ``{statement: [count, total_seconds, max_seconds, example_parameters]}``.
- ``LNGATE_BENCH_TRACEMALLOC=<folder>``: each ``SIGUSR2`` writes a tracemalloc snapshot to
  ``<folder>/snapshot-<n>.pickle``. Tracing (10 frames) starts at the first signal, not at
  start-up (tracing every import makes start-up minutes long): the snapshots show what was
  allocated after the first one, which is what a growth diff needs.
- ``LNGATE_BENCH_CPROFILE=<path>``: the first ``SIGUSR1`` starts ``cProfile`` on the main
  thread (the event loop), counting that thread's CPU time, the second stops it and writes its stats to ``<path>`` (the
  ``pstats`` format), so only the timed phase is profiled (``bench_webhook.py --cprofile``).
- ``LNGATE_BENCH_MEMSTATS=<folder>``: each ``SIGUSR2`` writes ``<folder>/memstats-<n>.json``,
  the process's memory by owner (``bench_memory.py --memstats``): ``/proc/self/status`` and
  ``smaps`` summed by kind of mapping (``[heap]``, anonymous, file-backed, stack), glibc's
  ``mallinfo2`` and ``malloc_info`` (per arena), pymalloc's ``sys._debugmallocstats``, SQLite's
  ``sqlite3_status64`` and, per connection, ``sqlite3_db_status`` (the connections are
  recorded as ``sqlite3.connect`` makes them). Not with ``LNGATE_BENCH_TRACEMALLOC`` (same
  signal).
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import threading
import time

_SQL_LOG = os.environ.get("LNGATE_BENCH_SQL_LOG")
_TRACE_DIR = os.environ.get("LNGATE_BENCH_TRACEMALLOC")
_CPROFILE = os.environ.get("LNGATE_BENCH_CPROFILE")
_MEMSTATS = os.environ.get("LNGATE_BENCH_MEMSTATS")


def _capture_sql(path: str) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    totals: dict[str, list[object]] = {}
    lock = threading.Lock()

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]  # noqa: ANN001, ARG001
        conn.info.setdefault("_bench_started", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]  # noqa: ANN001, ARG001
        started = conn.info.get("_bench_started")
        elapsed = time.perf_counter() - started.pop() if started else 0.0
        with lock:
            entry = totals.get(statement)
            if entry is None:
                example = parameters[0] if executemany and parameters else parameters
                totals[statement] = [1, elapsed, elapsed, example]
            else:
                entry[0] += 1  # type: ignore[operator]
                entry[1] += elapsed  # type: ignore[operator]
                entry[2] = max(entry[2], elapsed)  # type: ignore[call-overload]

    def dump() -> None:
        with lock:
            data = {k: list(v) for k, v in totals.items()}
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "wb") as out:
                pickle.dump(data, out)
        except (pickle.PicklingError, TypeError):
            for value in data.values():  # an unpicklable example: keep its text only
                value[3] = repr(value[3])
            with open(tmp, "wb") as out:
                pickle.dump(data, out)
        os.replace(tmp, path)

    def every_two_seconds() -> None:
        while True:
            time.sleep(2)
            dump()

    threading.Thread(target=every_two_seconds, daemon=True, name="bench-sql-log").start()
    atexit.register(dump)


def _trace_memory(folder: str) -> None:
    import tracemalloc

    taken = [0]

    def snapshot(_signum: int, _frame: object) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(10)
        taken[0] += 1
        tracemalloc.take_snapshot().dump(os.path.join(folder, f"snapshot-{taken[0]}.pickle"))

    signal.signal(signal.SIGUSR2, snapshot)


def _profile_on_signal(path: str) -> None:
    import cProfile

    profiler: list[cProfile.Profile] = []

    def toggle(_signum: int, _frame: object) -> None:
        if not profiler:
            # CPU time of the thread, not wall time: on a shared machine, time spent
            # descheduled would be charged to whatever function was running
            profiler.append(cProfile.Profile(time.thread_time))
            profiler[0].enable()
        else:
            profiler[0].disable()
            profiler.pop().dump_stats(path)

    signal.signal(signal.SIGUSR1, toggle)


if _SQL_LOG:
    _capture_sql(f"{_SQL_LOG}.{os.getpid()}")
if _TRACE_DIR:
    _trace_memory(_TRACE_DIR)
if _CPROFILE:
    _profile_on_signal(_CPROFILE)
if _MEMSTATS:
    from _memstats import dump_on_signal

    dump_on_signal(_MEMSTATS)
