"""Connections PostgreSQL dropped (a restart, a killed backend) are never handed out again.

Statements run on the asyncpg connection itself (`Database.read`, `driver_connection`) fail
outside SQLAlchemy, which then never learns the connection was lost: pooled again, a closed
connection failed every later unit of work that drew it (nurture's lane looped for minutes on
"connection is closed" after the faults suite killed PostgreSQL and started it again)."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import Database, driver_connection
from tests.conftest import Servers, eventually

POOL = 3
TRIES = POOL * 2


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, "public", pool_size=POOL)
    yield database
    await database.dispose()


async def killed_pool(db: Database, servers: Servers) -> None:
    """Fills the pool (each connection drawn at once, so that it keeps them all), then has
    PostgreSQL end their backends, and waits until asyncpg has seen each of them close."""
    together = asyncio.Barrier(POOL)

    async def draw() -> asyncpg.Connection:
        async with db.transaction() as session:
            connection = await driver_connection(session)
            await together.wait()
            return connection

    pooled = await asyncio.gather(*(draw() for _ in range(POOL)))
    admin = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        pids = [connection.get_server_pid() for connection in pooled]
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await admin.close()
    await eventually(lambda: all(connection.is_closed() for connection in pooled), timeout=10)


async def test_reads_on_the_driver_draw_new_connections_once_the_old_were_dropped(
    db: Database, servers: Servers
) -> None:
    await killed_pool(db, servers)
    results = [await db.read("SELECT 1 AS one") for _ in range(TRIES)]
    assert results == [[(1,)]] * TRIES


async def test_transactions_on_the_driver_draw_new_connections_once_the_old_were_dropped(
    db: Database, servers: Servers
) -> None:
    await killed_pool(db, servers)
    for _ in range(TRIES):
        async with db.transaction() as session:
            assert await (await driver_connection(session)).fetchval("SELECT 1") == 1


async def test_orm_statements_draw_new_connections_once_the_old_were_dropped(
    db: Database, servers: Servers
) -> None:
    await killed_pool(db, servers)
    for _ in range(TRIES):
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
