"""An open-loop HTTP load generator: requests start at their scheduled times, answered or not.

A closed-loop generator (wrk, ``_loadgen.py``) waits for an answer before sending the next
request, so an overloaded server slows the offered load down and never sees more than its
connections. Here request *i* of a phase is due at ``phase start + i / rate`` whatever happened
before; a due request goes out on an idle keep-alive connection or on a new one, and its latency
counts from its due time. The HTTP/1.1 client is a bare asyncio protocol on uvloop, sending
on an idle connection without a task: about 50 µs of CPU a request (0.14 of a core at 2,600
requests/s, most of it the loop's system calls), where aiohttp takes several times that.

``--phases 450:3,1800:8,450:8`` offers 450 requests/s for 3 s, then 1,800/s for 8 s, then 450/s
for 8 s. Writes one JSON object to ``--out``: per request ``[phase, due, latency or null, status,
category, retry_after, new_connection]`` (times in seconds from the start; ``category`` is the
error ``code`` of a non-2xx JSON body, with the providers' codes for ``no_provider_available``;
``new_connection``: the request was the first on a connection opened for it), plus the phase
boundaries and the generator's own CPU seconds in each phase (``cpu_seconds``). Runs in its own
process so its CPU is not the gateway's; on a machine shared with the server it takes CPU the
server would have had, hence ``cpu_seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import resource
import time
from urllib.parse import urlsplit

REQUEST_TIMEOUT = 15.0
TICK = 0.001
"""The shortest wait between two sends: uvloop counts timers in whole milliseconds, so a shorter
sleep returns at once and the loop spins (it took most of a core at 2,600 requests/s); the
requests due meanwhile go out together, their latency still counted from their due times."""


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.head: tuple[int, int, bool, bool] | None = None
        self.request: list | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ready.set_result(None)

    def send(self, request: list) -> None:
        request[6] = self.sent == 0
        self.sent += 1
        self.request = request
        assert self.transport is not None
        self.transport.write(self.gen.payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            del self.buf[: end + 4]
            status = int(lines[0].split()[1])
            length, retry_after, close = 0, False, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"retry-after":
                    retry_after = True
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            self.head = (status, length, retry_after, close)
        status, length, retry_after, close = self.head
        if len(self.buf) < length:
            return
        body = bytes(self.buf[:length])
        del self.buf[:length]
        self.head = None
        request, self.request = self.request, None
        if request is not None:
            self.gen.done(request, status, _category(status, body), retry_after)
        if close:
            assert self.transport is not None
            self.transport.close()
        else:
            self.gen.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.gen.idle:
            self.gen.idle.remove(self)
        if self.request is not None:
            self.gen.done(self.request, 0, "connection_lost", False)
            self.request = None


@functools.lru_cache(maxsize=1024)
def _category(status: int, body: bytes) -> str:
    if status < 300:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return "non_json"
    code = str(data.get("code", "")) if isinstance(data, dict) else ""
    providers = data.get("providers") if isinstance(data, dict) else None
    if isinstance(providers, dict) and providers:
        code += ":" + ",".join(sorted({str(v).split(":")[0] for v in providers.values()}))
    return code


class Generator:
    def __init__(self, url: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.payload = (f"POST {parts.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                        ).encode() + body
        self.idle: list[Connection] = []
        self.results: list[list] = []
        self.outstanding = 0
        self.t0 = 0.0

    def done(self, request: list, status: int, category: str, retry_after: bool) -> None:
        request[2] = time.monotonic() - self.t0 - request[1]
        request[3], request[4], request[5] = status, category, retry_after
        self.outstanding -= 1

    async def connect_and_send(self, request: list) -> None:
        """Send ``request`` on a new connection (none is idle)."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(self), self.host,
                                                   self.port)
        except OSError as exc:
            request[3], request[4] = 0, f"connect: {type(exc).__name__}"
            self.outstanding -= 1
            return
        conn.send(request)

    async def run(self, phases: list[tuple[float, float]]) -> dict[str, object]:
        self.t0 = time.monotonic()
        started_at = time.time()
        tasks = set()
        boundaries = []
        start = 0.0
        cpu_at_starts = []
        for index, (rate, duration) in enumerate(phases):
            boundaries.append([start, start + duration, rate])
            cpu_at_starts.append(time.process_time())
            count = int(rate * duration)
            i = 0
            while i < count:
                now = time.monotonic() - self.t0
                while i < count and start + i / rate <= now:
                    request = [index, start + i / rate, None, None, None, None, False]
                    self.results.append(request)
                    self.outstanding += 1
                    if self.idle:
                        self.idle.pop().send(request)
                    else:
                        task = asyncio.ensure_future(self.connect_and_send(request))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    i += 1
                if i < count:
                    await asyncio.sleep(max(TICK, start + i / rate - (time.monotonic() - self.t0)))
            start += duration
        cpu_at_starts.append(time.process_time())
        waited_until = time.monotonic() + REQUEST_TIMEOUT
        while self.outstanding > 0 and time.monotonic() < waited_until:
            await asyncio.sleep(0.05)
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        # started_at: the wall clock at time 0, to line requests up with a server's own log
        return {"phases": boundaries, "requests": self.results, "started_at": started_at,
                "cpu_seconds": [b - a for a, b in zip(cpu_at_starts, cpu_at_starts[1:])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body", required=True)
    parser.add_argument("--phases", required=True, help="rate:seconds,rate:seconds,...")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    phases = [(float(r), float(d)) for r, d in (p.split(":") for p in args.phases.split(","))]
    gen = Generator(args.url, args.body.encode())
    try:
        import uvloop

        result = uvloop.run(gen.run(phases))
    except ImportError:
        result = asyncio.run(gen.run(phases))
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
