"""Replaying an archiving consumer's history: how metrics rebuilds its read model with nothing
from the broker. The replay runs in the consumer's own loop, a chunk between two fetches, so
live events keep flowing; it covers the archive as it was when the read model was reset (later
events are applied live, once), and its cursor is committed with each chunk, so a restart
resumes it rather than leaving the read model half built."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.events import Envelope

log = logging.getLogger(__name__)

Apply = Callable[[AsyncSession, list[Envelope]], Awaitable[None]]
CHUNK = 2000

_SNAPSHOT = text(
    "INSERT INTO archive_replay (id, next_seq, until_seq, total, done) "
    "SELECT 1, coalesce(min(seq), 0), coalesce(max(seq), -1), count(*), 0 FROM event_archive "
    "ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq, until_seq = excluded.until_seq, "
    "total = excluded.total, done = 0, started_at = now() "
    "RETURNING total"
)
_CURSOR = text("SELECT next_seq, until_seq FROM archive_replay WHERE id = 1 FOR UPDATE")
_CHUNK = text("SELECT value FROM event_archive WHERE seq >= :first AND seq < :end ORDER BY seq")
_ADVANCE = text("UPDATE archive_replay SET next_seq = :end, done = done + :count WHERE id = 1")


@dataclass
class Progress:
    replaying: bool
    done: int = 0
    total: int = 0


class ArchiveReplay:
    def __init__(self, db: Database, apply: Apply, chunk: int = CHUNK) -> None:
        self.db, self.apply, self.chunk = db, apply, chunk
        self._active: bool | None = None  # None: not known yet (a replay may be left from before)

    @property
    def busy(self) -> bool:
        """A replay is (or may be) under way: its consumer must keep turning."""
        return self._active is not False

    async def start(self, session: AsyncSession) -> int:
        """In the caller's transaction (the one resetting the read model): replay everything
        archived so far. Returns how many events that is."""
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
            values = (await session.execute(_CHUNK, {"first": first, "end": end})).scalars().all()
            await self._apply_chunk(session, [Envelope.from_bytes(v) for v in values])
            if end > until:
                await session.execute(text("DELETE FROM archive_replay"))
            else:
                await session.execute(_ADVANCE, {"end": end, "count": len(values)})
        if end > until:
            self._active = False
            log.warning("replay of the archive done")
        return len(values)

    async def _apply_chunk(self, session: AsyncSession, events: list[Envelope]) -> None:
        """The chunk at once; if that fails, event by event, skipping (and logging) an event
        that fails: the archive also holds what was dead-lettered."""
        try:
            async with session.begin_nested():
                await self.apply(session, events)
            return
        except Exception as error:
            log.warning("replay chunk failed (%r); applying its events one by one", error)
        for event in events:
            try:
                async with session.begin_nested():
                    await self.apply(session, [event])
            except Exception as error:
                log.error("replay skipped event %s (%s): %r", event.id, event.type, error)

    async def progress(self) -> Progress:
        async with self.db.transaction() as session:
            row = (await session.execute(text("SELECT done, total FROM archive_replay"))).first()
        return Progress(False) if row is None else Progress(True, row[0], row[1])
