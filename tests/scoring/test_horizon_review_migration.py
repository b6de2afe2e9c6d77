"""Migration 0006 on scoring's standings as they were: the leads decided before a timeframe
counted down (a warm "two months" reviewed only 90 days on, a cold far horizon never) are due for
review at once, so the review pass turns them hot as their day comes; the others keep theirs."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.scoring.models import LeadScore
from shared.cli import migrations_dir
from shared.db import Database
from tests.conftest import Servers

SCHEMA = "scoring_before_0006"
LATER = datetime(2027, 3, 1, tzinfo=UTC)


def migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("scoring")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    command.upgrade(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0005")
    yield database
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await database.dispose()


def standing(profile: dict[str, object], review_at: datetime | None) -> LeadScore:
    return LeadScore(
        lead_id=uuid.uuid4(),
        score=30,
        temperature="warm",
        stage="lead",
        rules_version=1,
        profile=profile,
        review_at=review_at,
        updated_at=datetime.now(UTC),
    )


async def test_leads_that_stated_a_timeframe_are_due_for_review(servers: Servers, db: Database) -> None:
    said = {"attributes": {"timeframe": "about two months"}}
    again = {"attributes": {}, "timeframe_said": {"at": "2026-11-01T00:00:00+00:00", "text": "6 months"}}
    rows = {
        "warm, cooling in 90 days": standing(said, LATER),
        "cold, no review": standing(again, None),
        "no timeframe": standing({"attributes": {"need": "CRM"}}, LATER),
        "due already": standing(said, datetime(2026, 1, 1, tzinfo=UTC)),
    }
    async with db.transaction() as session:
        session.add_all(rows.values())
    before = datetime.now(UTC)
    await asyncio.to_thread(migrate, servers.database_url, "0006")
    async with db.transaction() as session:
        found = dict(
            (await session.execute(text("SELECT lead_id, review_at FROM lead_scores"))).tuples().all()
        )
    reviews = {name: found[row.lead_id] for name, row in rows.items()}
    assert before - timedelta(seconds=5) <= reviews["warm, cooling in 90 days"] <= datetime.now(UTC)
    assert before - timedelta(seconds=5) <= reviews["cold, no review"] <= datetime.now(UTC)
    assert reviews["no timeframe"] == LATER
    assert reviews["due already"] == datetime(2026, 1, 1, tzinfo=UTC)
