"""One leader among the gateway's instances, for the work that must happen once.

Health probes, alert evaluation and delivery, metric roll-ups and retention, and the
reconciler's sweeps run on the leader only; every other instance runs the follower's loops
(reading the leader's stored probe results). On PostgreSQL the leader is the process holding
a session advisory lock (``pg_try_advisory_lock``) on a dedicated connection
(:class:`~lngate.store.coordination.AdvisoryLock`), held for as long as that connection lives:

- the others try to take it every ``retry_interval`` seconds (1 s), so when the leader dies
  (its process killed: the kernel closes its socket and PostgreSQL releases the lock at once)
  another instance leads within ``retry_interval`` plus one round trip, then starts its loops
  (the first probe round is part of taking the lead, within ``HEALTH_CHECK_TIMEOUT``);
- a leader that loses its connection (closed by the server, or a ping unanswered within
  ``ping_timeout``) stops its leader loops at once, before anybody else can take the lock:
  after a silent network loss PostgreSQL keeps the lock until its TCP keepalives give up
  (about 11 s), while the old leader stops within ``ping_interval + ping_timeout`` (4 s);
- a leader that lost the lock waits ``2 × retry_interval`` before trying again, so that an
  instance that kept its connection takes over first.

On SQLite there is one process, and it always leads (:class:`SoleElector`).

Leading and following are :class:`Role` values: loops run under a supervisor of their own
while the role is held, and ``enter`` runs first (the leader's first probe round and alert
state; the follower's first read of the stored probes). :class:`Leadership` itself runs under
the application's supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from lngate.store.database import is_transient
from lngate.tasks.supervisor import Supervisor

log = structlog.get_logger("lngate.leadership")

Loop = Callable[[], Awaitable[None]]
RETRY_INTERVAL = 1.0
"""Seconds between two attempts at the lock by an instance that does not lead."""
STEP_DOWN_PAUSE = 2.0
"""Times ``retry_interval`` a leader that lost the lock waits before trying again."""


class Elector(Protocol):
    """The lock that makes one process the leader."""

    async def try_acquire(self) -> bool:
        """One attempt; ``True`` when this process now holds the lock (or held it already)."""

    async def wait_lost(self) -> None:
        """Return once the lock can no longer be trusted to be held."""

    async def release(self) -> None:
        """Give the lock up."""


class SoleElector:
    """One process (SQLite): it always leads."""

    async def try_acquire(self) -> bool:
        """Always ``True``."""
        return True

    async def wait_lost(self) -> None:
        """Never returns."""
        await asyncio.Event().wait()

    async def release(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class Role:
    """What runs while this process leads, or follows."""

    name: str
    loops: Mapping[str, Loop] = field(default_factory=dict)
    enter: Callable[[], Awaitable[object]] | None = None
    """Run when the role is taken, before its loops start."""
    leave: Callable[[], object] | None = None
    """Run when the role is given up, after its loops stopped."""


class Leadership:
    """Takes the lead when it can, and runs the leader's or the follower's loops accordingly."""

    def __init__(self, elector: Elector, *, leader: Role, follower: Role,
                 retry_interval: float = RETRY_INTERVAL) -> None:
        self.elector = elector
        self.leader = leader
        self.follower = follower
        self.retry_interval = retry_interval
        self._role: Role | None = None
        self._loops: Supervisor | None = None
        self._settled: asyncio.Event | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this process leads now: the role is taken, its ``enter`` done and its loops
        started (work that waits for a leader must not start against a half-entered one)."""
        return self._role is self.leader and self._loops is not None

    @property
    def role(self) -> str | None:
        """``"leader"``, ``"follower"``, or ``None`` before the first attempt."""
        return self._role.name if self._role is not None else None

    @property
    def running_loops(self) -> list[str]:
        """The names of the current role's loops that are running."""
        return self._loops.names if self._loops is not None else []

    async def wait_settled(self) -> None:
        """Wait until the first role is taken (its ``enter`` done and its loops started)."""
        await self._settled_event().wait()

    def _settled_event(self) -> asyncio.Event:
        if self._settled is None:
            self._settled = asyncio.Event()
        return self._settled

    async def run(self) -> None:
        """Try for the lead, lead while the lock holds, follow otherwise; forever."""
        try:
            while True:
                if not await self._attempt():
                    await self._take(self.follower)
                    await asyncio.sleep(self.retry_interval)
                    continue
                await self._take(self.leader)
                await self.elector.wait_lost()
                log.warning("leadership_lost", reason="the lock's connection is lost or silent")
                await self._take(self.follower)
                await asyncio.sleep(self.retry_interval * STEP_DOWN_PAUSE)
        finally:
            await self._drop()
            await self.elector.release()

    async def _attempt(self) -> bool:
        try:
            return await self.elector.try_acquire()
        except Exception as exc:
            if not is_transient(exc):
                raise
            # the database is unreachable for now: follow, and try again at the next interval
            log.warning("leadership_attempt_failed", error=type(exc).__name__)
            return False

    async def _take(self, role: Role) -> None:
        """Give up the current role (its loops stop at once) and take ``role``."""
        if self._role is role:
            return
        await self._drop()
        self._role = role
        log.info("leadership_role", role=role.name)
        if role.enter is not None:
            try:
                await role.enter()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # the loops will do what the first pass could not
                log.error("leadership_enter_failed", role=role.name, error=type(exc).__name__)
        self._loops = Supervisor()
        for name, loop in role.loops.items():
            self._loops.start(name, loop)
        self._settled_event().set()

    async def _drop(self) -> None:
        loops, self._loops = self._loops, None
        if loops is not None:
            await loops.stop()
        role, self._role = self._role, None
        if role is not None and role.leave is not None:
            role.leave()
