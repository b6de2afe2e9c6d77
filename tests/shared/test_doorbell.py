"""The doorbell against the real PostgreSQL: a ring wakes those who wait for its topic, only them."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.db import Database
from shared.doorbell import Doorbell, channel_of, ring
from tests.conftest import Servers, eventually


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, "public")
    yield database
    await database.dispose()


async def test_a_ring_wakes_the_listeners_of_its_topic_and_no_one_else(db: Database) -> None:
    """Every relay rings at every commit that published: with one channel for all, each ring
    woke every listening process (and its PostgreSQL backend) for the one or two that cared."""
    leads, classifications = f"leads-{uuid.uuid4().hex[:8]}", f"classified-{uuid.uuid4().hex[:8]}"
    doorbell = Doorbell(db.direct_connection())
    scoring = doorbell.heard([leads])
    hand_off = doorbell.heard([classifications])
    metrics = doorbell.heard([leads, classifications])
    listening = asyncio.create_task(doorbell.run())
    ringer = await db.direct_connection().get()
    try:
        # Connected, the doorbell wakes everyone once (a ring may have been missed before).
        await eventually(lambda: scoring.is_set() and hand_off.is_set() and metrics.is_set())
        for bell in (scoring, hand_off, metrics):
            bell.clear()
        await ring(ringer, [classifications])
        await eventually(hand_off.is_set)
        # The same notification sets every bell of its channel in one callback: by now.
        assert metrics.is_set() and not scoring.is_set()
        await ring(ringer, [leads, leads])
        await eventually(scoring.is_set)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await ringer.close()


def test_a_topic_too_long_for_a_channel_name_gets_one_of_its_own() -> None:
    long_topic = "t" * 80
    assert channel_of("ingest.lead-events") == "leadflow:ingest.lead-events"
    assert len(channel_of(long_topic).encode()) <= 63
    assert channel_of(long_topic) != channel_of(long_topic + "x")
