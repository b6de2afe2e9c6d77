"""Known sources, remembered for a few seconds so a busy form costs no lookup per lead."""

import time
from collections.abc import Awaitable, Callable
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import Source
from services.ingest.sources import authenticate_source, get_source, hash_key
from shared.db import Database

MAX_ENTRIES = 10_000
Load = Callable[[AsyncSession], Awaitable[Source | None]]


class SourceCache:
    """Only active sources are cached, so unknown keys or ids cannot fill it. A change made
    through this process is seen at once (`forget`); one made through another replica
    within `ttl_seconds`."""

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, Source]] = {}

    async def authenticate(self, key: str) -> Source | None:
        """The active source holding `key`, or None."""
        return await self._lookup("key:" + hash_key(key), lambda session: authenticate_source(session, key))

    async def by_id(self, source_id: UUID) -> Source | None:
        """The active source with this id (public form and chatbot endpoints), or None."""
        return await self._lookup(f"id:{source_id}", lambda session: get_source(session, source_id))

    async def _lookup(
        self, name: str, load: Callable[[AsyncSession], Awaitable[Source | None]]
    ) -> Source | None:
        if (cached := self._cached(name)) is not None:
            return cached
        async with self.db.transaction() as session:
            source = await load(session)
        return self._remember(name, source if source is not None and source.active else None)

    def forget(self, source_id: UUID) -> None:
        for name, (_, source) in list(self._entries.items()):
            if source.id == source_id:
                del self._entries[name]

    def _cached(self, name: str) -> Source | None:
        entry = self._entries.get(name)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def _remember(self, name: str, source: Source | None) -> Source | None:
        if source is None:
            self._entries.pop(name, None)
            return None
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[name] = (time.monotonic() + self.ttl_seconds, source)
        return source
