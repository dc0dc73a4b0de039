"""uvicorn serving connections that another process accepted: `newswatch serve` with several workers.

The parent accepts every connection on the one listening socket and hands each to the next worker in turn,
as a file descriptor over a Unix socket (SCM_RIGHTS). So each worker holds its share of the connections:
with a listening socket each (SO_REUSEPORT) the kernel placed connections at random, and 20 clients often
came out 12 to 8 or worse — a search runs on the worker's event loop, one at a time, so the clients of the
busier worker waited longer (benchmarks/query.py: /api/search p95 58-76 ms across runs, 52-57 ms for an even
split). A worker reads its connections from the descriptors as uvicorn would from its own socket.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

# One descriptor a message; the byte goes with it (a message cannot be empty).
HANDOFF_BYTE = b"c"


def hand_over(channel: socket.socket, connection: socket.socket) -> None:
    """Pass `connection` to the worker at the other end of `channel` (the caller then closes its copy).
    Raises OSError when that worker is gone or its queue is full, without waiting."""
    socket.send_fds(channel, [HANDOFF_BYTE], [connection.fileno()], socket.MSG_DONTWAIT)


class HandedServer(uvicorn.Server):
    """A uvicorn server without a listening socket: it serves the connections that arrive on `channel`."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel
        self._taking: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references to tasks

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan, and no socket of its own
        self._channel.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(self._channel.fileno(), self._receive, loop)

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        # Every connection waiting, not one: a turn of the event loop can take long (each connection with a
        # request gets its search run), and taking one a turn left the last of a burst unserved for seconds.
        while True:
            try:
                data, descriptors, _flags, _address = socket.recv_fds(self._channel, 1, 1)
            except BlockingIOError:
                return
            if not data:  # the parent closed its end: no more connections will come (it stops this worker)
                loop.remove_reader(self._channel.fileno())
                return
            for descriptor in descriptors:
                task = loop.create_task(self._take(loop, socket.socket(fileno=descriptor)))
                self._taking.add(task)
                task.add_done_callback(self._taking.discard)

    async def _take(self, loop: asyncio.AbstractEventLoop, connection: socket.socket) -> None:
        # What uvicorn's own server does for a connection it accepts (uvicorn.Server.startup's factory).
        protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        try:
            await loop.connect_accepted_socket(lambda: protocol, connection)
        except OSError:  # the client went away while the connection was handed over
            connection.close()
