"""Replaying an archiving consumer's history: how metrics rebuilds its read model with nothing
from the broker. The replay runs in the consumer's own loop, a chunk between two fetches, so
live events keep flowing; it covers the archive as it was when the read model was reset (later
events are applied live, once), and its cursor is committed with each chunk, so a restart
resumes it rather than leaving the read model half built. An event it fails (the archive holds
what the consumer dead-lettered too) is kept as a dead letter again, by `keep_failed`."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.events import Envelope
from shared.faults import is_transient, raise_hidden_stop
from shared.inbox import ARCHIVE_TURN
from shared.redact import describe

log = logging.getLogger(__name__)

Apply = Callable[[AsyncSession, list[Envelope]], Awaitable[None]]
Reset = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class Archived:
    """An archived message as the consumer claimed it, and its event."""

    topic: str
    value: bytes
    event: Envelope


KeepFailed = Callable[[AsyncSession, Archived, str], Awaitable[None]]
"""Keeps an event the replay failed (with the error, redacted) in the replay's transaction."""
CHUNK = 5000
_ALONE = text(ARCHIVE_TURN.format(""))

_SNAPSHOT = text(
    "INSERT INTO archive_replay (id, next_seq, until_seq, total, done) "
    "SELECT 1, coalesce(min(seq), 0), coalesce(max(seq), -1), count(*), 0 FROM event_archive "
    "ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq, until_seq = excluded.until_seq, "
    "total = excluded.total, done = 0, started_at = now() "
    "RETURNING total"
)
_CURSOR = text("SELECT next_seq, until_seq FROM archive_replay WHERE id = 1 FOR UPDATE")
_CHUNK = "SELECT topic, value FROM event_archive WHERE seq >= $1 AND seq < $2 ORDER BY seq"
_ADVANCE = text("UPDATE archive_replay SET next_seq = :end, done = done + :count WHERE id = 1")


@dataclass
class Progress:
    replaying: bool
    done: int = 0
    total: int = 0


class ArchiveReplay:
    def __init__(self, db: Database, apply: Apply, keep_failed: KeepFailed, chunk: int = CHUNK) -> None:
        self.db, self.apply, self.keep_failed, self.chunk = db, apply, keep_failed, chunk
        self._active: bool | None = None  # None: not known yet (a replay may be left from before)
        # The next chunk, read and decoded while this one is written: this process and
        # PostgreSQL took turns, each idle about half the time.
        self._ahead: tuple[tuple[int, int], asyncio.Task[list[Archived]]] | None = None

    @property
    def busy(self) -> bool:
        """A replay is (or may be) under way: its consumer must keep turning."""
        return self._active is not False

    async def start(self, session: AsyncSession, reset: Reset) -> int:
        """In the caller's transaction: `reset(session)` clears the read model, and everything
        archived so far is to be replayed. Returns how many events that is. Batches being
        applied meanwhile, by any process, are waited for first, and later ones wait for this
        transaction: each event is in the replay or applied live after it, never both."""
        await session.execute(_ALONE)
        await reset(session)
        total = int((await session.execute(_SNAPSHOT)).scalar_one())
        self._active = True
        return total

    async def step(self) -> int:
        """Apply the next chunk, if a replay is under way; returns how many events it applied."""
        if self._active is False:
            return 0
        async with self.db.transaction() as session:
            cursor = (await session.execute(_CURSOR)).first()
            if cursor is None:
                self._active = False
                return 0
            first, until = cursor
            end = min(first + self.chunk, until + 1)
            archived = await self._chunk(first, end)
            if end <= until:
                self._read_ahead(end, min(end + self.chunk, until + 1))
            # Events about leads erased since they were read are dropped by `apply`, in this
            # transaction (the tombstones), as before.
            await self._apply_chunk(session, archived)
            if end > until:
                await session.execute(text("DELETE FROM archive_replay"))
            else:
                await session.execute(_ADVANCE, {"end": end, "count": len(archived)})
        if end > until:
            self._active = False
            log.warning("replay of the archive done")
        return len(archived)

    async def _chunk(self, first: int, end: int) -> list[Archived]:
        """The archived events from `first` to before `end`: read ahead, or read now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            span, task = ahead
            if span == (first, end):
                with contextlib.suppress(Exception):  # read again below
                    return await task
            else:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return await self._read(first, end)

    def _read_ahead(self, first: int, end: int) -> None:
        self._ahead = ((first, end), asyncio.create_task(self._read(first, end)))

    async def _read(self, first: int, end: int) -> list[Archived]:
        rows = await self.db.read(_CHUNK, first, end)
        return [Archived(row["topic"], row["value"], Envelope.from_bytes(row["value"])) for row in rows]

    async def _apply_chunk(self, session: AsyncSession, archived: list[Archived]) -> None:
        """The chunk at once; if that fails, event by event, an event that fails kept as a dead
        letter (`keep_failed`): the archive also holds what was dead-lettered, whose rows the
        reset took. A deadlock or an outage is no bad event: it fails the chunk, which is applied
        again (skipped, a live replica's transaction cost the rebuild an event for good)."""
        try:
            async with session.begin_nested():
                await self.apply(session, [a.event for a in archived])
            return
        except Exception as error:
            raise_hidden_stop(error)
            if is_transient(error):
                raise
            log.warning("replay chunk failed (%r); applying its events one by one", error)
        for one in archived:
            try:
                async with session.begin_nested():
                    await self.apply(session, [one.event])
            except Exception as error:
                raise_hidden_stop(error)
                if is_transient(error):
                    raise
                await self.keep_failed(session, one, describe(error, 1000))

    async def progress(self) -> Progress:
        async with self.db.transaction() as session:
            row = (await session.execute(text("SELECT done, total FROM archive_replay"))).first()
        return Progress(False) if row is None else Progress(True, row[0], row[1])
