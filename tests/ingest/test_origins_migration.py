"""Migration 0017 on sources stored before it: a page's address in `allowed_origins` becomes
its origin, so the form stops refusing that page's visitors; an origin stays as it was."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared.cli import migrations_dir
from shared.db import Database
from tests.conftest import Servers

SCHEMA = "ingest_before_0017"


def migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("ingest")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    command.upgrade(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0016")
    yield database
    await database.dispose()


async def test_the_page_addresses_a_source_allowed_become_their_origins(
    db: Database, servers: Servers
) -> None:
    stored = {  # as 0016's code stored them: pydantic's URL, a "/" at the end taken off
        "https://shop.kz/contact": ["https://shop.kz"],
        "https://shop.kz/contact?utm_source=x#form": ["https://shop.kz"],
        "https://promo.shop.kz:8443/a/b": ["https://promo.shop.kz:8443"],
        "http://localhost:3000": ["http://localhost:3000"],
        "https://user@xn--80aairftm.kz/x": ["https://xn--80aairftm.kz"],
    }
    sources = {uuid.uuid4(): [entry] for entry in stored}
    both = uuid.uuid4()
    sources[both] = ["https://shop.kz/contact", "https://shop.kz", "https://other.kz"]
    none = uuid.uuid4()
    sources[none] = []
    async with db.transaction() as session:
        for source_id, entries in sources.items():
            await session.execute(
                text(
                    "INSERT INTO sources (id, name, channel, key_hash, key_prefix, allowed_origins)"
                    " VALUES (:id, 'Site', 'landing_page', :hash, 'lfk_', CAST(:origins AS jsonb))"
                ),
                {"id": source_id, "hash": uuid.uuid4().hex, "origins": json.dumps(entries)},
            )

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        rows = await session.execute(text("SELECT id, allowed_origins FROM sources"))
        now = dict(rows.tuples().all())
    assert {
        entries[0]: now[source_id] for source_id, entries in sources.items() if len(entries) == 1
    } == stored
    assert now[both] == ["https://shop.kz", "https://other.kz"] and now[none] == []
