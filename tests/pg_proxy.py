"""A TCP proxy in front of PostgreSQL that can lose the answer to a COMMIT: the server commits,
and the client never hears so, as when the network or the client's host fails at that moment.
Nothing else is changed: every other byte passes as it came."""

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import make_url

from shared.embedded import free_port

_UNTYPED = {80877103, 80877104}  # SSLRequest, GSSENCRequest: the startup message follows


class CommitAnswers:
    """Listens on `port`, passing connections on to PostgreSQL at `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.lost = 0  # answers lost so far
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None

    def lose_the_next_after(self, marker: bytes) -> None:
        """Lose the answer to the next COMMIT of a transaction that sent `marker` (a piece of
        its statements' text), once; that connection is then closed both ways."""
        self._marker = marker

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        doomed = asyncio.Event()

        async def upstream() -> None:
            while True:  # the untyped startup messages
                header = await client.readexactly(8)
                length, code = struct.unpack("!ii", header)
                to_server.write(header + await client.readexactly(length - 8))
                if code not in _UNTYPED:
                    break
            marked = False
            while True:
                kind = await client.readexactly(1)
                length_bytes = await client.readexactly(4)
                body = await client.readexactly(struct.unpack("!i", length_bytes)[0] - 4)
                to_server.write(kind + length_bytes + body)
                await to_server.drain()
                if self._marker is not None and self._marker in body:
                    marked = True
                if kind == b"Q" and body.lstrip().upper().startswith((b"COMMIT", b"ROLLBACK")):
                    if marked and body.lstrip().upper().startswith(b"COMMIT") and self._marker is not None:
                        self._marker = None
                        doomed.set()
                    marked = False

        async def downstream() -> None:
            while data := await server.read(65536):
                if doomed.is_set():  # the COMMIT's answer: the server has committed
                    self.lost += 1
                    return
                to_client.write(data)
                await to_client.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (to_client, to_server):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    @asynccontextmanager
    async def running(self) -> AsyncIterator["CommitAnswers"]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()


def in_front_of(database_url: str) -> tuple[CommitAnswers, str]:
    """A proxy for the PostgreSQL of `database_url`, and the URL that goes through it."""
    url = make_url(database_url)
    proxy = CommitAnswers(url.port or 5432)
    return proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
