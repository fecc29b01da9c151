"""Helpers shared by the benchmark scripts: processes, CPU accounting, percentiles, tables.

Everything here talks to loopback only. Every process a benchmark starts is put in its own
process group (``start_new_session``) and stopped by group, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lngate.percentiles import percentile as nearest_rank_percentile

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
_SRC = {"path": REPO / "src", "label": "working tree"}
GATEWAY_ENV: dict[str, str] = {}
"""Extra settings for every gateway (the scripts' --gateway-env)."""


def set_gateway_env(pairs: list[str]) -> None:
    """Parse ``NAME=VALUE`` items into :data:`GATEWAY_ENV`."""
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--gateway-env wants NAME=VALUE, got {pair!r}")
        GATEWAY_ENV[name.strip()] = value
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

if str(REPO) not in sys.path:  # for tests.peers.*
    sys.path.insert(0, str(REPO))
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))


def log(message: str) -> None:
    """Progress output, on stderr, with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float:
    """The gateway's own nearest-rank percentile (lngate.percentiles), ``q`` in (0, 100];
    ``nan`` for no values."""
    if not values:
        return math.nan
    return nearest_rank_percentile(values, q)


def loadavg() -> str:
    """The 1-minute load average (other engineers' tests may share these 2 cores)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def steal_seconds() -> float:
    """CPU seconds the hypervisor has taken from this virtual machine since boot (all cores;
    the *steal* column of ``/proc/stat``): between two readings, CPU the processes measured did
    not get although they were runnable (0.0 where the kernel does not say)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_info() -> dict[str, object]:
    """Date, cores, CPU model, Python: for the result tables."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = dirty = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                                capture_output=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO,
                                text=True, capture_output=True, timeout=10).stdout
        dirty = str(len(status.splitlines()))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "src_files_uncommitted": dirty,
        "cores": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
    }


# ----------------------------------------------------------------------------- source snapshot


def snapshot_src(ref: str | None) -> Path:
    """Copy the gateway's source to a temporary folder and run every gateway from there.

    Other engineers edit ``src/`` while a benchmark runs; a half-written file would stop the
    next gateway from starting (or change what is measured mid-run). ``ref`` is a git ref
    (``HEAD``, a commit) to take ``src/`` from; ``None`` copies the working tree as it is now.
    """
    target = Path(tempfile.mkdtemp(prefix="lngate-bench-src-"))
    if ref:
        archive = subprocess.run(["git", "archive", "--format=tar", ref, "src"], cwd=REPO,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, text=True,
                                capture_output=True, check=True).stdout.strip()
        label = f"git {ref} ({commit})"
    else:
        shutil.copytree(REPO / "src", target / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        label = "working tree copied at " + time.strftime("%H:%M:%S")
    _SRC["path"], _SRC["label"] = target / "src", label
    return target


def src_path() -> Path:
    """Where gateways import ``lngate`` from (see :func:`snapshot_src`)."""
    return _SRC["path"]  # type: ignore[return-value]


def src_label() -> str:
    return str(_SRC["label"])


def cleanup_src() -> None:
    """Delete the snapshot made by :func:`snapshot_src` (never the repository's own src/)."""
    path = src_path()
    if path.name == "src" and path.parent.name.startswith("lngate-bench-src-"):
        shutil.rmtree(path.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- CPU accounting


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may contain spaces or parentheses.
    return raw[raw.rfind(b")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # after "pid (comm)": state=0 ppid=1 pgrp=2 ... utime=11 stime=12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    return sum(process_cpu_seconds(pid) for pid in group_members(pgid))


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) over all cores since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values)
    return (total - idle) / CLK_TCK, total / CLK_TCK


# ----------------------------------------------------------------------------- processes


class ManagedProcess:
    """A child process in its own process group, stopped (TERM, then KILL) by group."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, log_path: Path | None = None,
                 stdin: int | None = subprocess.DEVNULL, stdout: int | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log_file = open(log_path, "ab") if log_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=stdin,
            stdout=stdout if stdout is not None else (self._log_file or subprocess.DEVNULL),
            stderr=self._log_file or subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._log_file:
            self._log_file.close()
            self._log_file = None


def http_get(url: str, timeout: float = 2.0) -> int:
    """Status code of a GET (any HTTP answer), raising OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment minus every variable the gateway reads, plus ``extra``."""
    drop = {
        "LNBITS_ENDPOINT", "LNBITS_INVOICE_KEY", "LNBITS_API_KEY", "LNBITS_ADMIN_KEY",
        "LNBITS_WEBHOOK_SECRET", "LNBITS_NODE_PUBKEY", "NWC_URL", "RESEND_API_KEY",
        "NEXTAUTH_URL", "PUBLIC_URL", "DEBUG", "DATABASE_URL", "LIGHTNING_TEST_MODE",
        "LIGHTNING_NETWORK", "ADMIN_TOKEN", "RATE_LIMIT", "REDIS_URL", "TRUSTED_PROXIES",
        "LOG_FORMAT", "LNGATE_SKIP_MIGRATIONS",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


class GatewayProcess(ManagedProcess):
    """``python -m lngate serve`` on a free loopback port with a fresh SQLite file.

    Runs from its own temporary folder (so no ``.env`` is read), logs JSON to a file there.
    """

    def __init__(self, settings: dict[str, str], *, workers: int = 1,
                 workdir: Path | None = None, start_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lngate-bench-gw-"))
        self._own_workdir = workdir is None
        self.port = free_port()
        self.workers = workers
        self.db_path = self.workdir / "gateway.sqlite3"
        env = clean_env(
            LIGHTNING_TEST_MODE="false",
            RATE_LIMIT="1000000/second",
            DATABASE_URL=f"sqlite:///{self.db_path}",
            LOG_FORMAT="json",
            PYTHONPATH=str(src_path()),
        )
        env.update(GATEWAY_ENV)
        env.update(settings)
        argv = [sys.executable, "-m", "lngate", "serve", "--host", HOST, "--port", str(self.port),
                "--workers", str(workers)]
        super().__init__("gateway", argv, env=env, cwd=self.workdir,
                         log_path=self.workdir / "gateway.log")
        try:
            self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                http_get(f"{self.url}/api/check-invoice?id=ready", timeout=1.0)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)
        if self.workers > 1:
            # Each worker answers once its lifespan ran; give the others time to finish theirs.
            deadline = time.monotonic() + timeout
            while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the main one with 1 worker, else its children."""
        members = group_members(self.pid)
        if self.workers == 1:
            return [self.pid]
        return [pid for pid in members if pid != self.pid]

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)

    def cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def count_invoices(self) -> int:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute("SELECT count(*) FROM invoices").fetchone()[0]

    def provider_calls(self) -> list[dict[str, object]]:
        """Rows of ``provider_calls`` (read after stop(): the recorder flushes on shutdown)."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT provider, operation, started_at, duration_ms, outcome, error_type, "
                "error_message FROM provider_calls ORDER BY started_at, id"
            ).fetchall()
        return [dict(row) for row in rows]


def log_problems(path: Path, levels: tuple[str, ...] = ("warning", "error", "critical"),
                 detail: bool = False) -> dict[str, int]:
    """Events of a gateway's JSON log at ``levels``, counted by level and event name (and with
    ``detail``, the first line of the error or exception they carry)."""
    counts: Counter[str] = Counter()
    in_traceback = False
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("lngate-bench-ablate:"):
                counts[line] += 1  # which measurement-only patches applied or were skipped
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if "Traceback" in line or "ERROR" in line:
                    counts["(non-JSON) " + line[:80]] += 1
                    in_traceback = in_traceback or "Traceback" in line
                elif in_traceback and line[:1] not in ("", " ", "\t") and ":" in line:
                    # a traceback's last line: the exception and its message
                    counts["(non-JSON) raised " + line[:160]] += 1
                    in_traceback = False
                continue
            in_traceback = False
            if isinstance(event, dict) and event.get("level") in levels:
                key = f"{event.get('level')}: {event.get('event')}"
                if detail:
                    cause = event.get("error") or event.get("exception") or event.get("exc_info")
                    if cause:
                        key += f" ({str(cause).strip().splitlines()[-1][:160]})"
                counts[key] += 1
    return dict(counts)


# ----------------------------------------------------------------------------- output


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Print a Markdown table (so it can be pasted in the docs) and return it."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    lines = [f"\n### {title}\n",
             "| " + " | ".join(str(h).ljust(w)
                               for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def save_results(name: str, data: object) -> Path:
    """Write the raw results as JSON under benchmarks/results/ (git-ignored)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
