"""The group committer against a real PostgreSQL: a group whose commit went through is never
done again, whatever fails after it; one whose commit did not answer is not done again either."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import CommitUnknown, Database, defer_insert
from shared.faults import is_transient
from shared.group_commit import GroupCommitter
from shared.problem_handlers import install_problem_handlers
from tests.conftest import Servers

SCHEMA = "group_commit_test"
ROWS = Table("stored", MetaData(), Column("id", PgUUID(as_uuid=True), primary_key=True))


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    """A table each unit of work adds a row of its own to (a new id per run, as an activity
    recorded without an event id gets): run twice, a unit leaves two rows."""
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await connection.execute(text(f"DROP TABLE IF EXISTS {SCHEMA}.stored"))
        await connection.execute(text(f"CREATE TABLE {SCHEMA}.stored (id uuid PRIMARY KEY)"))
    yield database
    await database.dispose()


async def add_a_row(session: AsyncSession) -> str:
    defer_insert(session, ROWS, {"id": uuid.uuid4()})
    return "stored"


async def submit_a_group(committer: GroupCommitter, units: int = 3) -> list[Any]:
    """`units` submitted together (the committer not yet running): they form one group."""
    submitted = [asyncio.ensure_future(committer.submit(add_a_row)) for _ in range(units)]
    await asyncio.sleep(0)  # each submit has queued its unit
    running = asyncio.create_task(committer.run())
    try:
        return await asyncio.wait_for(asyncio.gather(*submitted, return_exceptions=True), 10)
    finally:
        running.cancel()


async def stored(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT count(*) FROM stored"))).scalar_one())


async def test_a_failure_after_the_commit_leaves_the_group_done_once(db: Database) -> None:
    """Something told of the commit fails (here a callback raises): the work is stored, and
    its callers are answered so, rather than each unit being run again alone."""
    failures = []

    def told() -> None:
        failures.append(1)
        raise RuntimeError("a doorbell that fails")

    db.after_commit("stored", told)
    answers = await submit_a_group(GroupCommitter(db))
    assert answers == ["stored"] * 3
    assert await stored(db) == 3 and len(failures) == 1


async def test_a_commit_that_did_not_answer_is_not_done_again(db: Database, servers: Servers) -> None:
    """The connection is lost at the commit: stored or not, nobody can tell. Done again, the
    group could be stored twice; each caller gets the error instead (503, retry with a key)."""
    url = servers.database_url.replace("+asyncpg", "")
    lost: list[int] = []

    async def lose_the_connection(session: AsyncSession) -> None:
        if lost:
            return  # once: the server is back for whoever tries again
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        lost.append(pid)
        killer = await asyncpg.connect(url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()

    db.before_commit("stored", lose_the_connection)
    answers = await submit_a_group(GroupCommitter(db))
    assert all(isinstance(a, CommitUnknown) and is_transient(a) for a in answers), answers
    assert await stored(db) == 0
    # Sent again with its Idempotency-Key, a request finds what was stored: invited to retry.
    assert await answered_over_http(answers[0], {"Idempotency-Key": "k1"}) == (503, "2")
    # Without one, sending it again could store it twice: told to look first.
    assert await answered_over_http(answers[0], {}) == (503, None)


async def answered_over_http(error: BaseException, headers: dict[str, str]) -> tuple[int, str | None]:
    """The status and Retry-After a service's route answers when its work raised `error`."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/v1/leads")
    async def capture() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        response = await client.post("/v1/leads", headers=headers)
    return response.status_code, response.headers.get("Retry-After")


async def test_a_row_another_replica_stored_first_is_found_when_the_unit_runs_again(
    db: Database, servers: Servers
) -> None:
    """Two replicas take the same new person at once, and the other commits first: this one's
    row, written through the driver at commit, meets its unique key. Run again, the unit finds
    the row (a merge), rather than the caller getting a 500."""
    url, key = servers.database_url.replace("+asyncpg", ""), uuid.uuid4()

    async def find_or_create(session: AsyncSession) -> str:
        found = await session.execute(text("SELECT count(*) FROM stored WHERE id = :id"), {"id": key})
        if found.scalar_one():
            return "found"
        other = await asyncpg.connect(url)  # the other replica, committing the same person
        try:
            await other.execute(f"INSERT INTO {SCHEMA}.stored VALUES ($1) ON CONFLICT DO NOTHING", key)
        finally:
            await other.close()
        defer_insert(session, ROWS, {"id": key})
        return "created"

    committer = GroupCommitter(db)
    running = asyncio.create_task(committer.run())
    try:
        answer = await asyncio.wait_for(committer.submit(find_or_create), 10)
    finally:
        running.cancel()
    assert answer == "found" and await stored(db) == 1
