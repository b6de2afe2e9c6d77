"""A doorbell between relays and consumers: a relay rings (PostgreSQL NOTIFY, at its commit)
the topics it has just published to, and an idle consumer that paused its fetching resumes at
once. A consumer that waits for data then costs nearly nothing, yet hears of a hot lead
within a millisecond or two. A bell that does not ring (another database, a lost connection)
costs only latency: a paused consumer still looks every `recheck` seconds.

Each topic (or bell) rings a channel of its own, and a process listens only to those it waits
for: with one channel for all, every ring woke every listening process and its PostgreSQL
backend, for the few that cared."""

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import DirectConnection, driver_connection
from shared.faults import raise_hidden_stop

log = logging.getLogger(__name__)
PREFIX = "leadflow:"
_LONGEST = 63  # PostgreSQL's longest channel name, in bytes


def channel_of(topic: str) -> str:
    """The NOTIFY channel a topic's (or bell's) rings go to."""
    name = PREFIX + topic
    if len(name.encode()) <= _LONGEST:
        return name
    return PREFIX + hashlib.sha256(topic.encode()).hexdigest()[:40]


def carrying(bell: str) -> str:
    """The bell whose rings carry the messages themselves (`shared.outbox.stage`)."""
    return f"{bell}:messages"


def channels_of(topics: Iterable[str]) -> list[str]:
    """The channels to ring for these topics, each once (`pg_notify` each, at the commit)."""
    return sorted({channel_of(topic) for topic in topics})


async def ring(connection: asyncpg.Connection, topics: Iterable[str]) -> None:
    """Tell the listening consumers which topics have news (delivered when the caller commits)."""
    if channels := channels_of(topics):
        await connection.execute(_RING, channels)


_RING = "SELECT pg_notify(channel, '') FROM unnest($1::text[]) AS channel"


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
        self._events: dict[str, list[asyncio.Event]] = {}  # by channel
        self._listeners: dict[str, list[Callable[[str], None]]] = {}  # by channel: told what rang

    def heard(self, topics: Iterable[str]) -> asyncio.Event:
        """Set when any of `topics` rings (listened to from the next connection on: heard
        before `run`, as the services do)."""
        event = asyncio.Event()
        for topic in set(topics):
            self._events.setdefault(channel_of(topic), []).append(event)
        return event

    def on_ring(self, topic: str, listener: Callable[[str], None]) -> None:
        """Also tell `listener` what each ring of `topic` says (a bell's: the leads it rang for)."""
        self._listeners.setdefault(channel_of(topic), []).append(listener)
        self._events.setdefault(channel_of(topic), [])

    def _rang(self, connection: object, pid: int, channel: str, payload: str) -> None:
        for event in self._events.get(channel, ()):
            event.set()
        for listener in self._listeners.get(channel, ()):
            if payload:
                listener(payload)

    async def run(self) -> None:
        """Listen until cancelled; after a lost connection, listen again (and wake everyone,
        since a ring may have been missed meanwhile)."""
        backoff = 0.5
        while True:
            try:
                connection = await self.connection.get()
                closed = asyncio.Event()
                connection.add_termination_listener(functools.partial(_set, closed))
                for channel in self._events:
                    await connection.add_listener(channel, self._rang)
                for events in self._events.values():
                    for event in events:
                        event.set()
                backoff = 0.5
                await closed.wait()
            except asyncio.CancelledError:
                await self.connection.close()
                raise
            except Exception as error:
                raise_hidden_stop(error)
                log.info("doorbell: listening again in %.1fs: %r", backoff, error)
            await self.connection.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
