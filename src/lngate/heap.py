"""The cyclic garbage collector's settings for a serving process, and its C heap's free pages.

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

glibc's malloc keeps the memory a process frees for its own later use: only a free stretch at
the very top of its heap goes back to the system by itself. Start-up frees a lot (imports'
temporaries, the collection above), and requests free memory scattered between what stays, so
a serving process's resident memory held a few MiB of free heap pages, more as it served:
about 4 MiB from the 10,000th to the 50,000th request (docs/benchmarks.md).
:func:`trim_heap` hands every whole free page back (glibc's ``malloc_trim``); a serving process
does it once started and then every :data:`TRIM_INTERVAL` seconds (:func:`trim_heap_forever`),
a pass costing well under a millisecond. A page handed back costs a page fault when reused.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
from typing import Any

YOUNG_THRESHOLD = 10_000
"""Net container allocations between young collections (CPython's default: 700)."""
TRIM_INTERVAL = 10.0
"""Seconds between two hand-backs of free heap pages in a serving process."""


@functools.cache
def glibc() -> Any:
    """The C library when it is glibc (``mallopt``, ``malloc_trim``), else ``None``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt  # noqa: B018  (only glibc has both)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def trim_heap() -> bool:
    """Give the C heap's whole free pages back to the system; False where malloc is not
    glibc's (nothing done)."""
    libc = glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


async def trim_heap_forever(interval: float = TRIM_INTERVAL) -> None:
    """:func:`trim_heap` every ``interval`` seconds (a serving process's background loop)."""
    while True:
        await asyncio.sleep(interval)
        trim_heap()


def settle_heap() -> None:
    """Collect once, freeze the survivors out of later collections, collect the young less often,
    and give the free heap pages back.

    Call it once a serving process has built everything it keeps (after start-up), never in a
    process that goes on creating long-lived objects in bulk, such as the test suite.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    trim_heap()
