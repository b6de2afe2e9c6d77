"""Migration 0023 on a read model written before it: the leads already stored are counted into
speed_days once, adding up to their months' cells; writes after it keep both; a downgrade drops
the days and the months are still kept."""

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

SCHEMA = "metrics_before_0023"
T0 = datetime(2031, 7, 4, 9, tzinfo=UTC)
INSERT = text(
    "INSERT INTO lead_facts (lead_id, channel, captured_at, assigned_at, delivered_at)"
    " VALUES (:lead, :channel, :captured, :assigned, :delivered)"
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
    await asyncio.to_thread(migrate, servers.database_url, "0022")
    yield database
    await database.dispose()


def a_lead(day: int, channel: str) -> dict[str, object]:
    captured = T0 + timedelta(days=day)
    assigned = captured + timedelta(seconds=0.02)
    return {
        "lead": uuid.uuid4(),
        "channel": channel,
        "captured": captured,
        "assigned": assigned,
        "delivered": assigned + timedelta(seconds=1),
    }


async def cells(db: Database, table: str) -> dict[tuple[str, str], int]:
    """(measure, the month or day) → leads, by channel 'ad'."""
    async with db.transaction() as session:
        when = "day" if table == "speed_days" else "month"
        rows = await session.execute(
            text(
                f"SELECT measure, {when}::text, sum(leads) FROM {table}"
                " WHERE dim = 'channel' AND grp = 'ad' GROUP BY 1, 2"
            )
        )
        return {(measure, at): int(leads) for measure, at, leads in rows if leads}


async def table_exists(db: Database, name: str) -> bool:
    async with db.transaction() as session:
        return bool((await session.execute(text("SELECT to_regclass(:name)"), {"name": name})).scalar())


async def test_the_leads_stored_are_counted_per_day_once_and_both_are_kept_after(
    db: Database, servers: Servers
) -> None:
    async with db.transaction() as session:
        await session.execute(
            INSERT, [a_lead(0, "ad"), a_lead(0, "ad"), a_lead(1, "ad"), a_lead(1, "referral")]
        )
    months = {("captured", "2031-07-01"): 3, ("webhook", "2031-07-01"): 3, ("delivered", "2031-07-01"): 3}
    assert await cells(db, "speed_months") == months

    await asyncio.to_thread(migrate, servers.database_url, "head")
    assert await cells(db, "speed_months") == months
    days = {
        (measure, day): n
        for measure in ("captured", "webhook", "delivered")
        for day, n in [("2031-07-04", 2), ("2031-07-05", 1)]
    }
    assert await cells(db, "speed_days") == days

    async with db.transaction() as session:  # moved to another day of the month, and a new one
        await session.execute(
            text(
                "UPDATE lead_facts SET captured_at = captured_at + interval '5 days' WHERE captured_at = :at"
            ),
            {"at": T0 + timedelta(days=1)},
        )
        await session.execute(INSERT, [a_lead(40, "ad")])
    assert await cells(db, "speed_months") == {
        **{(measure, "2031-07-01"): 3 for measure in ("captured", "webhook", "delivered")},
        **{(measure, "2031-08-01"): 1 for measure in ("captured", "webhook", "delivered")},
    }
    assert await cells(db, "speed_days") == {
        (measure, day): n
        for measure in ("captured", "webhook", "delivered")
        for day, n in [("2031-07-04", 2), ("2031-07-10", 1), ("2031-08-13", 1)]
    }

    await asyncio.to_thread(migrate, servers.database_url, "0022", True)
    assert not await table_exists(db, f"{SCHEMA}.speed_days")
    async with db.transaction() as session:
        await session.execute(INSERT, [a_lead(41, "ad")])
    assert (await cells(db, "speed_months"))[("captured", "2031-08-01")] == 2
