"""Migration 0020 on nurture's tables as they were: the people unsubscribed before it are
suppressed by their addresses, under the key it makes, as `suppression` tells them."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.nurture import suppression
from services.nurture.models import FollowedLead
from shared.cli import migrations_dir
from shared.db import Database
from tests.conftest import Servers

SCHEMA = "nurture_before_0020"


def migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("nurture")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    command.upgrade(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0019")
    yield database
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await database.dispose()


async def test_those_unsubscribed_before_are_suppressed_by_their_addresses(
    servers: Servers, db: Database
) -> None:
    gone, stays = uuid.uuid4(), uuid.uuid4()
    contexts = {
        gone: {"email": " Aru@Example.kz ", "phone": "+7 701 000-00-01"},
        stays: {"email": "b@example.kz"},
    }
    async with db.transaction() as session:
        for lead_id, context in contexts.items():
            session.add(FollowedLead(lead_id=lead_id, context=context, unsubscribed=lead_id == gone))
    await asyncio.to_thread(migrate, servers.database_url, "0020")
    again = {uuid.uuid4(): FollowedLead(lead_id=uuid.uuid4(), context={"email": "aru@example.kz"})}
    by_phone = {uuid.uuid4(): FollowedLead(lead_id=uuid.uuid4(), context={"phone": "+77010000001"})}
    other = {uuid.uuid4(): FollowedLead(lead_id=uuid.uuid4(), context={"email": "b@example.kz"})}
    async with db.transaction() as session:
        assert await suppression.suppressed(session, again) == set(again)
        assert await suppression.suppressed(session, other) == set()
        assert await suppression.suppressed(session, by_phone) == set(by_phone)  # punctuation aside
        count = (await session.execute(text("SELECT count(*) FROM suppressed_addresses"))).scalar_one()
    assert count == 2  # the email and the phone of the one unsubscribed
