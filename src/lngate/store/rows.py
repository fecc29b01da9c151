"""Result rows as the type checker can read them.

The tables' columns are untyped (``Column[Any]``), so a statement's rows are
``Row[*tuple[Any, ...]]``, whose values mypy unpacks as ``object``. :func:`row_values` hands the
same rows on, uncopied, as sequences of ``Any``; each query then converts the values it reads
(``int(n)``, ``str(name)``) at its boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row


def row_values(result: Iterable[Row[Any]]) -> Iterable[Sequence[Any]]:
    """The rows of ``result``, typed as sequences of ``Any`` (no copy, no conversion)."""
    return cast("Iterable[Sequence[Any]]", result)
