"""Migration 0011 on a read model written before it: each lead's touch moments come from the event
archive (a lead touched before the archive existed keeps its count, at its first touch), and
touches to conversion then counts only the touches sent before the purchase."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.metrics import speed
from shared import topics
from shared.cli import migrations_dir
from shared.db import Database
from shared.events import LEAD_ASSIGNED, TOUCH_SENT, Envelope, LeadAssigned
from shared.inbox import archive_new_events
from tests.conftest import Servers
from tests.metrics.journeys import _touch

SCHEMA = "metrics_before_0011"
T0 = datetime(2031, 3, 2, 9, tzinfo=UTC)
A, B, C = (uuid.UUID(int=n) for n in (0xA1, 0xB1, 0xC1))
REP = uuid.UUID(int=0x7)


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
    await asyncio.to_thread(migrate, servers.database_url, "0010")
    yield database
    await database.dispose()


def touched(lead: uuid.UUID, at: datetime) -> tuple[uuid.UUID, uuid.UUID, str, bytes]:
    event = Envelope.of(TOUCH_SENT, lead, uuid.uuid4(), "nurture", _touch(at))
    return event.id, lead, topics.TOUCH_EVENTS, event.to_bytes()


def handed(lead: uuid.UUID, at: datetime) -> tuple[uuid.UUID, uuid.UUID, str, bytes]:
    payload = LeadAssigned(rep_id=REP, temperature="hot", assigned_at=at)
    event = Envelope.of(LEAD_ASSIGNED, lead, uuid.uuid4(), "nurture", payload)
    return event.id, lead, topics.TOUCH_EVENTS, event.to_bytes()


async def test_touch_moments_come_from_the_archive_and_only_those_before_the_purchase_count(
    db: Database, servers: Servers
) -> None:
    day = timedelta(days=1)
    leads: list[dict[str, Any]] = [
        # Touched three times, the last after buying (a thanks email).
        {"lead_id": A, "customer_at": T0 + 10 * day, "touches_sent": 3, "first_touch_at": T0 + day},
        # Touched twice before the archive existed; not a customer.
        {"lead_id": B, "customer_at": None, "touches_sent": 2, "first_touch_at": T0 + day / 12},
        # Three touches counted, one of them archived.
        {"lead_id": C, "customer_at": T0 + 30 * day, "touches_sent": 3, "first_touch_at": T0 + day / 24},
    ]
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, customer_at, touches_sent,"
                " first_touch_at, purchases, revenue) VALUES (:lead_id, 'ad', :captured_at, :customer_at,"
                " :touches_sent, :first_touch_at, 0, 0)"
            ),
            [lead | {"captured_at": T0} for lead in leads],
        )
        archived = [touched(A, T0 + day), touched(A, T0 + 5 * day), touched(A, T0 + 12 * day)]
        archived += [touched(C, T0 + day / 24), handed(C, T0)]
        await archive_new_events(session, archived)

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        rows = await session.execute(text("SELECT lead_id, touch_times, touches_sent FROM lead_facts"))
        found = {row.lead_id: (row.touch_times, row.touches_sent) for row in rows}
        report = await speed.speed_report(session, None, None, None, 900.0, T0 + 400 * day)
    assert found == {
        A: ([T0 + day, T0 + 5 * day, T0 + 12 * day], 2),
        B: ([T0 + day / 12] * 2, 2),
        C: ([T0 + day / 24] * 3, 3),
    }
    assert report.overall.touches_to_conversion == (2 + 3) / 2
