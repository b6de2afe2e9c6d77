"""A doorbell between relays and consumers: a relay rings (PostgreSQL NOTIFY, at its commit)
the topics it has just published to, and an idle consumer that paused its fetching resumes at
once. A consumer that waits for data then costs nearly nothing, yet hears of a hot lead
within a millisecond or two. A bell that does not ring (another database, a lost connection)
costs only latency: a paused consumer still looks every `recheck` seconds."""

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import DirectConnection, driver_connection

log = logging.getLogger(__name__)
CHANNEL = "leadflow_published"


async def ring(connection: asyncpg.Connection, topics: Iterable[str]) -> None:
    """Tell the listening consumers which topics have news (delivered when the caller commits)."""
    names = ",".join(sorted(set(topics)))
    if names:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, names)


async def ring_in(session: AsyncSession, names: Iterable[str]) -> None:
    """`ring`, in a session's transaction: for bells that are not topics (a table with new
    work for a loop in another process)."""
    await ring(await driver_connection(session), names)


async def answer(bell: asyncio.Event, wake: Callable[[], None]) -> None:
    """Wake a loop (`wake`) each time `bell` rings, until cancelled."""
    while True:
        await bell.wait()
        bell.clear()
        wake()


def _set(event: asyncio.Event, *_: object) -> None:
    event.set()


class Doorbell:
    """Listens on one connection of its own; `heard(topics)` is set when any of them rang."""

    def __init__(self, connection: DirectConnection) -> None:
        self.connection = connection
        self._events: list[tuple[frozenset[str], asyncio.Event]] = []

    def heard(self, topics: Iterable[str]) -> asyncio.Event:
        event = asyncio.Event()
        self._events.append((frozenset(topics), event))
        return event

    def _rang(self, connection: object, pid: int, channel: str, payload: str) -> None:
        rung = set(payload.split(","))
        for topics, event in self._events:
            if topics & rung:
                event.set()

    async def run(self) -> None:
        """Listen until cancelled; after a lost connection, listen again (and wake everyone,
        since a ring may have been missed meanwhile)."""
        backoff = 0.5
        while True:
            try:
                connection = await self.connection.get()
                closed = asyncio.Event()
                connection.add_termination_listener(functools.partial(_set, closed))
                await connection.add_listener(CHANNEL, self._rang)
                for _, event in self._events:
                    event.set()
                backoff = 0.5
                await closed.wait()
            except asyncio.CancelledError:
                await self.connection.close()
                raise
            except Exception as error:
                log.info("doorbell: listening again in %.1fs: %r", backoff, error)
            await self.connection.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
