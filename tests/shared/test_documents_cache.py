"""A version published while a read of the document was under way is used at once: the
read that began before it must not put the older version back in the cache that the
publish had just cleared (CI saw nurture's touch sender, polling every 50 ms, do so: a
classification published right after PUT /v1/playbooks was followed up under version 1)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.followup import PlaybookBook
from services.nurture.playbooks import default_playbooks_text
from shared.db import Database
from tests.conftest import PostgresServer


class PausedBook(PlaybookBook):
    """A book whose next read of the newest version, once `pause` is called, waits until let go."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = lambda: 0.0  # the clock stands still: a cached read stays fresh
        self.read, self.let_go = asyncio.Event(), asyncio.Event()
        self.pausing = False

    def pause(self) -> None:
        self.pausing = True
        self.read.clear()
        self.let_go.clear()

    async def _newest(self, session: AsyncSession) -> int | None:
        newest = await super()._newest(session)
        if self.pausing:
            self.pausing = False
            self.read.set()
            await self.let_go.wait()
        return newest


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Database]:
    name = f"leadflow_documents_{uuid.uuid4().hex[:8]}"
    await postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres.template}"')
    database = Database(postgres.database_url(name), "nurture")
    try:
        yield database
    finally:
        await database.dispose()
        await postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_version_published_during_a_read_is_not_hidden_by_it(db: Database) -> None:
    book = PausedBook()
    async with db.transaction() as session:
        assert (await book.active(session)).version == 1
    book.forget()
    book.pause()

    async def read_before_publishing() -> int:
        async with db.transaction() as session:
            return (await book.active(session)).version

    reading = asyncio.create_task(read_before_publishing())
    await asyncio.wait_for(book.read.wait(), 10)  # it has read version 1 as the newest
    text = default_playbooks_text().replace("weekly_cap: 3 ", "weekly_cap: 2 ", 1)
    async with db.transaction() as session:
        assert await book.publish(session, text, text) == 2
    book.forget()  # as PUT /v1/playbooks does, once committed
    book.let_go.set()
    assert await asyncio.wait_for(reading, 10) == 1  # what it read, before the publish
    async with db.transaction() as session:
        assert (await book.active(session)).version == 2
