"""A TCP proxy in front of PostgreSQL that a test can cut and restore, run as a process of
its own (``python pgproxy.py UPSTREAM``) so that its copying never competes with the test's
event loop.

``UPSTREAM`` is ``host:port`` or the path of a Unix socket (the embedded server listens on
one). The proxy listens on 127.0.0.1 at a free port and prints it on its first line.

* ``SIGUSR1`` cuts: every connection through it is reset and new ones are refused, as when
  the server is stopped (the listening socket is closed: connection refused).
* ``SIGHUP`` freezes: connections stay open and new ones are taken, but no byte passes
  either way (a network partition, or a server that hangs).
* ``SIGUSR2`` restores either: it listens again on the same port, and bytes flow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = 0
        self.server: asyncio.Server | None = None
        self.connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.startswith("/"):
            return await asyncio.open_unix_connection(self.upstream)
        host, _, port = self.upstream.rpartition(":")
        return await asyncio.open_connection(host, int(port))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        try:
            up_reader, up_writer = await self._connect_upstream()
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self.connections.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            return  # the proxy is stopping
        finally:
            self.connections.discard(pair)

    async def listen(self) -> None:
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for client, upstream in list(self.connections):
            # Reset, not a polite close: what a client sees when the server goes away.
            for side in (client, upstream):
                sock = side.get_extra_info("socket")
                if sock is not None and sock.family != socket.AF_UNIX:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                side.transport.abort()
        self.connections.clear()


async def main(upstream: str) -> None:
    proxy = Proxy(upstream)
    await proxy.listen()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    listening: set[asyncio.Task[None]] = set()

    def restore() -> None:
        proxy.flowing.set()
        if proxy.server is None:
            task = loop.create_task(proxy.listen())
            listening.add(task)
            task.add_done_callback(listening.discard)

    loop.add_signal_handler(signal.SIGUSR1, proxy.cut)
    loop.add_signal_handler(signal.SIGUSR2, restore)
    loop.add_signal_handler(signal.SIGHUP, proxy.flowing.clear)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(proxy.port, flush=True)
    await stop.wait()
    proxy.cut()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
