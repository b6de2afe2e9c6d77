"""A receiver closes a kept-alive connection once it has idled its timeout; a webhook or provider
send that reuses it at that moment is lost unanswered. `shared.outgoing.post` (nurture's webhooks
and providers, the lead-key fetch) sends it again at once, on a new connection: a hot lead's
webhook waited for the retry schedule (5 s). Against a real HTTP server on localhost that drops
the second request on each connection unanswered."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest

from shared import outgoing
from shared.outgoing import post


@dataclass
class Dropping:
    """Answers 204 to the first request on each connection; closes it on the `drop_from`th."""

    drop_from: int = 2
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for number in range(1, 100):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(await reader.readexactly(length))
                if number >= self.drop_from:
                    return  # closed as the request came, unanswered
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()


@asynccontextmanager
async def dropping(drop_from: int = 2) -> AsyncIterator[Dropping]:
    receiver = Dropping(drop_from)
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver


async def test_a_send_on_a_kept_alive_connection_closed_under_it_goes_again_at_once_on_a_new_one() -> None:
    async with dropping() as receiver, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{receiver.port}/hook"
        async with post(session, url, data=b"first") as answer:
            assert answer.status == 204
        async with post(session, url, data=b"second") as answer:
            assert answer.status == 204
        # the second went on the kept-alive connection, was dropped, and went again on a new one
        assert receiver.requests == [b"first", b"second", b"second"]
        assert receiver.connections == 2
        # what a plain POST does there: it fails (the case the schedule's 5 s used to wait for)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with session.post(url, data=b"third") as answer:
                pass


async def test_a_receiver_that_drops_every_request_is_tried_twice_then_the_send_fails() -> None:
    async with dropping(drop_from=1) as receiver, aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with post(session, f"http://127.0.0.1:{receiver.port}/hook", data=b"lost"):
                pass
    assert receiver.requests == [b"lost", b"lost"]


async def test_a_connection_that_cannot_be_made_is_not_tried_again_here() -> None:
    async with dropping() as receiver:
        port = receiver.port
    dialled: list[object] = []
    tracing = aiohttp.TraceConfig()

    async def dialling(*_: object) -> None:
        dialled.append(None)

    tracing.on_connection_create_start.append(dialling)
    async with aiohttp.ClientSession(trace_configs=[tracing]) as session:  # nothing listens there now
        with pytest.raises(aiohttp.ClientConnectorError):
            async with post(session, f"http://127.0.0.1:{port}/hook", data=b"nobody"):
                pass
    assert len(dialled) == 1  # the schedule retries it, not this


@dataclass
class ClosingIdle:
    """Answers 204, but a request on a connection idle `closes_after` seconds since its last
    answer is dropped unanswered: the moment a server closes an idle connection (uvicorn's
    5 s) as the request comes, met on every such connection."""

    closes_after: float
    requests: int = 0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if b"content-length" in line.lower()
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.requests += 1
                now = asyncio.get_running_loop().time()
                if answered is not None and now - answered >= self.closes_after:
                    return  # closed as the request came, unanswered
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
                await writer.drain()
                answered = asyncio.get_running_loop().time()
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()


async def test_connections_left_idle_together_by_a_burst_are_not_sent_on_at_the_receivers_timeout() -> None:
    """aiohttp kept idle connections 15 s and hands out the longest idle first: after a burst,
    a quiet of the receiver's timeout met one closed as the webhook was sent, the resend the
    next, and the hot lead waited for the retry schedule (the 5-second outliers of make bench)."""
    receiver = ClosingIdle(closes_after=outgoing.KEPT_ALIVE_SECONDS + 0.5)
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    async with server, aiohttp.ClientSession(connector=outgoing.connector()) as session:

        async def send(body: bytes) -> int:
            async with post(session, url, data=body) as answer:
                return answer.status

        assert await asyncio.gather(*(send(b"burst") for _ in range(3))) == [204] * 3  # 3 connections
        await asyncio.sleep(receiver.closes_after)  # the quiet under test, not a wait for a task
        assert await send(b"after the quiet") == 204
