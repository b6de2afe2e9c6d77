"""Receivers come and go on ports the OS may hand out again within a module, so each test
that talks to the database starts with every receiver's circuit breaker closed. The pure
tests (routing, timing, retries) start no server."""

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture(autouse=True)
async def closed_circuits(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    if "servers" in request.fixturenames:
        servers = request.getfixturevalue("servers")
        connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
        try:
            await connection.execute("DELETE FROM nurture.receiver_circuits")
        finally:
            await connection.close()
    yield
