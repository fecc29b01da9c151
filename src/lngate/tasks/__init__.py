"""Background loops: named, supervised, cancellable, owned by the application's lifespan."""

from lngate.tasks.supervisor import Supervisor

__all__ = ["Supervisor"]
