"""A serving process gives the C heap's free pages back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from lngate import heap

_FREE_SCATTERED = """
import sys
from lngate.heap import trim_heap

def rss_kib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])

# 40 MiB in 4 KiB blocks (malloc's, not Python's small-object allocator), then three blocks in
# four freed: the free memory is scattered between live blocks, so malloc keeps it resident
blocks = [bytes(4000) for _ in range(10_000)]
blocks = blocks[::4]
before = rss_kib()
assert trim_heap()
print(before - rss_kib())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_hands_scattered_free_memory_back() -> None:
    """Memory freed between live blocks stays resident until the trim hands its pages back."""
    result = subprocess.run([sys.executable, "-c", _FREE_SCATTERED], capture_output=True,
                            text=True, timeout=60, check=True)
    assert int(result.stdout) > 10 * 1024  # KiB given back, of about 30 MiB freed


def test_trim_does_nothing_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where malloc is not glibc's, trimming is skipped and says so."""
    monkeypatch.setattr(heap, "glibc", lambda: None)
    assert heap.trim_heap() is False
