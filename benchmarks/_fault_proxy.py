"""A TCP proxy in front of LNbits that injects faults, for ``bench_failover.py``.

Run as its own process. It listens on ``--port`` and, by mode:

- ``forward``: relays bytes to ``--target`` (the real LNbits);
- ``hang``: accepts connections and never answers (bytes from the client are swallowed, on new
  and already open connections alike), like a hung server;
- ``refuse``: closes its listening socket and resets every open connection, so the port refuses
  connections like a stopped LNbits (it listens again on the same port when the mode changes);
- ``reject``: answers every HTTP request at once with ``400 {"detail": "benchmark warm-up"}``
  (a client error: the gateway moves on to the next provider without counting it against the
  breaker or the latency statistics; used to warm up the fallback through the gateway);
- ``flap A B K``: alternates between modes A and B every K seconds, starting with A.

Commands arrive on stdin, one per line (``mode hang``, ``mode flap forward hang 5``); each is
acknowledged on stdout with ``ok <mode> <unix time>``, and every switch of a flap with
``switch <mode> <unix time>``, so the benchmark can tell which mode each request met.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import sys
import time

REJECT_BODY = b'{"detail": "benchmark warm-up"}'
REJECT = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
          b"Content-Length: " + str(len(REJECT_BODY)).encode() + b"\r\n\r\n" + REJECT_BODY)


class Proxy:
    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.mode = "forward"
        self.server: asyncio.base_events.Server | None = None
        self.clients: set[ClientSide] = set()
        self.flapper: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        if self.server is None:
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(lambda: ClientSide(self), "127.0.0.1",
                                                   self.port, reuse_address=True, backlog=512)

    async def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "refuse":
            if self.server is not None:
                self.server.close()
                self.server = None
            for client in list(self.clients):
                client.reset()
        else:
            await self.listen()

    async def command(self, words: list[str]) -> str:
        if self.flapper is not None:
            self.flapper.cancel()
            self.flapper = None
        if words[0] == "flap":
            a, b, period = words[1], words[2], float(words[3])
            await self.set_mode(a)
            self.flapper = asyncio.create_task(self._flap(a, b, period))
            return f"flap {a} {b} {period:g}"
        await self.set_mode(words[0])
        return words[0]

    async def _flap(self, a: str, b: str, period: float) -> None:
        current = a
        while True:
            await asyncio.sleep(period)
            current = b if current == a else a
            await self.set_mode(current)
            print(f"switch {current} {time.time():.6f}", flush=True)


class UpstreamSide(asyncio.Protocol):
    def __init__(self, client: ClientSide) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        if self.client.transport is not None and not self.client.transport.is_closing():
            self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class ClientSide(asyncio.Protocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.connecting = False
        self.http_buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proxy.clients.add(self)

    def data_received(self, data: bytes) -> None:
        mode = self.proxy.mode
        if mode == "forward":
            if self.upstream is not None:
                self.upstream.write(data)
            else:
                self.pending.append(data)
                if not self.connecting:
                    self.connecting = True
                    asyncio.ensure_future(self._connect())
        elif mode == "reject":
            self._reject(data)
        # hang: swallow

    def _reject(self, data: bytes) -> None:
        self.http_buffer += data
        while True:
            head, sep, rest = self.http_buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if len(rest) < length:
                return
            self.http_buffer = rest[length:]
            assert self.transport is not None
            self.transport.write(REJECT)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: UpstreamSide(self),
                                                        *self.proxy.target)
        except OSError:
            self.close()
            return
        self.upstream = transport  # type: ignore[assignment]
        for chunk in self.pending:
            transport.write(chunk)  # type: ignore[attr-defined]
        self.pending.clear()

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0), like a server that went away."""
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.clients.discard(self)
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.close()


async def serve(port: int, target: tuple[str, int]) -> None:
    proxy = Proxy(port, target)
    await proxy.listen()
    print(f"ready {port} {time.time():.6f}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        words = line.decode().split()
        if len(words) >= 2 and words[0] == "mode":
            done = await proxy.command(words[1:])
            print(f"ok {done.replace(' ', '_')} {time.time():.6f}", flush=True)
        elif words:
            print(f"error unknown command {words!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port of the real LNbits")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(serve(args.port, (host, int(port))))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
