"""The consumer runner against the real broker and PostgreSQL: dedupe, DLQ, crash safety."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.cli import migrations_dir
from shared.consumer import ConsumerRunner, Lane, LaneRunner
from shared.db import Database, write_deferred
from shared.doorbell import Doorbell, answer, carrying, ring_in
from shared.events import Envelope
from shared.kafka import Publisher, create_topics
from shared.loops import run_for_good
from shared.migrations import upgrade
from shared.observability import Telemetry
from shared.outbox import add_to_outbox, ring_with_message
from shared.relay import OutboxRelay
from shared.topics import dlq
from tests.conftest import Servers, eventually
from tests.helpers import read_topic

SCHEMA = "runner_test"


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    """A schema with the plumbing tables (scoring's migrations: inbox, outbox, journal) and a
    counter table for the test handler."""
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.counters (lead_id uuid PRIMARY KEY, n int NOT NULL)")
        )
    yield database
    await database.dispose()


OUTAGES: set[str] = set()
CANCELLATIONS: set[str] = set()  # a cancellation not meant for the consumer, out of what it awaited
DEADLOCKS: set[str] = set()  # the transaction is a deadlock's victim, as PostgreSQL fails it
DISK_FULL: dict[str, int] = {}  # per test, how many more times PostgreSQL finds no room to write
BATCHES: dict[str, list[int]] = {}  # per test, the events in each transaction that counted them
HOLDING: set[str] = set()  # the handler holds its transaction open until it is cancelled
HELD: dict[str, int] = {}  # per test, the PostgreSQL backend of the transaction held


async def count_events(session: AsyncSession, events: list[Envelope]) -> None:
    """A handler with a visible effect: counts the events applied per lead."""
    if (test := str(events[0].data.get("test", ""))) and test:
        BATCHES.setdefault(test, []).append(len(events))
    for event in events:
        if event.data.get("deadlock") in DEADLOCKS:
            DEADLOCKS.discard(event.data["deadlock"])
            await session.execute(text(_DEADLOCK_VICTIM))
        if DISK_FULL.get(full := str(event.data.get("disk_full"))):
            DISK_FULL[full] -= 1
            await session.execute(text(_DISK_FULL))
        if event.data.get("poison"):
            raise ValueError("this message can never be applied")
        if event.data.get("outage") in OUTAGES:
            OUTAGES.discard(event.data["outage"])
            raise ConnectionError("database unreachable")
        if (held := str(event.data.get("hold"))) in HOLDING:
            HELD[held] = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await asyncio.Event().wait()  # until the consumer is stopped
        if event.data.get("cancelled") in CANCELLATIONS:
            CANCELLATIONS.discard(event.data["cancelled"])
            cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelled.cancel()  # someone else's future, cancelled under the handler's feet
            await cancelled
        await session.execute(
            text(
                "INSERT INTO counters VALUES (:id, 1) ON CONFLICT (lead_id) DO UPDATE SET n = counters.n + 1"
            ),
            {"id": event.lead_id},
        )


_DISK_FULL = "DO $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$"
_DEADLOCK_VICTIM = (
    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"
)


async def applied(db: Database, lead_id: uuid.UUID) -> int:
    async with db.transaction() as session:
        row = (
            await session.execute(text("SELECT n FROM counters WHERE lead_id = :id"), {"id": lead_id})
        ).first()
    return row[0] if row else 0


async def new_topic(servers: Servers, partitions: int = 1) -> str:
    name = f"runner-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [name], partitions)
    return name


def make_runner(
    servers: Servers, db: Database, publisher: Publisher, topic: str, group: str
) -> ConsumerRunner:
    return ConsumerRunner(
        group=group,
        topics=[topic],
        handlers={"test.counted": count_events},
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        max_attempts=2,
    )


def event(lead_id: uuid.UUID, **data: object) -> Envelope:
    return Envelope(
        type="test.counted",
        lead_id=lead_id,
        correlation_id=uuid.uuid4(),
        producer="test",
        data=data,
    )


async def publish(publisher: Publisher, topic: str, *values: bytes, key: bytes = b"same-key") -> None:
    await publisher.publish([(topic, key, value) for value in values])


@pytest.fixture
async def publisher(servers: Servers) -> AsyncIterator[Publisher]:
    p = Publisher(servers.bootstrap, "test")
    yield p
    await p.stop()


async def test_duplicate_event_changes_state_once(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    topic = await new_topic(servers)
    lead = uuid.uuid4()
    duplicated = event(lead).to_bytes()
    await publish(publisher, topic, duplicated, duplicated)
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    seen = 0
    try:

        async def consumed_both() -> bool:
            nonlocal seen
            seen += await runner.poll_once(timeout_ms=200)
            return seen >= 2

        await eventually(consumed_both)
    finally:
        await runner.stop()
    assert await applied(db, lead) == 1


async def test_poison_message_goes_to_dlq_and_partition_keeps_flowing(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    topic = await new_topic(servers)
    group = f"g-{topic}"
    await create_topics(servers.bootstrap, [dlq(group)], 1)
    before, after = uuid.uuid4(), uuid.uuid4()
    await publish(
        publisher,
        topic,
        event(before).to_bytes(),
        event(uuid.uuid4(), poison=True).to_bytes(),
        b"{not an envelope",
        event(after).to_bytes(),
    )
    runner = make_runner(servers, db, publisher, topic, group)
    try:

        async def later_message_applied() -> bool:
            await runner.poll_once(timeout_ms=200)
            return await applied(db, after) == 1

        await eventually(later_message_applied)
    finally:
        await runner.stop()
    assert await applied(db, before) == 1
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    try:
        while await relay.relay_once():  # the dead letters were staged in the outbox
            pass
    finally:
        await relay.connection.close()
    dead = await read_topic(servers.bootstrap, dlq(group), until=lambda ms: len(ms) >= 2)
    errors = sorted(dict(m.headers)["error"].decode() for m in dead)
    assert errors[0].startswith("ValueError: this message can never be applied")
    assert errors[1].startswith("undecodable envelope")


async def test_crash_after_db_commit_before_offset_commit_has_no_double_effect(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    topic = await new_topic(servers)
    group = f"g-{topic}"
    lead = uuid.uuid4()
    await publish(publisher, topic, event(lead).to_bytes())

    crashed = make_runner(servers, db, publisher, topic, group)
    consumer = await crashed._start()
    batch = await eventually(lambda: consumer.getmany(timeout_ms=200))
    await crashed.apply([r for rs in batch.values() for r in rs])  # DB committed...
    await crashed.stop()  # ...and the process is gone before committing offsets
    assert await applied(db, lead) == 1

    restarted = make_runner(servers, db, publisher, topic, group)
    try:
        redelivered = await eventually(lambda: restarted.poll_once(timeout_ms=200))
    finally:
        await restarted.stop()
    assert redelivered == 1
    assert await applied(db, lead) == 1


async def test_batch_hit_by_an_outage_is_fetched_again_not_skipped(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    topic = await new_topic(servers)
    first, second = uuid.uuid4(), uuid.uuid4()
    OUTAGES.add(topic)
    await publish(publisher, topic, event(first, outage=topic).to_bytes())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    try:
        with pytest.raises(ConnectionError):
            await eventually(lambda: runner.poll_once(timeout_ms=200))
        await publish(publisher, topic, event(second).to_bytes())

        async def both_applied() -> bool:
            await runner.poll_once(timeout_ms=200)
            return await applied(db, second) == 1

        await eventually(both_applied)
    finally:
        await runner.stop()
    assert await applied(db, first) == 1


async def test_a_batch_that_a_deadlock_failed_is_fetched_again_whole_not_isolated(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """PostgreSQL fails one transaction of a deadlock (or a serialization failure): the batch was
    fine and only met another transaction. It is fetched again and applied whole, as after an
    outage; not message by message, where a message that met deadlocks twice was dead-lettered."""
    topic = await new_topic(servers)
    leads = [uuid.uuid4() for _ in range(3)]
    DEADLOCKS.add(topic)
    values = [
        event(lead, test=topic, deadlock=topic if i == 1 else None).to_bytes() for i, lead in enumerate(leads)
    ]
    await publish(publisher, topic, *values)
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    try:

        async def all_applied() -> bool:
            with contextlib.suppress(DBAPIError):
                await runner.poll_once(timeout_ms=200)
            return [await applied(db, lead) for lead in leads] == [1, 1, 1]

        await eventually(all_applied)
    finally:
        await runner.stop()
    assert BATCHES[topic] == [3, 3]  # failed once whole, then applied whole


async def test_a_batch_failed_by_a_full_disk_is_fetched_again_not_dead_lettered(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """PostgreSQL answers 53100 when it cannot extend a file, and stays up: the batch was taken
    for bad messages, each tried twice and dead-lettered for good, though nothing was wrong with
    them (found by a review). An outage of room is waited out as any outage."""
    topic = await new_topic(servers)
    lead = uuid.uuid4()
    DISK_FULL[topic] = 4  # more than the runner's attempts at a bad message
    await publish(publisher, topic, event(lead, disk_full=topic).to_bytes())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    try:

        async def applied_once_room_is_back() -> bool:
            with contextlib.suppress(DBAPIError):
                await runner.poll_once(timeout_ms=200)
            return await applied(db, lead) == 1

        await eventually(applied_once_room_is_back)
    finally:
        await runner.stop()
    assert DISK_FULL[topic] == 0


async def test_a_consumer_hit_by_a_cancellation_not_meant_for_it_is_started_again_and_loses_nothing(
    servers: Servers, db: Database, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    """As the service runs it (`run_for_good`): the consumer ends, is logged, and consumes again
    from where its group stands; a stop still stops it."""
    topic = await new_topic(servers)
    lead = uuid.uuid4()
    CANCELLATIONS.add(topic)
    await publish(publisher, topic, event(lead, cancelled=topic).to_bytes())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    running = asyncio.create_task(run_for_good("test consumer", runner.run, pause=0))
    try:
        await eventually(lambda: applied(db, lead), timeout=30)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert topic not in CANCELLATIONS, "the handler was cancelled once"
    assert await applied(db, lead) == 1
    assert "test consumer was cancelled, not by a stop" in caplog.text
    assert runner.consumer is None, "stopped"


async def test_a_stop_while_postgresql_dropped_the_batchs_connection_stops_the_consumer(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Stopped while it applies a batch whose connection PostgreSQL dropped (a restart, a killed
    backend), the consumer's rollback fails and the stop comes out as asyncpg's InterfaceError:
    taken for an ordinary failure, the batch was isolated message by message and the consumer
    retried for good."""
    topic = await new_topic(servers)
    HOLDING.add(topic)
    await publish(publisher, topic, event(uuid.uuid4(), hold=topic).to_bytes())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    running = asyncio.create_task(runner.run())
    try:
        backend = await eventually(lambda: HELD.get(topic), timeout=30)
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        running.cancel()
        await asyncio.wait([running], timeout=10)
        assert running.done(), "the consumer went on after its stop"
        assert running.cancelled()
    finally:
        HOLDING.discard(topic)
        if not running.done():
            running.cancel()
            await asyncio.wait([running], timeout=10)
        await runner.stop()


async def test_an_idle_consumer_stops_fetching_and_the_doorbell_wakes_it(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Paused, the consumer sends the broker nothing; a relay that publishes to its topic rings
    the doorbell (PostgreSQL NOTIFY) and it applies the event at once. The recheck is an hour
    away, so only the doorbell can have woken it."""
    topic = await new_topic(servers)
    doorbell = Doorbell(db.direct_connection())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    runner.idle_pause_seconds, runner.recheck_seconds = 0.2, 3600
    runner.news = doorbell.heard([topic])
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(runner.run())]
    try:
        await eventually(lambda: runner.paused, timeout=30)
        assert runner.consumer is not None and runner.consumer.paused() == runner.consumer.assignment()
        lead = uuid.uuid4()
        async with db.transaction() as session:
            add_to_outbox(session, topic, event(lead))
        while await relay.relay_once():
            pass
        assert await eventually(lambda: applied(db, lead), timeout=10) == 1
        await eventually(lambda: runner.paused, timeout=10)  # and back to sleep
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_an_urgent_consumer_pauses_as_soon_as_it_has_caught_up_and_is_woken_for_each_event(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """On a hot lead's way, a consumer that fetched every few milliseconds between leads cost
    the broker more than the leads did. Caught up, it pauses at once (the idle pause is an hour
    here), each ring wakes it, and what it applied is committed while it waits."""
    topic = await new_topic(servers)
    doorbell = Doorbell(db.direct_connection())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    runner.idle_pause_seconds, runner.recheck_seconds = 3600, 3600
    runner.pause_when_caught_up = True
    runner.news = doorbell.heard([topic])
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(runner.run())]
    try:
        await eventually(lambda: runner.joined, timeout=30)
        for _ in range(2):
            lead = uuid.uuid4()
            async with db.transaction() as session:
                add_to_outbox(session, topic, event(lead))
            while await relay.relay_once():
                pass
            assert await eventually(lambda: applied(db, lead), timeout=10) == 1  # noqa: B023
            await eventually(lambda: runner.paused, timeout=10)

        async def committed_while_paused() -> bool:
            return runner.paused and await runner.lag() == 0

        await eventually(committed_while_paused, timeout=10)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_an_urgent_consumer_fetches_nothing_ahead_while_it_applies_a_batch(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """The client sends its next fetch as soon as a batch is handed over; when leads come one
    by one the broker holds it for its whole wait and answers it empty, a request and a
    response for nothing with each batch. An urgent consumer's partitions stay paused while it
    applies a batch; after it, one that has not reached the end fetches again at once."""
    topic = await new_topic(servers)
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    runner.idle_pause_seconds, runner.recheck_seconds = 3600, 3600
    runner.pause_when_caught_up, runner.batch_size = True, 2
    paused_while_applying: list[bool] = []

    async def count_and_look(session: AsyncSession, events: list[Envelope]) -> None:
        consumer = runner.consumer
        assert consumer is not None
        paused_while_applying.append(consumer.paused() == consumer.assignment())
        await count_events(session, events)

    runner.handlers = {"test.counted": count_and_look}
    leads = [uuid.uuid4() for _ in range(3)]
    try:
        await publish(publisher, topic, *(event(lead).to_bytes() for lead in leads))
        assert await eventually(lambda: runner.poll_once(timeout_ms=200)) == 2
        assert not runner.paused  # one more to fetch: fetching again at once
        assert runner.consumer is not None and runner.consumer.paused() == set()
        assert await eventually(lambda: runner.poll_once(timeout_ms=200)) == 1
        assert runner.paused  # caught up: waiting for the doorbell
        assert paused_while_applying == [True, True]
        assert [await applied(db, lead) for lead in leads] == [1, 1, 1]
    finally:
        await runner.stop()


async def test_off_a_hot_leads_way_a_trickle_of_events_is_applied_as_one_gathered_batch(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """At a steady rate, a consumer that applied each lead in its own fetch and transaction
    cost several times what the same leads cost in a burst. A background consumer that took a
    short batch waits `gather_seconds` from that fetch, its partitions paused, before it
    fetches again: what trickled in meanwhile comes as one batch."""
    topic = await new_topic(servers)
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    runner.gather_seconds = 3.0
    try:
        await publish(publisher, topic, event(uuid.uuid4()).to_bytes())
        assert await eventually(lambda: runner.poll_once(timeout_ms=200)) == 1
        gathered = asyncio.create_task(runner.poll_once())
        leads = [uuid.uuid4() for _ in range(5)]
        for lead in leads:
            await publish(publisher, topic, event(lead).to_bytes())  # one produce request each
        assert await gathered == 5
        assert [await applied(db, lead) for lead in leads] == [1] * 5
    finally:
        await runner.stop()


async def test_a_paused_consumer_still_looks_now_and_then(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """A bell that never rings (a producer outside, another database) costs latency, not events."""
    topic = await new_topic(servers)
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    runner.idle_pause_seconds, runner.recheck_seconds = 0.2, 0.5
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.paused, timeout=30)
        lead = uuid.uuid4()
        await publish(publisher, topic, event(lead).to_bytes())  # no relay, no ring
        assert await eventually(lambda: applied(db, lead), timeout=10) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def mark_once(session: AsyncSession, events: list[Envelope]) -> None:
    """An idempotent handler, as a lane's must be."""
    if (test := str(events[0].data.get("test", ""))) and test:
        BATCHES.setdefault(test, []).append(len(events))
    for event in events:
        if event.data.get("deadlock") in DEADLOCKS:
            DEADLOCKS.discard(event.data["deadlock"])
            await session.execute(text(_DEADLOCK_VICTIM))
        if event.data.get("poison"):
            raise ValueError("this message can never be applied")
        await session.execute(
            text("INSERT INTO counters VALUES (:id, 1) ON CONFLICT (lead_id) DO NOTHING"),
            {"id": event.lead_id},
        )


def make_lane(servers: Servers, db: Database, topic: str) -> LaneRunner:
    lane = Lane([topic], {"test.counted": mark_once}, lambda e: bool(e.data.get("urgent")))
    return LaneRunner(
        group=f"lane-{topic}",
        topics=[topic],
        lane=lane,
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
    )


async def claimed(db: Database, event_id: uuid.UUID) -> bool:
    async with db.transaction() as session:
        found = await session.execute(
            text("SELECT 1 FROM processed_events WHERE event_id = :id"), {"id": event_id}
        )
        return found.first() is not None


async def test_a_lane_applies_what_it_wants_on_its_own_from_when_it_joins(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """The lane runs with no main consumer at all; it skips what it does not want, claims
    nothing in the inbox (the main consumer will apply the same events), and a new lane starts
    at the end of the topic: the past is the main consumer's."""
    topic = await new_topic(servers)
    before = event(uuid.uuid4(), urgent=True)
    await publish(publisher, topic, before.to_bytes())
    lane = make_lane(servers, db, topic)
    task = asyncio.create_task(lane.run())
    try:
        await eventually(lambda: lane.joined and lane.consumer is not None, timeout=30)
        assert lane.consumer is not None
        for partition in lane.consumer.assignment():
            await lane.consumer.position(partition)  # "latest" resolved before the next publish
        urgent, cold = event(uuid.uuid4(), urgent=True), event(uuid.uuid4())
        await publish(publisher, topic, cold.to_bytes(), urgent.to_bytes())
        assert await eventually(lambda: applied(db, urgent.lead_id), timeout=10) == 1
        assert await applied(db, cold.lead_id) == 0
        assert await applied(db, before.lead_id) == 0
        assert not await claimed(db, urgent.id)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_lane_with_a_bell_sleeps_through_what_it_does_not_want(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Scoring rings the hot-lead bell beside its topic when a classification hands a lead to a
    rep; the hand-off lane waits for that bell only, so cold leads' classifications no longer
    wake it one by one: they are fetched with the next hot one. The bell is never published."""
    topic = await new_topic(servers)
    bell = f"{topic}-hot"
    doorbell = Doorbell(db.direct_connection())
    lane = make_lane(servers, db, topic)
    lane.idle_pause_seconds, lane.recheck_seconds, lane.pause_when_caught_up = 3600, 3600, True
    lane.news = doorbell.heard([bell])  # as a service does for a lane with a bell
    topic_rang = doorbell.heard([topic])
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(lane.run())]
    try:
        await eventually(lambda: lane.joined and lane.paused, timeout=30)
        cold, urgent = event(uuid.uuid4()), event(uuid.uuid4(), urgent=True)
        topic_rang.clear()
        async with db.transaction() as session:
            add_to_outbox(session, topic, cold)
        while await relay.relay_once():
            pass
        await eventually(topic_rang.is_set)  # heard, and the lane's bell would be set with it
        assert lane.paused and not lane.news.is_set()
        async with db.transaction() as session:
            add_to_outbox(session, topic, urgent, bell=bell)
        while await relay.relay_once():
            pass
        assert await eventually(lambda: applied(db, urgent.lead_id), timeout=10) == 1
        assert await applied(db, cold.lead_id) == 0
        published = await read_topic(servers.bootstrap, topic, until=lambda ms: len(ms) >= 2)
        assert [m.headers for m in published] == [(), ()]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_a_lane_applies_what_its_bell_rang_with_before_the_broker_has_it_and_only_once(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Scoring's commit rings the hot-lead bell with the classification itself: the hand-off
    lane applies it before the relay publishes it, and skips it when the broker brings it."""
    topic = await new_topic(servers)
    bell = f"{topic}-hot"
    doorbell = Doorbell(db.direct_connection())
    lane = LaneRunner(
        group=f"lane-{topic}",
        topics=[topic],
        lane=Lane([topic], {"test.counted": count_events}, lambda e: bool(e.data.get("urgent")), bell=bell),
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        idle_pause_seconds=3600,
        recheck_seconds=3600,
        pause_when_caught_up=True,
    )
    lane.news = doorbell.heard([bell])  # as a service wires a lane with a bell
    doorbell.on_ring(carrying(bell), lane.heard)
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(lane.run())]
    try:
        await eventually(lambda: lane.joined and lane.paused, timeout=30)
        urgent, after = event(uuid.uuid4(), urgent=True), event(uuid.uuid4(), urgent=True)
        async with db.transaction() as session:
            add_to_outbox(session, topic, urgent, bell=bell)
        assert await eventually(lambda: applied(db, urgent.lead_id), timeout=10) == 1  # not published
        async with db.transaction() as session:
            add_to_outbox(session, topic, after)  # no bell: fetched with the rung one, after it
        while await relay.relay_once():
            pass
        assert await eventually(lambda: applied(db, after.lead_id), timeout=10) == 1
        assert await applied(db, urgent.lead_id) == 1  # skipped when the broker brought it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_a_consumer_applies_what_rang_through_its_inbox_so_the_brokers_copy_is_a_duplicate(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Ingest's commit rings a new lead's capture with itself: scoring's consumer applies it
    before the relay publishes it, through its inbox, and the broker's copy is then a duplicate
    (the handler here counts every application). One whose ring failed to apply is applied
    when the broker brings it."""
    topic = await new_topic(servers)
    bell = f"{topic}-new"
    telemetry = Telemetry("test")
    doorbell = Doorbell(db.direct_connection())
    runner = ConsumerRunner(
        group=f"rung-{topic}",
        topics=[topic],
        handlers={"test.counted": count_events},
        db=db,
        telemetry=telemetry,
        bootstrap=servers.bootstrap,
        idle_pause_seconds=3600,
        recheck_seconds=3600,
        pause_when_caught_up=True,
        news=doorbell.heard([topic]),
    )
    doorbell.on_ring(carrying(bell), runner.heard)
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(runner.run())]

    def seen(outcome: str) -> float:
        labels = {"topic": topic, "type": "test.counted", "outcome": outcome}
        return telemetry.registry.get_sample_value("leadflow_events_in_total", labels) or 0

    try:
        await eventually(lambda: runner.joined and runner.paused, timeout=30)
        new, failing = event(uuid.uuid4()), event(uuid.uuid4(), outage="rung")
        async with db.transaction() as session:
            ring_with_message(session, bell, add_to_outbox(session, topic, new))
        assert await eventually(lambda: applied(db, new.lead_id), timeout=10) == 1  # not published yet
        OUTAGES.add("rung")
        async with db.transaction() as session:
            ring_with_message(session, bell, add_to_outbox(session, topic, failing))
        await eventually(lambda: "rung" not in OUTAGES, timeout=10)  # its ring failed to apply
        while await relay.relay_once():
            pass
        assert await eventually(lambda: applied(db, failing.lead_id), timeout=10) == 1
        await eventually(lambda: seen("duplicate") == 1, timeout=10)
        assert await applied(db, new.lead_id) == 1
        assert seen("applied") == 1  # the failing one's copy; the rung one counts under "(rung)"
    finally:
        OUTAGES.discard("rung")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_the_brokers_copy_of_a_rung_event_is_skipped_while_the_ring_is_still_applying_it(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """A ring whose transaction is slow (a busy machine) is overtaken by the broker's copy: that
    copy is skipped, not applied in a second transaction alongside it (both would lock the
    reps, one waiting for the other)."""
    topic = await new_topic(servers)
    bell = f"{topic}-hot"
    gate = asyncio.Event()
    seen: list[uuid.UUID] = []

    async def slow_at_first(session: AsyncSession, events: list[Envelope]) -> None:
        seen.extend(e.id for e in events)
        if len(seen) == 1:
            await gate.wait()  # the ring's application, held open until the broker had its turn
        await count_events(session, events)

    doorbell = Doorbell(db.direct_connection())
    lane = LaneRunner(
        group=f"lane-{topic}",
        topics=[topic],
        lane=Lane([topic], {"test.counted": slow_at_first}, lambda e: True, bell=bell),
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        idle_pause_seconds=3600,
        recheck_seconds=3600,
        pause_when_caught_up=True,
    )
    lane.news = doorbell.heard([bell])
    doorbell.on_ring(carrying(bell), lane.heard)
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    tasks = [asyncio.create_task(doorbell.run()), asyncio.create_task(lane.run())]
    try:
        await eventually(lambda: lane.joined and lane.paused, timeout=30)
        urgent, after = event(uuid.uuid4()), event(uuid.uuid4())
        async with db.transaction() as session:
            add_to_outbox(session, topic, urgent, bell=bell)
        await eventually(lambda: seen == [urgent.id], timeout=10)  # rung, and being applied
        async with db.transaction() as session:
            add_to_outbox(session, topic, after)
        while await relay.relay_once():
            pass
        assert await eventually(lambda: applied(db, after.lead_id), timeout=10) == 1
        gate.set()
        assert await eventually(lambda: applied(db, urgent.lead_id), timeout=10) == 1
        assert seen == [urgent.id, after.id]  # the broker's copy of the rung one never reached it
    finally:
        gate.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.connection.close()


async def test_a_lane_commits_without_waiting_for_the_disk(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """The lane's transactions do not wait for the flush of their commit (the main consumer
    redoes their work durably); everything else keeps the server's setting."""

    async def note_durability(session: AsyncSession, events: list[Envelope]) -> None:
        for event in events:
            await session.execute(
                text("INSERT INTO counters VALUES (:id, :n) ON CONFLICT (lead_id) DO NOTHING"),
                {"id": event.lead_id, "n": await _commit_setting(session)},
            )

    topic = await new_topic(servers)
    lane = LaneRunner(
        group=f"lane-{topic}",
        topics=[topic],
        lane=Lane([topic], {"test.counted": note_durability}, lambda e: True),
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
    )
    task = asyncio.create_task(lane.run())
    try:
        await eventually(lambda: lane.joined and lane.consumer is not None, timeout=30)
        assert lane.consumer is not None
        for partition in lane.consumer.assignment():
            await lane.consumer.position(partition)
        urgent = event(uuid.uuid4(), urgent=True)
        await publish(publisher, topic, urgent.to_bytes())
        await eventually(lambda: _has_row(db, urgent.lead_id), timeout=10)
        assert await applied(db, urgent.lead_id) == 1, "synchronous_commit set off in the lane"
        async with db.transaction() as session:
            assert await _commit_setting(session) == 0, "and only there"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _commit_setting(session: AsyncSession) -> int:
    """1 when this transaction's connection set synchronous_commit off itself (when it
    connected, or in the transaction), not the server's configuration; else 0."""
    row = await session.execute(
        text("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'")
    )
    setting, source = row.one()
    return int(setting == "off" and source in ("client", "session"))


async def _has_row(db: Database, lead: uuid.UUID) -> bool:
    async with db.transaction() as session:
        found = await session.execute(text("SELECT 1 FROM counters WHERE lead_id = :id"), {"id": lead})
        return found.first() is not None


async def test_a_lane_that_fails_moves_on_and_claims_nothing(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """A message the lane cannot apply costs it nothing but that head start: it commits past it
    (no retries, no dead letter: the main consumer applies the same message and isolates it)."""
    topic = await new_topic(servers)
    lane = make_lane(servers, db, topic)
    task = asyncio.create_task(lane.run())
    try:
        await eventually(lambda: lane.joined and lane.consumer is not None, timeout=30)
        assert lane.consumer is not None
        (partition,) = lane.consumer.assignment()
        await lane.consumer.position(partition)
        poison = event(uuid.uuid4(), urgent=True, poison=True)
        await publish(publisher, topic, poison.to_bytes())
        consumer = lane.consumer
        assert await eventually(lambda: consumer.committed(partition), timeout=10) == 1
        urgent = event(uuid.uuid4(), urgent=True)
        await publish(publisher, topic, urgent.to_bytes())
        assert await eventually(lambda: applied(db, urgent.lead_id), timeout=10) == 1
        assert await applied(db, poison.lead_id) == 0
        assert not await claimed(db, poison.id)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_events_no_handler_takes_leave_no_inbox_row(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """Nurture reads every lead event for the few it handles; the rest cost no write."""
    topic = await new_topic(servers)
    other = Envelope(
        type="test.other", lead_id=uuid.uuid4(), correlation_id=uuid.uuid4(), producer="test", data={}
    )
    counted = event(uuid.uuid4())
    await publish(publisher, topic, other.to_bytes(), counted.to_bytes())
    runner = make_runner(servers, db, publisher, topic, f"g-{topic}")
    try:

        async def counted_applied() -> int:
            await runner.poll_once(timeout_ms=200)
            return await applied(db, counted.lead_id)

        await eventually(counted_applied)
    finally:
        await runner.stop()
    assert await claimed(db, counted.id)
    assert not await claimed(db, other.id)


async def test_a_commit_that_writes_a_table_rings_its_bell_for_other_processes(db: Database) -> None:
    """How nurture's main process wakes the webhook dispatcher of its hand-off process: the bell
    rings (at the commit) only for transactions that wrote the table, also when a handler wrote
    its rows before the end (follow-up does)."""
    writer = Database(db.url, db.schema)
    writer.before_commit("outbox", lambda session: ring_in(session, ["test.bell"]))
    doorbell = Doorbell(db.direct_connection())
    bell, other = doorbell.heard(["test.bell"]), doorbell.heard(["test.other"])
    woken: list[int] = []
    tasks = [asyncio.create_task(doorbell.run())]
    try:
        await eventually(lambda: bell.is_set() and other.is_set(), timeout=10)  # listening: all woken
        tasks.append(asyncio.create_task(answer(bell, lambda: woken.append(1))))
        await eventually(lambda: woken == [1], timeout=10)
        async with writer.transaction() as session:
            await session.execute(text("SELECT 1"))  # wrote nothing
        other.clear()
        async with writer.transaction() as session:
            await ring_in(session, ["test.other"])
        await eventually(other.is_set, timeout=10)  # rung after the first commit, heard after it
        assert woken == [1]
        async with writer.transaction() as session:
            add_to_outbox(session, "runner-bell", event(uuid.uuid4()))
        await eventually(lambda: woken == [1, 1], timeout=10)
        async with writer.transaction() as session:  # a handler that writes its rows early
            add_to_outbox(session, "runner-bell", event(uuid.uuid4()))
            await write_deferred(session)
        await eventually(lambda: woken == [1, 1, 1], timeout=10)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.dispose()
        async with db.transaction() as session:
            await session.execute(text("DELETE FROM outbox WHERE topic = 'runner-bell'"))


async def test_a_record_with_no_value_is_dead_lettered_and_the_partition_keeps_flowing(
    servers: Servers, db: Database, publisher: Publisher
) -> None:
    """A Kafka tombstone (a record whose value is null), from a tool or another producer on
    the topic: its dead letter was staged with no value, refused by the outbox's NOT NULL at
    commit, and the batch was fetched again for good: the partition stalled (found by a review)."""
    from aiokafka import AIOKafkaProducer

    topic = await new_topic(servers)
    group = f"g-{topic}"
    await create_topics(servers.bootstrap, [dlq(group)], 1)
    after = uuid.uuid4()
    other_client = AIOKafkaProducer(bootstrap_servers=servers.bootstrap)
    await other_client.start()
    try:
        await other_client.send_and_wait(topic, key=b"same-key", value=None)
    finally:
        await other_client.stop()
    await publish(publisher, topic, event(after).to_bytes())
    runner = make_runner(servers, db, publisher, topic, group)
    try:

        async def later_message_applied() -> bool:
            await runner.poll_once(timeout_ms=200)
            return await applied(db, after) == 1

        await eventually(later_message_applied, timeout=20)
    finally:
        await runner.stop()
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    try:
        while await relay.relay_once():
            pass
    finally:
        await relay.connection.close()
    dead = await read_topic(servers.bootstrap, dlq(group), until=lambda ms: len(ms) >= 1)
    assert [(m.value, dict(m.headers)["error"].decode()[:20]) for m in dead] == [
        (b"", "undecodable envelope")
    ]
