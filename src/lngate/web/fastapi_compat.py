"""FastAPI's check for pydantic v1 models, answered without importing ``pydantic.v1``.

FastAPI asks, for every parameter of every route it registers, whether its annotation is a
pydantic v1 model, to refuse one with a clear error (FastAPI no longer supports them); to ask,
it imports ``pydantic.v1``, a second copy of pydantic that nothing in lngate uses: about 2 MiB
of memory in every process serving the app. A class can only be a ``pydantic.v1.BaseModel``
once ``pydantic.v1`` has been imported, so until then the answer is "no" without importing it;
afterwards FastAPI's own check runs, unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

_PATCHED = "_lngate_without_pydantic_v1"


def check_pydantic_v1_models_lazily() -> None:
    """Make FastAPI's v1-model check import ``pydantic.v1`` only when it is already loaded
    (idempotent; does nothing if this FastAPI has no such check)."""
    from fastapi._compat import shared

    original = getattr(shared, "is_pydantic_v1_model_class", None)
    if original is None or getattr(original, _PATCHED, False):
        return

    def is_pydantic_v1_model_class(cls: Any) -> bool:
        return "pydantic.v1" in sys.modules and bool(original(cls))

    setattr(is_pydantic_v1_model_class, _PATCHED, True)
    shared.is_pydantic_v1_model_class = is_pydantic_v1_model_class
