"""Known source keys, remembered for a few seconds so a busy form costs no key lookup per lead."""

import time

from services.ingest.handlers import authenticate_source, hash_key
from services.ingest.models import Source
from shared.db import Database

MAX_ENTRIES = 10_000


class SourceCache:
    """Only sources that authenticated are cached, so unknown keys cannot fill it; a disabled
    or rotated key stops working within `ttl_seconds`."""

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, Source]] = {}

    async def authenticate(self, key: str) -> Source | None:
        digest = hash_key(key)
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        async with self.db.transaction() as session:
            source = await authenticate_source(session, key)
        if source is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl_seconds, source)
        else:
            self._entries.pop(digest, None)
        return source
