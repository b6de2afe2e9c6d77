"""Requests to other servers that survive a kept-alive connection closed under them."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

# How long an idle connection is kept for another request: under the 5 s after which uvicorn,
# Node and Apache close one. aiohttp's default is 15 s, and its pool hands out the longest idle
# connection first: after a burst left many idle together, a hot lead's webhook met one closed
# as it was sent, its one resend met the next, and the retry schedule waited 5 s.
KEPT_ALIVE_SECONDS = 4.0


def connector(**options: Any) -> aiohttp.TCPConnector:
    """aiohttp's connector, keeping idle connections only `KEPT_ALIVE_SECONDS`."""
    return aiohttp.TCPConnector(keepalive_timeout=KEPT_ALIVE_SECONDS, **options)


@contextlib.asynccontextmanager
async def post(
    session: aiohttp.ClientSession, url: str, **options: Any
) -> AsyncIterator[aiohttp.ClientResponse]:
    """`session.post`, sent once more at once when the connection was lost before any answer.
    A receiver closes a kept-alive connection once it has idled its timeout (5 s in uvicorn and
    Node, 2 s in gunicorn); a send that reuses it at that moment fails unanswered, and a hot
    lead then waited for the retry schedule's first step (5 s). aiohttp sends again by itself
    only for idempotent methods. A receiver may see the message twice, as any retry allows (a
    webhook keeps its id, a provider gets an Idempotency-Key; ingest's lead keys are a read).
    A connection that could not be made at all (`ClientConnectorError`) is not tried again here."""
    try:
        response = await session.post(url, **options)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        response = await session.post(url, **options)
    async with response:
        yield response
