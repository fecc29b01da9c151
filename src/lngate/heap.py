"""The cyclic garbage collector's settings for a serving process.

CPython runs a young-generation collection every 700 net allocations of container objects and,
every hundred of those, a full collection that walks every tracked object. A serving process
holds about 160,000 objects from its start (modules, SQLAlchemy's metadata, FastAPI's routes and
pydantic models, the gateway) that live until it exits, yet each full collection walked them
again; and a created invoice allocates a few hundred short-lived objects, so a young collection
ran every other request. Together that was about a tenth of a created invoice's CPU.

Once the process has started, :func:`settle_heap` moves what is alive into the permanent generation
(``gc.freeze``), which collections ignore, so full collections walk only what requests left behind,
and raises the young threshold, so short-lived objects mostly die before a collection looks at
them. Cycles are still collected; objects alive at start-up are never collected, which costs
nothing as they live until exit anyway.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between young collections (CPython's default: 700)."""


def settle_heap() -> None:
    """Collect once, freeze the survivors out of later collections, collect the young less often.

    Call it once a serving process has built everything it keeps (after start-up), never in a
    process that goes on creating long-lived objects in bulk, such as the test suite.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
