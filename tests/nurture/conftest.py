"""Nurture tests share one database: receivers come and go on reused ports, so each test
starts with every receiver's circuit breaker closed."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import Servers


@pytest.fixture(autouse=True)
async def closed_circuits(servers: Servers) -> AsyncIterator[None]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute("DELETE FROM nurture.receiver_circuits")
    finally:
        await connection.close()
    yield
