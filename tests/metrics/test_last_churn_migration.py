"""Migration 0012 on a read model written before it: each lead's latest churn comes from the event
archive; a lead churned before the archive existed keeps its first as its latest."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared import topics
from shared.cli import migrations_dir
from shared.db import Database
from shared.events import LEAD_CLASSIFIED, Envelope
from shared.inbox import archive_new_events
from tests.conftest import Servers

SCHEMA = "metrics_before_0012"
T0 = datetime(2031, 5, 4, 9, tzinfo=UTC)
TWICE, BEFORE_THE_ARCHIVE, NEVER = (uuid.UUID(int=n) for n in (0xA2, 0xB2, 0xC2))


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
    await asyncio.to_thread(migrate, servers.database_url, "0011")
    yield database
    await database.dispose()


def classified(lead: uuid.UUID, stage: str, at: datetime) -> tuple[uuid.UUID, uuid.UUID, str, bytes]:
    event = Envelope(
        type=LEAD_CLASSIFIED,
        lead_id=lead,
        correlation_id=uuid.uuid4(),
        occurred_at=at,
        producer="scoring",
        data={"temperature": "cold", "stage": stage, "score": 0},
    )
    return event.id, lead, topics.LEAD_CLASSIFICATIONS, event.to_bytes()


async def test_the_latest_churn_comes_from_the_archive(db: Database, servers: Servers) -> None:
    day = timedelta(days=1)
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, churned_at, purchases, revenue)"
                " VALUES (:lead_id, 'ad', :captured_at, :churned_at, 1, 100)"
            ),
            [
                {"lead_id": TWICE, "captured_at": T0, "churned_at": T0 + 30 * day},
                {"lead_id": BEFORE_THE_ARCHIVE, "captured_at": T0, "churned_at": T0 + 40 * day},
                {"lead_id": NEVER, "captured_at": T0, "churned_at": None},
            ],
        )
        archived = [classified(TWICE, "churned", T0 + 30 * day), classified(TWICE, "customer", T0 + 90 * day)]
        archived += [classified(TWICE, "churned", T0 + 150 * day), classified(NEVER, "customer", T0 + day)]
        await archive_new_events(session, archived)

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        rows = await session.execute(text("SELECT lead_id, churned_at, last_churned_at FROM lead_facts"))
        found = {row.lead_id: (row.churned_at, row.last_churned_at) for row in rows}
    assert found == {
        TWICE: (T0 + 30 * day, T0 + 150 * day),
        BEFORE_THE_ARCHIVE: (T0 + 40 * day, T0 + 40 * day),
        NEVER: (None, None),
    }
