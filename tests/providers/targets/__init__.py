"""The rows of the provider contract suite (``tests/providers/test_contract.py``).

To add a provider: write ``tests/providers/targets/<provider>.py`` with a
:class:`~tests.providers.targets.base.ContractTarget` subclass (see ``lnbits.py`` for an HTTP
provider), and add it to :data:`TARGETS` below. Every behaviour of the suite then runs for it.
"""

from tests.providers.targets.base import ContractTarget
from tests.providers.targets.cln import CLNTarget
from tests.providers.targets.lnbits import LNbitsTarget
from tests.providers.targets.lnd import LNDTarget
from tests.providers.targets.nwc import NWCTarget
from tests.providers.targets.testprovider import TestProviderTarget

TARGETS: list[type[ContractTarget]] = [
    TestProviderTarget,
    LNbitsTarget,
    NWCTarget,
    CLNTarget,
    LNDTarget,
]
