"""Migration 0029 on a read model written before it: the leads stored keep their first capture as
their clock, so no speed cell moves; a lead whose first capture was history is counted from the
capture that made it live from then on; a downgrade counts every lead from its first capture
again, the cells adding up as before."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared.cli import migrations_dir
from shared.db import Database
from tests.conftest import Servers

SCHEMA = "metrics_before_0029"
T0 = datetime(2031, 7, 4, 9, tzinfo=UTC)
REVIVED = T0 + timedelta(days=40)
INSERT = text(
    "INSERT INTO lead_facts (lead_id, channel, captured_at, assigned_at)"
    " VALUES (:lead, 'ad', :captured, :assigned)"
)


def migrate(url: str, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("metrics")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0028")
    yield database
    await database.dispose()


async def cells(db: Database) -> dict[str, dict[tuple[str, str], int]]:
    """Per table, (measure, the month or day) → leads of channel 'ad'."""
    found = {}
    async with db.transaction() as session:
        for table, when in (("speed_months", "month"), ("speed_days", "day")):
            rows = await session.execute(
                text(
                    f"SELECT measure, {when}::text, sum(leads) FROM {table}"
                    " WHERE dim = 'channel' AND grp = 'ad' GROUP BY 1, 2"
                )
            )
            found[table] = {(measure, at): int(leads) for measure, at, leads in rows if leads}
    return found


async def test_stored_leads_keep_their_clock_and_a_revived_one_moves_to_its_revival(
    db: Database, servers: Servers
) -> None:
    leads = [uuid.uuid4() for _ in range(3)]
    async with db.transaction() as session:
        await session.execute(
            INSERT,
            [
                {
                    "lead": lead,
                    "captured": T0 + timedelta(days=i),
                    "assigned": T0 + timedelta(days=i, seconds=9),
                }
                for i, lead in enumerate(leads)
            ],
        )
    before = await cells(db)
    assert before["speed_months"][("webhook", "2031-07-01")] == 3

    await asyncio.to_thread(migrate, servers.database_url, "0029")
    assert await cells(db) == before
    async with db.transaction() as session:
        clocks = await session.execute(
            text("SELECT count(*) FROM lead_facts WHERE live_captured_at = captured_at")
        )
        assert clocks.scalar_one() == 3
        # the first lead's first capture was history; it came back live on REVIVED, handed off 9 s after
        history, live = str(uuid.uuid4()), str(uuid.uuid4())
        captures = {history: T0.isoformat(), live: REVIVED.isoformat()}
        await session.execute(
            text(
                "UPDATE lead_facts SET captures = CAST(:captures AS jsonb),"
                " history_captures = CAST(:history AS jsonb), assigned_at = :assigned WHERE lead_id = :lead"
            ),
            {
                "captures": json.dumps(captures),
                "history": json.dumps({history: T0.isoformat()}),
                "assigned": REVIVED + timedelta(seconds=9),
                "lead": leads[0],
            },
        )
    revived = await cells(db)
    assert revived["speed_months"][("webhook", "2031-07-01")] == 2
    assert revived["speed_months"][("webhook", "2031-08-01")] == 1
    assert revived["speed_days"][("webhook", "2031-08-13")] == 1
    assert revived["speed_days"].get(("webhook", "2031-07-04")) is None

    await asyncio.to_thread(migrate, servers.database_url, "0028", True)
    assert await cells(db) == before
