"""The payment loops, started under the app's supervisor: reconciler, outbox, paid streams."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from lngate.notify.email import EmailSender
from lngate.notify.templates import EmailTemplates
from lngate.providers.base import Provider
from lngate.services.clock import WallClock
from lngate.services.doorbells import listen_paid_stream
from lngate.services.outbox import OutboxConfig, run_outbox
from lngate.services.reconciler import ReconcilerConfig, run_reconciler
from lngate.services.settlement import Settler
from lngate.tasks.supervisor import Supervisor


def start_payment_tasks(
    supervisor: Supervisor,
    *,
    settler: Settler,
    clock: WallClock,
    providers: Sequence[Provider],
    reconciler_config: ReconcilerConfig,
    email_sender: EmailSender,
    email_templates: EmailTemplates,
    outbox_config: OutboxConfig,
    outbox_wake: asyncio.Event | None,
) -> None:
    """Reconcile (now and every interval), deliver the outbox, and listen to every provider
    that streams paid invoices (NWC notifications)."""
    supervisor.start("reconciler", partial(
        run_reconciler, db=settler.db, settle=settler.settle, clock=clock,
        config=reconciler_config,
    ))
    supervisor.start("outbox", partial(
        run_outbox, db=settler.db, sender=email_sender, templates=email_templates, clock=clock,
        config=outbox_config, wake=outbox_wake,
    ))
    for provider in providers:
        if provider.capabilities.paid_stream and hasattr(provider, "paid_invoices"):
            supervisor.start(f"paid-stream-{provider.name}", partial(
                listen_paid_stream, provider, name=provider.name,  # type: ignore[arg-type]
                settle=settler.settle,
            ))
