"""The one notation of a rate limit (``60/minute``, ``10 per second``, ``100 per 2 hours``).

Settings check it and the limiter reads it with the same function: a value the settings accept
is one the limiter applies as written. It is a subset of the ``limits`` library's notation (the
library reads the same text on the Redis path, to the same amount and period) without the parts
that would apply something other than what was written: several limits in one value (the
library keeps only the first), a zero amount (every request refused) or a zero multiple (read
as one). Windows run from a second to a day.

Parsed here rather than by the library, which a process without Redis then never imports (it
and its dependencies are ~1.5 MiB per worker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_NOTATION = re.compile(r"\s*([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*(second|minute|hour|day)s?\s*",
                       re.IGNORECASE)
EXAMPLES = "'60/minute', '10 per second' or '100 per 2 hours'"


@dataclass(frozen=True, slots=True)
class Limit:
    """``amount`` hits per ``period`` seconds; ``text`` as written."""

    text: str
    amount: int
    period: int


def parse_limit(text: str) -> Limit:
    """The limit ``text`` states; ``ValueError`` saying what is accepted for anything else."""
    match = _NOTATION.fullmatch(text)
    if match is None:
        raise ValueError(f"a rate limit looks like {EXAMPLES} (one limit, a second to a day "
                         f"per window), got {text!r}")
    amount, multiple, unit = int(match[1]), match[2], match[3].lower()
    if amount == 0 or (multiple is not None and int(multiple) == 0):
        raise ValueError(f"a rate limit allows at least 1 request per window of at least 1 "
                         f"{unit}, got {text!r}")
    return Limit(text.strip(), amount, _UNIT_SECONDS[unit] * int(multiple or 1))
