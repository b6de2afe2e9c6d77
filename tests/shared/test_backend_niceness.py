"""A service niced to yield the CPU (`leadflow dev`'s background parts) has its PostgreSQL
backends yield alike, pooled and direct connections both; only backends of the PostgreSQL
started beside it, by the same parent, are touched."""

import os
import subprocess
import sys

import pytest

from tests.conftest import Servers

# The service, as a child process niced by `nice`: it connects as a service does and prints its
# backends' process ids, then holds its connections until its standard input closes.
SERVICE = """
import asyncio, sys
from sqlalchemy import text
from shared.db import Database

async def main() -> None:
    db = Database(sys.argv[1], "public")
    direct = db.direct_connection()
    async with db.transaction() as session:
        pooled = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    alone = await (await direct.get()).fetchval("SELECT pg_backend_pid()")
    print(pooled, alone, flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await direct.close()
    await db.dispose()

asyncio.run(main())
"""


def backends_niceness(command: list[str]) -> list[int]:
    """Run the service by `command` (ending in its script's arguments); the niceness of its
    backends while it holds them."""
    service = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert service.stdout is not None
        pids = [int(pid) for pid in service.stdout.readline().split()]
        assert len(pids) == 2, "the service printed its backends"
        return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids]
    finally:
        service.communicate(timeout=30)


@pytest.fixture
def database_url(servers: Servers) -> str:
    if os.environ.get("LEADFLOW_TEST_DATABASE_URL"):
        pytest.skip("the tests' PostgreSQL was not started beside them")
    return servers.database_url


def test_a_niced_service_has_its_backends_niced_alike(database_url: str) -> None:
    niced = ["nice", "-n", "7", sys.executable, "-c", SERVICE, database_url]
    assert backends_niceness(niced) == [7, 7]


def test_a_service_at_normal_priority_leaves_its_backends_alone(database_url: str) -> None:
    assert backends_niceness([sys.executable, "-c", SERVICE, database_url]) == [0, 0]


def test_a_backend_of_a_server_started_elsewhere_is_left_alone(database_url: str) -> None:
    # Under a shell of its own, the service's parent did not start this PostgreSQL.
    script = 'nice -n 7 "$0" -c "$1" "$2"; exit $?'
    elsewhere = ["sh", "-c", script, sys.executable, SERVICE, database_url]
    assert backends_niceness(elsewhere) == [0, 0]
