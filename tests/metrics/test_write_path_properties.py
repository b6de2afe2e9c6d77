"""Metrics' main write path (the consumer's handlers folding events into `lead_facts`) as a
property against the real database: any order of a month of events, split into any
batches, and any of them delivered twice, gives exactly the rows the time-ordered run gives."""

from collections.abc import AsyncIterator
from itertools import groupby
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.metrics.handlers import event_handlers
from shared.db import Database
from shared.events import Envelope
from shared.inbox import archive_new_events
from tests.conftest import Servers
from tests.metrics import journeys

EVENTS = journeys.month_of_leads(journeys.START)


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, "metrics")
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def in_order(db: Database) -> list[dict[str, Any]]:
    return await rows_after(db, [[event] for event in EVENTS])


async def rows_after(db: Database, batches: list[list[Envelope]]) -> list[dict[str, Any]]:
    """Fold the batches into an empty read model as the consumer does (its archive, metrics'
    inbox, skipping an event it has applied), then every row, every column."""
    async with db.transaction() as session:
        await session.execute(text("TRUNCATE lead_facts, event_archive"))
    handlers = event_handlers()
    for batch in batches:
        async with db.transaction() as session:
            messages = [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in batch]
            fresh = await archive_new_events(session, messages)
            new = []
            for event in batch:  # the same event twice in one batch applies once
                if event.id in fresh:
                    fresh.discard(event.id)
                    new.append(event)
            for handler, run in groupby(new, key=lambda e: handlers[e.type]):
                await handler(session, list(run))
    async with db.transaction() as session:
        rows = await session.execute(text("SELECT * FROM lead_facts ORDER BY lead_id"))
        return [dict(row._mapping) for row in rows]


def batched(events: list[Envelope], sizes: list[int]) -> list[list[Envelope]]:
    batches, rest = [], list(events)
    for size in sizes:
        if not rest:
            break
        batches.append(rest[:size])
        rest = rest[size:]
    return [*batches, rest] if rest else batches


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    order=st.permutations(EVENTS),
    sizes=st.lists(st.integers(1, 12), max_size=len(EVENTS)),
    again=st.lists(st.integers(0, len(EVENTS) - 1), max_size=10),
)
async def test_any_order_any_batches_and_redeliveries_give_the_same_rows(
    db: Database, in_order: list[dict[str, Any]], order: list[Envelope], sizes: list[int], again: list[int]
) -> None:
    redelivered = order + [order[i] for i in again]  # a consumer may see an event twice
    assert len(in_order) == journeys.LEADS
    assert await rows_after(db, batched(redelivered, sizes)) == in_order
