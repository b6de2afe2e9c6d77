"""Known sources, remembered for a few seconds so a busy form costs no lookup per lead."""

import asyncio
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
    within `ttl_seconds`. Concurrent misses for one name share a single lookup, so an
    expiry under load costs one query, not one per waiting request."""

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, Source]] = {}
        self._loading: dict[str, asyncio.Future[Source | None]] = {}
        self._generation = 0

    async def authenticate(self, key: str) -> Source | None:
        """The active source holding `key`, or None."""
        return await self._lookup("key:" + hash_key(key), lambda session: authenticate_source(session, key))

    async def by_id(self, source_id: UUID) -> Source | None:
        """The active source with this id (public form and chatbot endpoints), or None."""
        return await self._lookup(f"id:{source_id}", lambda session: get_source(session, source_id))

    async def language_of_any(self, source_id: UUID) -> str | None:
        """The `default_language` of the source with this id, active or switched off, or None.
        Not cached: asked only to answer a browser's post to a form that takes none."""
        async with self.db.transaction() as session:
            source = await get_source(session, source_id)
        return source.default_language if source is not None else None

    async def _lookup(
        self, name: str, load: Callable[[AsyncSession], Awaitable[Source | None]]
    ) -> Source | None:
        if (cached := self._cached(name)) is not None:
            return cached
        loading = self._loading.get(name)
        if loading is None:
            # A task of its own, so a caller that gives up does not cancel the others' lookup.
            loading = self._loading[name] = asyncio.ensure_future(self._load(name, load))
            loading.add_done_callback(lambda task: self._loaded(name, task))
        return await asyncio.shield(loading)

    async def _load(self, name: str, load: Load) -> Source | None:
        generation = self._generation
        async with self.db.transaction() as session:
            source = await load(session)
        found = source if source is not None and source.active else None
        # A source changed (`forget`) while this lookup ran may have been read before the change.
        return self._remember(name, found) if generation == self._generation else found

    def _loaded(self, name: str, task: "asyncio.Future[Source | None]") -> None:
        self._loading.pop(name, None)
        if not task.cancelled():
            task.exception()  # seen by the callers; marked retrieved in case all gave up

    def forget(self, source_id: UUID) -> None:
        self._generation += 1
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
