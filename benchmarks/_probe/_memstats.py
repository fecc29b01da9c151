"""Measurement only: a process's memory by owner, dumped as JSON on ``SIGUSR2``.

Loaded by ``_probe/sitecustomize.py`` when ``LNGATE_BENCH_MEMSTATS`` names a folder; read by
``bench_memory.py --memstats``. Each dump holds:

- ``status``: ``VmRSS``, ``RssAnon``, ``RssFile`` … from ``/proc/self/status`` (KiB);
- ``smaps``: Rss and Size (KiB) summed by kind of mapping: ``heap`` (glibc's main arena, the
  ``brk`` heap), ``glibc_arenas`` (anonymous mappings starting on a 64 MiB boundary, where glibc
  puts its other arenas' heaps), ``stack``, ``anon`` (every other anonymous mapping: pymalloc's
  1 MiB arenas, glibc's mmapped blocks, thread stacks, which the kernel may merge), ``file``;
- ``mallinfo2``: glibc's totals over all arenas (bytes), and ``malloc_info``: per arena;
- ``pymalloc``: the ``# name = value`` lines of ``sys._debugmallocstats()`` and its table by
  size class;
- ``sqlite``: ``sqlite3_status64`` of the ``libsqlite3`` that ``_sqlite3`` links, and per live
  connection ``sqlite3_db_status`` (cache, schema, statements, lookaside) and
  ``sqlite3_txn_state`` (0 none, 1 read, 2 write), numbered in the order they were opened.

The dump allocates (a few hundred KiB, freed) and takes a few milliseconds on the signal's
thread (the main thread, between two bytecodes of the event loop).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import signal
import sqlite3
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from typing import Any

_ARENA_ALIGN = 64 * 1024 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit
_connections: list[sqlite3.Connection] = []  # kept (no weak references to them); tiny
_lock = threading.Lock()

# sqlite3_status64 operations (sqlite3.h)
_SQLITE_STATUS = {"memory_used": 0, "pagecache_used": 1, "pagecache_overflow": 2,
                  "malloc_size": 5, "pagecache_size": 7, "malloc_count": 9}
# sqlite3_db_status operations
_SQLITE_DBSTATUS = {"lookaside_used": 0, "cache_used": 1, "schema_used": 2, "stmt_used": 3,
                    "cache_hit": 7, "cache_miss": 8, "cache_spill": 12}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c"))


def _libsqlite() -> Any:
    """The libsqlite3 that ``_sqlite3`` links (already loaded: dlopen returns the same one)."""
    for line in open("/proc/self/maps"):
        if "libsqlite3" in line:
            return ctypes.CDLL(line.split()[-1])
    return None


def _status() -> dict[str, int]:
    out = {}
    for line in open("/proc/self/status"):
        name, _, value = line.partition(":")
        if name.startswith(("Vm", "Rss")):
            out[name] = int(value.split()[0])
    return out


def _smaps() -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    files: dict[str, int] = {}
    path = ""
    current: dict[str, int] | None = None
    previous_end = -1
    previous_kind = ""
    for line in open("/proc/self/smaps"):
        first = line.split(maxsplit=5)
        if "-" in first[0] and len(first) >= 5 and not first[0].endswith(":"):
            start_s, end_s = first[0].split("-")
            start, end = int(start_s, 16), int(end_s, 16)
            path = first[5].strip() if len(first) > 5 else ""
            if path == "[heap]":
                kind = "heap"
            elif path.startswith("[stack"):
                kind = "stack"
            elif path.startswith("["):
                kind = "special"
            elif path:
                kind = "file"
            elif start % _ARENA_ALIGN == 0 or (previous_kind == "glibc_arenas"
                                                and start == previous_end):
                kind = "glibc_arenas"  # its heap, and the reserved rest right after it
            else:
                kind = "anon"
            previous_end, previous_kind = end, kind
            current = kinds.setdefault(kind, {"mappings": 0, "Size": 0, "Rss": 0,
                                              "Private_Dirty": 0})
            current["mappings"] += 1
            continue
        name, _, value = line.partition(":")
        if current is not None and name in ("Size", "Rss", "Private_Dirty"):
            current[name] += int(value.split()[0])
            if name == "Rss" and previous_kind == "file":
                files[path] = files.get(path, 0) + int(value.split()[0])
    kinds["files"] = files  # Rss (KiB) by file
    return kinds


def _mallinfo(libc: Any) -> dict[str, Any]:
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    out: dict[str, Any] = {name: getattr(info, name) for name, _ in _Mallinfo2._fields_}
    with tempfile.NamedTemporaryFile(suffix=".xml") as tmp:
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        fp = libc.fopen(tmp.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        root = ET.parse(tmp.name).getroot()
    heaps = []
    for heap in root.findall("heap"):
        entry: dict[str, Any] = {"nr": heap.get("nr")}
        for total in heap.findall("total"):
            entry[f"free_{total.get('type')}"] = int(total.get("size", 0))
            entry[f"free_{total.get('type')}_count"] = int(total.get("count", 0))
        for system in heap.findall("system"):
            entry[f"system_{system.get('type')}"] = int(system.get("size", 0))
        for aspace in heap.findall("aspace"):
            entry[f"aspace_{aspace.get('type')}"] = int(aspace.get("size", 0))
        heaps.append(entry)
    out["heaps"] = heaps
    for total in root.findall("total"):
        out[f"total_free_{total.get('type')}"] = int(total.get("size", 0))
    for system in root.findall("system"):
        out[f"total_system_{system.get('type')}"] = int(system.get("size", 0))
    return out


def _pymalloc(libc: Any) -> dict[str, Any]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
            libc.fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    figures: dict[str, Any] = {}
    classes = []
    for line in text.splitlines():
        named = re.match(r"^# (.+?)\s+=\s+([\d,]+)$", line)
        if named:
            figures.setdefault(named.group(1), int(named.group(2).replace(",", "")))
        elif line.startswith("Total") and "arena_total" not in figures:
            figures["arena_total"] = int(line.split("=")[1].replace(",", ""))
        row = re.match(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line)
        if row:
            classes.append([int(x) for x in row.groups()])
    figures["classes"] = classes  # size class, size, pools, blocks in use, available blocks
    figures["allocated_blocks"] = sys.getallocatedblocks()
    return figures


def _sqlite() -> dict[str, Any]:
    lib = _libsqlite()
    if lib is None:
        return {}
    current, high = ctypes.c_int64(), ctypes.c_int64()
    out: dict[str, Any] = {}
    for name, op in _SQLITE_STATUS.items():
        lib.sqlite3_status64(op, ctypes.byref(current), ctypes.byref(high), 0)
        out[name] = current.value
        out[f"{name}_high"] = high.value
    lib.sqlite3_db_filename.restype = ctypes.c_char_p
    lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    per = []
    c32, h32 = ctypes.c_int(), ctypes.c_int()
    with _lock:
        connections = list(_connections)
    lib.sqlite3_txn_state.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    for number, conn in enumerate(connections):
        # pysqlite_Connection: PyObject_HEAD (16 bytes) then ``sqlite3 *db``, NULL once closed
        db = ctypes.c_void_p.from_address(id(conn) + 16).value
        if not db:
            continue
        entry: dict[str, Any] = {"number": number,
                                 "txn_state": lib.sqlite3_txn_state(ctypes.c_void_p(db), None),
                                 "file": (lib.sqlite3_db_filename(ctypes.c_void_p(db), b"main")
                                          or b"").decode()}
        for name, op in _SQLITE_DBSTATUS.items():
            lib.sqlite3_db_status(ctypes.c_void_p(db), op, ctypes.byref(c32),
                                  ctypes.byref(h32), 0)
            entry[name] = c32.value
        per.append(entry)
    out["connections"] = per
    return out


def _record_connections() -> None:
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(*args, **kwargs)
        with _lock:
            _connections.append(conn)
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]


def dump(path: str) -> None:
    """Write the dump described in the module docstring to ``path``."""
    libc = _libc()
    data = {"pid": os.getpid(), "status": _status(), "smaps": _smaps(),
            "mallinfo2": _mallinfo(libc), "pymalloc": _pymalloc(libc), "sqlite": _sqlite()}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def dump_on_signal(folder: str) -> None:
    """Record SQLite connections from now on, and :func:`dump` on each ``SIGUSR2``."""
    _record_connections()
    taken = [0]

    def on_signal(_signum: int, _frame: object) -> None:
        taken[0] += 1
        dump(os.path.join(folder, f"memstats-{taken[0]}.json"))

    signal.signal(signal.SIGUSR2, on_signal)
