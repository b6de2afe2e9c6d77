"""Migration 0019 on a read model written before it: the leads handed off before it keep their
hand-off cells (SLA compliance counts them) and are left out of capture → webhook, whose time
metrics never heard; a delivery told after it moves a lead's cells; a downgrade takes it away."""

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

SCHEMA = "metrics_before_0019"
T0 = datetime(2031, 7, 4, 9, tzinfo=UTC)


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
    await asyncio.to_thread(migrate, servers.database_url, "0018")
    yield database
    await database.dispose()


async def cells(db: Database) -> dict[str, int]:
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT measure, sum(leads) FROM speed_months WHERE dim = 'channel' GROUP BY 1")
        )
        return {measure: int(leads) for measure, leads in rows if leads}


async def test_leads_handed_off_before_keep_their_hand_off_and_are_left_out_of_capture_to_webhook(
    db: Database, servers: Servers
) -> None:
    lead = uuid.uuid4()
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, assigned_at)"
                " VALUES (:lead, 'ad', :captured, :assigned)"
            ),
            {"lead": lead, "captured": T0, "assigned": T0 + timedelta(seconds=0.014)},
        )
    assert await cells(db) == {"captured": 1, "webhook": 1}

    await asyncio.to_thread(migrate, servers.database_url, "head")
    assert await cells(db) == {"captured": 1, "webhook": 1}  # no delivery known: none counted

    async with db.transaction() as session:
        delivered = text("UPDATE lead_facts SET delivered_at = :at WHERE lead_id = :lead")
        await session.execute(delivered, {"at": T0 + timedelta(seconds=95), "lead": lead})
    assert await cells(db) == {"captured": 1, "webhook": 1, "delivered": 1}

    await asyncio.to_thread(migrate, servers.database_url, "0018", True)
    assert await cells(db) == {"captured": 1, "webhook": 1}
