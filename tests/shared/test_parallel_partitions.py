"""A consumer behind applies a batch's partitions in parallel transactions (scoring does: while
one waits for the database, the next is decided), against the real broker and PostgreSQL: each
lead's events still apply in order and once, also when one of the transactions fails."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.cli import migrations_dir
from shared.consumer import ConsumerRunner, split_partitions
from shared.db import Database
from shared.events import Envelope
from shared.kafka import Publisher, create_topics
from shared.kafka_batches import partition_of
from shared.migrations import upgrade
from shared.observability import Telemetry
from tests.conftest import Servers, eventually

SCHEMA = "parallel_test"
PER_LEAD = 30
BATCH = 20
MEETINGS: dict[str, asyncio.Future[None]] = {}  # a topic's first two transactions meet here
OUTAGES: set[str] = set()


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def test_shares_hold_whole_partitions_in_order_about_as_many_records_each() -> None:
    sizes = {0: 7, 1: 2, 2: 5, 3: 4}
    batch = {
        TopicPartition("t", p): [_record("t", p, offset) for offset in range(size)]
        for p, size in sizes.items()
    }
    shares = split_partitions(batch, 2)
    assert sorted(map(len, shares)) == [9, 9]
    for share in shares:
        by_partition: dict[int, list[int]] = {}
        for record in share:
            by_partition.setdefault(record.partition, []).append(record.offset)
        for partition, offsets in by_partition.items():
            assert offsets == list(range(sizes[partition])), "a partition stays whole and in order"
    assert split_partitions(batch, 1) == [[r for rs in batch.values() for r in rs]]
    assert len(split_partitions({TopicPartition("t", 0): batch[TopicPartition("t", 0)]}, 4)) == 1
    assert split_partitions({}, 2) == [[]]


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.applied"
                " (id bigserial PRIMARY KEY, lead_id uuid NOT NULL, seq int NOT NULL)"
            )
        )
    yield database
    await database.dispose()


async def log_in_order(session: AsyncSession, events: list[Envelope]) -> None:
    """Logs each event's place in its lead's sequence. The first two transactions of a topic
    wait for each other (deadline 10 s): applied one after the other, the first would fail."""
    for event in events:
        topic = event.data["topic"]
        if event.data["seq"] == 1:
            meeting = MEETINGS.setdefault(topic, asyncio.get_running_loop().create_future())
            if meeting.done():
                pass
            elif event.data.get("first"):
                await asyncio.wait_for(asyncio.shield(meeting), timeout=10)
            else:
                meeting.set_result(None)
        if event.data.get("outage") in OUTAGES:
            OUTAGES.discard(event.data["outage"])
            raise ConnectionError("database unreachable")
        statement = text("INSERT INTO applied (lead_id, seq) VALUES (:lead, :seq)")
        await session.execute(statement, {"lead": event.lead_id, "seq": event.data["seq"]})


def _lead_on(partition: int, partitions: int) -> uuid.UUID:
    while True:
        lead = uuid.uuid4()
        if partition_of(str(lead).encode(), list(range(partitions))) == partition:
            return lead


async def _backlog(servers: Servers, topic: str, leads: list[uuid.UUID], outage_at: int | None) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    messages = []
    for seq in range(1, PER_LEAD + 1):
        for index, lead in enumerate(leads):
            data: dict[str, object] = {"topic": topic, "seq": seq, "first": index == 0}
            if index == 0 and seq == outage_at:
                data["outage"] = topic
            envelope = Envelope(
                type="test.logged", lead_id=lead, correlation_id=uuid.uuid4(), producer="t", data=data
            )
            messages.append((topic, str(lead).encode(), envelope.to_bytes()))
    try:
        await publisher.publish(messages)
    finally:
        await publisher.stop()


async def _sequences(db: Database, leads: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT lead_id, seq FROM applied WHERE lead_id = ANY(:leads) ORDER BY id"), {"leads": leads}
        )
    sequences: dict[uuid.UUID, list[int]] = {lead: [] for lead in leads}
    for lead, seq in rows:
        sequences[lead].append(seq)
    return sequences


async def _run_backlog(servers: Servers, db: Database, outage_at: int | None = None) -> list[uuid.UUID]:
    topic = f"parallel-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [topic], 2)
    leads = [_lead_on(0, 2), _lead_on(1, 2)]
    if outage_at is not None:
        OUTAGES.add(topic)
    await _backlog(servers, topic, leads, outage_at)
    runner = ConsumerRunner(
        group=f"g-{topic}",
        topics=[topic],
        handlers={"test.logged": log_in_order},
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        batch_size=BATCH,
        parallel_partitions=2,
    )
    failures = []

    async def all_applied() -> bool:
        try:
            await runner.poll_once(timeout_ms=200)
        except ConnectionError as error:
            failures.append(error)
        return all(len(s) >= PER_LEAD for s in (await _sequences(db, leads)).values())

    try:
        await eventually(all_applied, timeout=30)
    finally:
        await runner.stop()
    assert len(failures) == (outage_at is not None)
    return leads


async def test_a_backlog_on_two_partitions_is_applied_in_two_transactions_at_once_each_lead_in_order(
    servers: Servers, db: Database
) -> None:
    leads = await _run_backlog(servers, db)
    for sequence in (await _sequences(db, leads)).values():
        assert sequence == list(range(1, PER_LEAD + 1))


async def test_when_one_of_the_transactions_fails_the_batch_comes_again_and_nothing_applies_twice(
    servers: Servers, db: Database
) -> None:
    """The first lead's share fails at its 5th event (an outage), after the other share
    committed its batch: that batch comes again, and the inbox drops what was applied."""
    leads = await _run_backlog(servers, db, outage_at=5)
    for sequence in (await _sequences(db, leads)).values():
        assert sequence == list(range(1, PER_LEAD + 1))
