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
            # Locked in the dispatcher's order (by origin), or a dispatcher still recording an
            # earlier test's sends to two receivers and this could deadlock.
            await connection.execute(
                "DELETE FROM nurture.receiver_circuits WHERE origin IN"
                " (SELECT origin FROM nurture.receiver_circuits ORDER BY origin FOR UPDATE)"
            )
        finally:
            await connection.close()
    yield
