"""Erasing a lead while another transaction applies an event about it (another replica's
consumer, or nurture's hand-off lane beside its main consumer): whichever begins first, nothing
about the erased lead is left once both have committed."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.cli import migrations_dir
from shared.consumer import ConsumerRunner, Lane, LaneRunner
from shared.db import Database
from shared.events import LEAD_ERASED, Envelope
from shared.migrations import upgrade
from shared.observability import Telemetry
from tests.conftest import Servers, eventually

SCHEMA = "erasure_race_test"
TOUCHED = "lead.touched"


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    """The plumbing tables (scoring's migrations: inbox, tombstones) and a table of what the
    test's handler keeps about a lead."""
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.kept (lead_id uuid PRIMARY KEY)"))
    yield database
    await database.dispose()


class Gate:
    """Holds a handler inside its transaction until the test lets it go on."""

    def __init__(self) -> None:
        self.inside, self.go_on = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> None:
        self.inside.set()
        await self.go_on.wait()


async def no_gate() -> None:
    return None


def handlers(gate: Callable[[], Awaitable[None]] = no_gate) -> dict[str, Any]:
    """A service's handlers in small: an event about a lead keeps a row of it, and the lead's
    erasure deletes the row. `gate` holds the transaction: before the row is kept, after it
    was deleted."""

    async def keep(session: AsyncSession, events: list[Envelope]) -> None:
        await gate()
        for event in events:
            await session.execute(
                text("INSERT INTO kept VALUES (:id) ON CONFLICT DO NOTHING"), {"id": event.lead_id}
            )

    async def erase(session: AsyncSession, events: list[Envelope]) -> None:
        await session.execute(
            text("DELETE FROM kept WHERE lead_id = ANY(:ids)"), {"ids": [e.lead_id for e in events]}
        )
        await gate()

    return {TOUCHED: keep, LEAD_ERASED: erase}


def runner(db: Database, servers: Servers, gate: Callable[[], Awaitable[None]] = no_gate) -> ConsumerRunner:
    return ConsumerRunner(
        group="erasure-race",
        topics=["erasure-race"],
        handlers=handlers(gate),
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
    )


def lane(db: Database, servers: Servers, gate: Callable[[], Awaitable[None]]) -> LaneRunner:
    wanted = Lane(topics=["erasure-race"], handlers={TOUCHED: handlers(gate)[TOUCHED]}, wants=lambda e: True)
    return LaneRunner(
        lane=wanted,
        group="erasure-race-lane",
        topics=wanted.topics,
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
    )


def record(event_type: str, lead_id: uuid.UUID, offset: int) -> ConsumerRecord:
    event = Envelope(type=event_type, lead_id=lead_id, correlation_id=uuid.uuid4(), producer="test", data={})
    key, value = str(lead_id).encode(), event.to_bytes()
    return ConsumerRecord("erasure-race", 0, offset, 0, 0, key, value, None, len(key), len(value), [])


async def waiting_on_a_lock(db: Database, done: asyncio.Task[None]) -> bool:
    """Whether the task finished, or its transaction waits for a lock another one holds."""
    if done.done():
        return True
    async with db.transaction() as session:
        waiting = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%advisory%'"
            )
        )
        return bool(waiting.scalar())


async def left_of(db: Database, lead_id: uuid.UUID) -> tuple[int, int]:
    async with db.transaction() as session:
        kept = await session.execute(text("SELECT count(*) FROM kept WHERE lead_id = :id"), {"id": lead_id})
        buried = await session.execute(
            text("SELECT count(*) FROM tombstones WHERE lead_id = :id"), {"id": lead_id}
        )
        return int(kept.scalar() or 0), int(buried.scalar() or 0)


@pytest.mark.parametrize("applying_by", ["another replica", "a lane"])
async def test_an_erasure_waits_for_the_event_being_applied_then_erases_what_it_wrote(
    db: Database, servers: Servers, applying_by: str
) -> None:
    """The event's transaction has found no tombstone and is still applying the event."""
    lead_id, gate = uuid.uuid4(), Gate()
    applying = runner(db, servers, gate) if applying_by == "another replica" else lane(db, servers, gate)
    event = asyncio.create_task(applying.apply([record(TOUCHED, lead_id, 1)]))
    await asyncio.wait_for(gate.inside.wait(), 10)
    erasure = asyncio.create_task(runner(db, servers).apply([record(LEAD_ERASED, lead_id, 2)]))
    await eventually(lambda: waiting_on_a_lock(db, erasure))
    gate.go_on.set()
    await asyncio.wait_for(asyncio.gather(event, erasure), 10)
    assert await left_of(db, lead_id) == (0, 1)


@pytest.mark.parametrize("applying_by", ["another replica", "a lane"])
async def test_an_event_about_a_lead_being_erased_waits_and_then_finds_its_tombstone(
    db: Database, servers: Servers, applying_by: str
) -> None:
    """The erasure's transaction is under way when the event's begins."""
    lead_id, gate = uuid.uuid4(), Gate()
    erasure = asyncio.create_task(runner(db, servers, gate).apply([record(LEAD_ERASED, lead_id, 1)]))
    await asyncio.wait_for(gate.inside.wait(), 10)
    applying = runner(db, servers) if applying_by == "another replica" else lane(db, servers, no_gate)
    event = asyncio.create_task(applying.apply([record(TOUCHED, lead_id, 2)]))
    await eventually(lambda: waiting_on_a_lock(db, event))
    gate.go_on.set()
    await asyncio.wait_for(asyncio.gather(event, erasure), 10)
    assert await left_of(db, lead_id) == (0, 1)
