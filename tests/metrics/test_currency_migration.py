"""Migration 0027 on a read model written before it: each customer's revenue and purchases by
currency come from the won outcomes in the event archive; a customer won before the archive
existed keeps its revenue as of no named currency (counted in the report's)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared import topics
from shared.cli import migrations_dir
from shared.db import Database
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.inbox import archive_new_events
from tests.conftest import Servers

SCHEMA = "metrics_before_0027"
T0 = datetime(2031, 5, 4, 9, tzinfo=UTC)
TWO_CURRENCIES, BEFORE_THE_ARCHIVE, NO_SALE = (uuid.UUID(int=n) for n in (0xA28, 0xB28, 0xC28))


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
    await asyncio.to_thread(migrate, servers.database_url, "0026")
    yield database
    await database.dispose()


def outcome(
    lead: uuid.UUID, kind: str, amount: float | None, currency: str | None
) -> tuple[uuid.UUID, uuid.UUID, str, bytes]:
    data = OutcomeRecorded(
        outcome_id=uuid.uuid4(), outcome=kind, occurred_at=T0, amount=amount, currency=currency
    )
    event = Envelope(
        type=OUTCOME_RECORDED,
        lead_id=lead,
        correlation_id=uuid.uuid4(),
        occurred_at=T0,
        producer="ingest",
        data=data.model_dump(mode="json", exclude_none=True),
    )
    return event.id, lead, topics.LEAD_EVENTS, event.to_bytes()


async def test_revenue_by_currency_comes_from_the_archive(db: Database, servers: Servers) -> None:
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, purchases, revenue)"
                " VALUES (:lead_id, 'ad', :at, :purchases, :revenue)"
            ),
            [
                {"lead_id": TWO_CURRENCIES, "at": T0, "purchases": 3, "revenue": 260100.5},
                {"lead_id": BEFORE_THE_ARCHIVE, "at": T0, "purchases": 2, "revenue": 700},
                {"lead_id": NO_SALE, "at": T0, "purchases": 0, "revenue": 0},
            ],
        )
        archived = [
            outcome(TWO_CURRENCIES, "won", 130000.25, "KZT"),
            outcome(TWO_CURRENCIES, "won", 100, "USD"),
        ]
        archived += [outcome(TWO_CURRENCIES, "won", 130000.25, "KZT"), outcome(NO_SALE, "lost", None, None)]
        await archive_new_events(session, archived)

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT lead_id, currency_revenue, currency_purchases FROM lead_facts")
        )
        found = {row.lead_id: (row.currency_revenue, row.currency_purchases) for row in rows}
    assert found == {
        TWO_CURRENCIES: ({"KZT": 260000.5, "USD": 100}, {"KZT": 2, "USD": 1}),
        BEFORE_THE_ARCHIVE: ({"": 700}, {"": 2}),
        NO_SALE: ({}, {}),
    }
