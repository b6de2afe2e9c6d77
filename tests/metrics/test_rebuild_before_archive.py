"""A stack upgraded from a Leadflow older than metrics' event archive (0005) holds leads whose
capture the archive lacks: migration 0021 lists them, and POST /v1/rebuild, which replays the
archive alone, refuses to drop them from every report unless told to. Found on a stack run at
debc079 and upgraded: a rebuild took lead_facts from 13 leads to 0, CAC's customers from 2 to 0."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.cli import migrations_dir
from shared.db import Database
from shared.inbox import archive_new_events
from shared.seeded import FIRST
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured

SCHEMA = "metrics_before_0021"
T0 = datetime(2020, 3, 2, 9, tzinfo=UTC)  # before any archive this test writes
BEFORE, ARCHIVED, SEEDED = uuid.UUID(int=0xB1), uuid.UUID(int=0xB2), FIRST


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
    await asyncio.to_thread(migrate, servers.database_url, "0020")
    yield database
    await database.dispose()


async def count(session_of: Database, lead: uuid.UUID) -> int:
    async with session_of.transaction() as session:
        found = await session.execute(text("SELECT count(*) FROM lead_facts WHERE lead_id = :l"), {"l": lead})
        return int(found.scalar_one())


async def test_the_migration_lists_the_leads_whose_capture_the_archive_lacks(
    db: Database, servers: Servers
) -> None:
    captured = lead_captured(ARCHIVED, captured_at=T0)
    async with db.transaction() as session:
        await session.execute(
            text("INSERT INTO lead_facts (lead_id, channel, captured_at) VALUES (:lead, 'ad', :at)"),
            [{"lead": lead, "at": T0} for lead in (BEFORE, ARCHIVED, SEEDED)],
        )
        await archive_new_events(session, [(captured.id, ARCHIVED, topics.LEAD_EVENTS, captured.to_bytes())])

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        listed = set((await session.execute(text("SELECT lead_id FROM leads_before_archive"))).scalars())
    assert listed == {BEFORE}


async def test_a_rebuild_that_would_drop_leads_counted_before_the_archive_is_refused(
    servers: Servers,
) -> None:
    async with running(create_app(servers.settings(MetricsSettings))) as metrics:
        db = metrics._transport.app.state.runtime.db  # type: ignore[attr-defined]
        async with db.transaction() as session:  # as migration 0021 finds a lead of an older Leadflow
            await session.execute(
                text("INSERT INTO lead_facts (lead_id, channel, captured_at) VALUES (:lead, 'ad', :at)"),
                {"lead": BEFORE, "at": T0},
            )
            await session.execute(text("INSERT INTO leads_before_archive VALUES (:lead)"), {"lead": BEFORE})

        refused = await metrics.post("/v1/rebuild", headers=ADMIN)
        assert refused.status_code == 409, refused.text
        assert refused.json()["title"].startswith("1 leads were counted before metrics kept its archive")
        assert await count(db, BEFORE) == 1

        forced = await metrics.post("/v1/rebuild", params={"drop_unarchived": "true"}, headers=ADMIN)
        assert forced.status_code == 202, forced.text
        await eventually(lambda: _idle(metrics), timeout=20)
        assert await count(db, BEFORE) == 0
        again = await metrics.post("/v1/rebuild", headers=ADMIN)
        assert again.status_code == 202, again.text


async def _idle(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/v1/rebuild", headers=ADMIN)).json()["status"] == "idle")
