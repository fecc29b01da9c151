"""The payment loops: reconciler (leader only), outbox and paid-invoice streams (every instance).

The outbox runs on every instance: each pass claims its rows with ``FOR UPDATE SKIP LOCKED``
and a lease, so instances share the work and none sends a row another holds. Paid-invoice
streams (NWC notifications) are doorbells: every instance listens, each notification makes it
call ``settle``, whose conditional update lets one of them win; a notification one instance
misses, another still hears (and the reconciler catches the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from lngate.notify.email import EmailSender
from lngate.notify.templates import EmailTemplates
from lngate.providers.base import Provider
from lngate.services.clock import WallClock
from lngate.services.doorbells import listen_paid_stream
from lngate.services.outbox import OutboxConfig, deliver_due
from lngate.services.reconciler import (
    ReconcilerConfig,
    ReconcilerState,
    Settle,
    reconcile_once,
)
from lngate.services.settlement import Settler
from lngate.store import Database
from lngate.tasks.leadership import Loop
from lngate.tasks.loops import every


async def run_reconciler(*, db: Database, settle: Settle, clock: WallClock,
                         config: ReconcilerConfig) -> None:
    """Reconcile now, then every ``config.interval`` seconds, forever; a pass that ended with
    invoices still due (the cap or the lease stopped it) is followed by the next one at once."""
    state = ReconcilerState(config)
    behind = asyncio.Event()

    async def reconcile_pass() -> None:
        report = await reconcile_once(db=db, settle=settle, clock=clock, config=config,
                                      state=state)
        if report.behind:
            behind.set()

    await every(config.interval, reconcile_pass, name="reconciler", wake=behind)


async def run_outbox(*, db: Database, sender: EmailSender, templates: EmailTemplates,
                     clock: WallClock, config: OutboxConfig,
                     wake: asyncio.Event | None = None) -> None:
    """Deliver now, then every ``poll_interval`` seconds or as soon as ``wake`` is set, forever."""
    await every(config.poll_interval, partial(deliver_due, db=db, sender=sender,
                                              templates=templates, clock=clock, config=config),
                name="outbox", wake=wake)


def reconciler_loop(settler: Settler, *, clock: WallClock, config: ReconcilerConfig) -> Loop:
    """The reconciler, for the leader."""
    return partial(run_reconciler, db=settler.db, settle=settler.settle, clock=clock,
                   config=config)


def instance_payment_loops(
    *,
    settler: Settler,
    clock: WallClock,
    providers: Sequence[Provider],
    email_sender: EmailSender,
    email_templates: EmailTemplates,
    outbox_config: OutboxConfig,
    outbox_wake: asyncio.Event | None,
) -> dict[str, Loop]:
    """The loops every instance runs: outbox delivery, and a listener per provider that streams
    paid invoices (NWC notifications)."""
    loops: dict[str, Loop] = {"outbox": partial(
        run_outbox, db=settler.db, sender=email_sender, templates=email_templates, clock=clock,
        config=outbox_config, wake=outbox_wake,
    )}
    for provider in providers:
        if provider.capabilities.paid_stream and hasattr(provider, "paid_invoices"):
            loops[f"paid-stream-{provider.name}"] = partial(
                listen_paid_stream, provider, name=provider.name,  # type: ignore[arg-type]
                settle=settler.settle,
            )
    return loops
