"""Migration 0016 on a read model written before it: a customer whose purchase is dated before
their capture leaves the sales cycle and touches to conversion; the others stay as counted."""

import asyncio
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

SCHEMA = "metrics_before_0016"
T0 = datetime(2031, 5, 4, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("metrics")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    command.upgrade(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0015")
    yield database
    await database.dispose()


async def cells(db: Database, measure: str) -> dict[int, int]:
    async with db.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT bucket, sum(leads) FROM speed_months"
                " WHERE measure = :m AND dim = 'channel' GROUP BY 1"
            ),
            {"m": measure},
        )
        return {int(bucket): int(leads) for bucket, leads in rows}


async def test_customers_who_bought_before_their_capture_leave_the_cycle(
    db: Database, servers: Servers
) -> None:
    leads = [
        # (captured, customer, touch times): 20 days after capture, after two touches
        (T0, T0 + 20 * DAY, [T0 + DAY, T0 + 2 * DAY]),
        # an existing customer, imported with a purchase a year before
        (T0, T0 - 365 * DAY, [T0 + DAY]),
    ]
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, customer_at, touch_times)"
                " VALUES (:lead_id, 'ad', :captured, :customer, :times)"
            ),
            [{"lead_id": uuid.uuid4(), "captured": c, "customer": b, "times": t} for c, b, t in leads],
        )
    assert sum((await cells(db, "cycle")).values()) == 2  # as counted before: the importee too

    await asyncio.to_thread(migrate, servers.database_url, "head")

    [(bucket, customers)] = (await cells(db, "cycle")).items()
    assert customers == 1 and 1.02 ** (bucket - 1) < 20 <= 1.02**bucket  # the 20 days
    assert await cells(db, "touches") == {2: 1}
