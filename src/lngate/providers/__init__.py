"""Lightning backends behind one small interface (see :mod:`lngate.providers.base`)."""

from lngate.providers.base import Capabilities, Provider

__all__ = ["Capabilities", "Provider"]
