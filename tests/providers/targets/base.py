"""What the contract suite needs to know about one provider: a *contract target*.

A target builds its provider against its real peer (or a double where no peer can stage a
failure), pays an invoice the way a customer would, and stages the failure modes it can:
``HANG`` (the upstream accepts and never answers), ``GARBAGE`` (the next answer is malformed),
``BAD_CREDENTIALS`` (the upstream refuses our credentials). A mode a provider cannot have (the
test provider has no upstream) is simply not declared in :attr:`ContractTarget.stages`, and the
tests of that mode are not generated for it.

Everything a target opens goes on its ``stack`` (closed after each test); peers are fetched
lazily with ``request.getfixturevalue`` so a test only starts the peers it uses.
"""

from __future__ import annotations

import abc
import enum
from contextlib import AsyncExitStack
from typing import ClassVar

import pytest

from lngate.domain import ProviderInvoice
from lngate.providers.base import Provider


class Stage(enum.Enum):
    """A failure mode a target can stage."""

    HANG = "hang"
    GARBAGE = "garbage"
    BAD_CREDENTIALS = "bad_credentials"


class Garbage(enum.Enum):
    """How a staged malformed answer is broken."""

    NOT_JSON = "not_json"
    MISSING_FIELDS = "missing_fields"
    WRONG_TYPES = "wrong_types"


class Call(enum.Enum):
    """The provider call a staged malformed answer is the answer to."""

    CREATE = "create"
    STATUS = "status"
    HEALTH = "health"


class ContractTarget(abc.ABC):
    """One row of the contract suite (one module per provider under this package)."""

    id: ClassVar[str]
    """The test id of the row."""
    marks: ClassVar[tuple[str, ...]] = ()
    """Markers of the peers the row may start (``lnbits``, ``nwc``)."""
    stages: ClassVar[frozenset[Stage]] = frozenset()
    timeout: ClassVar[float] = 1.0
    """The call timeout of the providers built for :meth:`hung`."""

    def __init__(self, request: pytest.FixtureRequest, stack: AsyncExitStack) -> None:
        self.request = request
        self.stack = stack

    @abc.abstractmethod
    async def provider(self) -> Provider:
        """The provider against its real peer, healthy (built once per test)."""

    @abc.abstractmethod
    async def pay(self, invoice: ProviderInvoice) -> None:
        """Pay ``invoice`` in full, as a customer's wallet would."""

    @abc.abstractmethod
    def construct(self, port: int) -> Provider:
        """A provider whose upstream would be ``127.0.0.1:port`` (for "constructing opens
        nothing"; the suite closes it)."""

    @abc.abstractmethod
    def secrets(self) -> list[str]:
        """Every secret the providers of this target hold (none may appear in any text)."""

    async def hung(self) -> Provider:
        """A provider (call timeout :attr:`timeout`) whose upstream never answers."""
        raise NotImplementedError

    async def garbled(self, call: Call, garbage: Garbage) -> Provider:
        """A provider whose next ``call`` gets a malformed 2xx answer."""
        raise NotImplementedError

    async def refusing_credentials(self) -> tuple[Provider, str]:
        """A provider whose credentials the upstream refuses, and the payment hash of an
        invoice that exists upstream (so a lookup cannot be a plain "unknown")."""
        raise NotImplementedError
