"""The outbox relay against a real broker and PostgreSQL: a row the broker refuses moves aside
and the rows behind it flow on; what a broker forgot is published again from the journal."""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from sqlalchemy import text

from shared import topics
from shared.cli import migrations_dir
from shared.db import COPY_FROM_ROWS, Database
from shared.doorbell import carrying, channel_of
from shared.embedded import EmbeddedBroker, free_port
from shared.kafka import Publisher, create_topics, log_ends
from shared.migrations import upgrade
from shared.observability import Telemetry
from shared.outbox import RING_SAYS_AT_MOST, stage
from shared.relay import OutboxRelay, take_batch
from tests.conftest import Servers, eventually
from tests.helpers import read_topic

SCHEMA = "relay_test"
TOO_LARGE = b"x" * (1024 * 1024 + 1)  # over the producer's 1 MiB request limit


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    """A schema with the relay's tables (scoring's migrations)."""
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    yield database
    await database.dispose()


@pytest.fixture
async def topic(servers: Servers) -> str:
    name = f"relay-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [name], 1)
    return name


@pytest.fixture
async def fresh(db: Database) -> None:
    """Each test starts with no rows in the relay's tables."""
    async with db.transaction() as session:
        await session.execute(text("TRUNCATE outbox, journal, relay_positions, outbox_dead_letters"))


async def stage_values(db: Database, topic: str, values: list[bytes]) -> None:
    async with db.transaction() as session:
        for value in values:
            stage(session, topic, b"key", value)


async def relay_everything(relay: OutboxRelay) -> None:
    while await relay.relay_once():
        pass


async def rows(db: Database, query: str) -> list[tuple[object, ...]]:
    async with db.transaction() as session:
        return [tuple(row) for row in await session.execute(text(query))]


@pytest.mark.usefixtures("fresh")
async def test_a_row_the_broker_refuses_moves_aside_and_the_rows_behind_it_flow_on(
    servers: Servers, db: Database, topic: str
) -> None:
    publisher = Publisher(servers.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    try:
        await stage_values(db, topic, [b"before", TOO_LARGE, b"after"])
        await relay_everything(relay)
        assert await relay.dead_letters() == 1
    finally:
        await relay.connection.close()
        await publisher.stop()

    published = await read_topic(servers.bootstrap, topic, until=lambda ms: len(ms) >= 2)
    assert [m.value for m in published] == [b"before", b"after"]
    dead = await rows(db, "SELECT topic, length(value), error FROM outbox_dead_letters")
    assert dead == [(topic, len(TOO_LARGE), dead[0][2])]
    assert "over the request limit" in str(dead[0][2])
    journal = await rows(db, "SELECT value FROM journal ORDER BY id")
    assert journal == [(b"before",), (b"after",)]
    assert await rows(db, "SELECT count(*) FROM outbox") == [(0,)]


@pytest.mark.usefixtures("fresh")
async def test_a_replica_waits_for_the_batch_another_holds_so_one_keys_events_stay_in_order(
    servers: Servers, db: Database, topic: str
) -> None:
    """Replicas of a service share its outbox. One has taken the oldest rows and is still
    publishing them (here: it then fails and gives them back); another must not publish the
    rows behind them meanwhile, or one lead's later events reach the partition first."""
    values = [f"event {i}".encode() for i in range(10)]
    await stage_values(db, topic, values)  # one key: one partition, in this order
    publisher = Publisher(servers.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    replica = await db.direct_connection().get()
    watcher = await db.direct_connection().get()
    try:
        waiting = await relay.connection.get()
        pid = waiting.get_server_pid()
        held = replica.transaction()
        await held.start()
        assert len(await take_batch(replica, 5)) == 5  # the other replica's batch, in flight
        turn = asyncio.create_task(relay.relay_once())

        async def blocked_or_done() -> bool:
            state = await watcher.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid)
            return turn.done() or state == "Lock"

        await eventually(blocked_or_done)
        await held.rollback()  # its publish failed: the rows are back in the outbox
        await turn
        await relay_everything(relay)
    finally:
        await replica.close()
        await watcher.close()
        await relay.connection.close()
        await publisher.stop()
    published = await read_topic(servers.bootstrap, topic, until=lambda ms: len(ms) >= 10)
    assert [m.value for m in published] == values


@pytest.mark.usefixtures("fresh")
async def test_what_a_new_empty_broker_lacks_is_published_again_in_order(
    db: Database, tmp_path: Path
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log")
    broker.start()
    publisher = Publisher(broker.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    topic = "relay-lost"
    values = [f"event {i}".encode() for i in range(1200)]
    rings: list[str] = []  # the payloads rung on the topic's channel (the relay's are empty)
    listener = await db.direct_connection().get()
    await listener.add_listener(channel_of(topic), lambda *args: rings.append(args[-1]))
    try:
        await create_topics(broker.bootstrap, [topic], 3)
        await stage_values(db, topic, values[:1000])
        await relay_everything(relay)
        assert await relay.check_broker() == 0  # the broker holds everything: nothing to do
        # Notifications arrive in commit order: past this marker, every ring so far is heard.
        await listener.execute("SELECT pg_notify($1, 'marker')", channel_of(topic))
        await eventually(lambda: "marker" in rings, timeout=10)
        rung_before = len(rings)

        broker.stop()  # an in-memory broker: its successor starts empty
        broker = EmbeddedBroker(port, tmp_path / "broker.log")
        broker.start()
        assert await relay.check_broker() == 1000
        # The paused consumers hear of it: the journal is news again.
        await eventually(lambda: len(rings) > rung_before, timeout=10)

        await stage_values(db, topic, values[1000:])
        await relay_everything(relay)
        assert await relay.check_broker() == 0
        published = await read_topic(broker.bootstrap, topic, until=lambda ms: len(ms) >= 1200)
    finally:
        await listener.close()
        await relay.connection.close()
        await publisher.stop()
        broker.stop()
    # Every message once, each partition in the journal's order (one key: one partition).
    assert [m.value for m in published] == values


@pytest.mark.usefixtures("fresh")
async def test_two_replicas_finding_the_broker_lost_publish_the_journal_again_once(
    db: Database, tmp_path: Path
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log")
    broker.start()
    publisher = Publisher(broker.bootstrap, "relay-test")
    relays = [OutboxRelay(db.direct_connection(), publisher, Telemetry("test")) for _ in range(2)]
    topic = "relay-lost-twice"
    values = [f"event {i}".encode() for i in range(1000)]
    try:
        await create_topics(broker.bootstrap, [topic], 3)
        await stage_values(db, topic, values)
        await relay_everything(relays[0])
        broker.stop()  # an in-memory broker: its successor starts empty
        broker = EmbeddedBroker(port, tmp_path / "broker.log")
        broker.start()
        republished = await asyncio.gather(*(relay.check_broker() for relay in relays))
        published = await read_topic(broker.bootstrap, topic, until=lambda ms: len(ms) >= 1000)
    finally:
        for relay in relays:
            await relay.connection.close()
        await publisher.stop()
        broker.stop()
    assert sorted(republished) == [0, 1000]
    assert [m.value for m in published] == values


@pytest.mark.usefixtures("fresh")
async def test_our_clients_asking_first_after_a_lost_broker_leave_the_topic_to_the_relay(
    db: Database, tmp_path: Path
) -> None:
    """Every consumer and producer asks for its topics' metadata as soon as a broker is back;
    Tansu would create each topic asked about, with 4 partitions, before the relay's check
    could make it with 8. Asked by our clients, it stays missing until the relay makes it."""
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log")
    broker.start()
    publisher = Publisher(broker.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    topic = "relay-asked-first"
    keys = [f"lead-{n}".encode() for n in range(40)]
    try:
        await create_topics(broker.bootstrap, [topic], topics.PARTITIONS)
        async with db.transaction() as session:
            for n in range(400):
                stage(session, topic, keys[n % len(keys)], f"event {n}".encode())
        await relay_everything(relay)

        broker.stop()  # an in-memory broker: its successor starts empty
        broker = EmbeddedBroker(port, tmp_path / "broker.log")
        broker.start()
        asking = AIOKafkaClient(bootstrap_servers=broker.bootstrap)  # as each consumer's and producer's
        await asking.bootstrap()
        try:
            await asking.add_topic(topic)
        finally:
            await asking.close()
        assert topic not in await listed_topics(broker.bootstrap)

        assert await relay.check_broker() == 400
        assert len(await log_ends(broker.bootstrap, [topic])) == topics.PARTITIONS
        published = await read_topic(broker.bootstrap, topic, until=lambda ms: len(ms) >= 400)
    finally:
        await relay.connection.close()
        await publisher.stop()
        broker.stop()
    assert sorted(m.value for m in published) == sorted(f"event {n}".encode() for n in range(400))


async def listed_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


@pytest.mark.usefixtures("fresh")
async def test_the_journal_keeps_what_was_published_within_its_retention(
    servers: Servers, db: Database, topic: str
) -> None:
    from datetime import timedelta

    from shared.journal import purge_journal

    publisher = Publisher(servers.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    try:
        await stage_values(db, topic, [b"old", b"new"])
        await relay_everything(relay)
    finally:
        await relay.connection.close()
        await publisher.stop()
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE journal SET published_at = now() - interval '8 days' WHERE value = 'old'")
        )
    assert await purge_journal(db, timedelta(days=7)) == 1
    assert await rows(db, "SELECT value FROM journal") == [(b"new",)]


@pytest.mark.usefixtures("fresh")
async def test_a_row_for_a_topic_that_cannot_exist_moves_aside_at_once(
    servers: Servers, db: Database, topic: str
) -> None:
    publisher = Publisher(servers.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    try:
        async with db.transaction() as session:
            stage(session, topic, b"key", b"before")
            stage(session, "not a topic name!", b"key", b"refused")
            stage(session, topic, b"key", b"after")
        await relay_everything(relay)
    finally:
        await relay.connection.close()
        await publisher.stop()
    dead = await rows(db, "SELECT topic, value, error FROM outbox_dead_letters")
    assert [(t, v) for t, v, _ in dead] == [("not a topic name!", b"refused")]
    assert "not a valid topic name" in str(dead[0][2])
    published = await read_topic(servers.bootstrap, topic, until=lambda ms: len(ms) >= 2)
    assert sorted(m.value for m in published) == [b"after", b"before"]


@pytest.mark.usefixtures("fresh")
async def test_a_bells_ring_names_the_leads_it_rang_for_and_a_topics_ring_says_nothing(
    servers: Servers, db: Database, topic: str
) -> None:
    """What a hand-off lane hears at once, so it can ask for those leads' keys while it fetches."""
    bell = f"bell-{uuid.uuid4().hex[:8]}"
    hot, cold = uuid.uuid4(), uuid.uuid4()
    publisher = Publisher(servers.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    listener = await db.direct_connection().get()
    rings: list[tuple[str, str]] = []
    for channel in (channel_of(topic), channel_of(bell)):
        await listener.add_listener(channel, lambda _c, _p, channel, said: rings.append((channel, said)))
    try:
        async with db.transaction() as session:
            stage(session, topic, str(hot).encode(), b"hot", bell=bell)
            stage(session, topic, str(cold).encode(), b"cold")
            stage(session, topic, str(hot).encode(), b"hot again", bell=bell)
        await relay_everything(relay)
        await eventually(lambda: len(rings) == 2)
    finally:
        await listener.close()
        await relay.connection.close()
        await publisher.stop()
    assert sorted(rings) == sorted([(channel_of(topic), ""), (channel_of(bell), str(hot))])


def test_a_ring_naming_too_many_leads_says_nothing() -> None:
    from shared.journal import _rings
    from shared.outbox import BELL, RING_SAYS_AT_MOST

    many = [
        {"topic": "t", "key": str(uuid.uuid4()).encode(), "headers": [[BELL, "b"]]}
        for _ in range(RING_SAYS_AT_MOST // 36 + 1)
    ]
    channels, said = _rings(many)  # type: ignore[arg-type]
    assert channels == [channel_of("t"), channel_of("b")] and said == ["", ""]
    channels, said = _rings(many[:10])  # type: ignore[arg-type]
    assert said[1] == ",".join(r["key"].decode() for r in many[:10])


async def test_a_message_for_a_bell_rings_with_itself_as_its_transaction_commits(db: Database) -> None:
    """Before any relay has it (the hand-off lane applies it from the ring); one too large for
    a ring rings nothing: its lane fetches it from the broker."""
    topic, bell = f"relay-{uuid.uuid4().hex[:8]}", f"bell-{uuid.uuid4().hex[:8]}"
    listener = await db.direct_connection().get()
    rings: list[str] = []
    await listener.add_listener(channel_of(carrying(bell)), lambda *args: rings.append(args[-1]))
    try:
        async with db.transaction() as session:
            stage(session, topic, b"lead", b'{"small": 1}', bell=bell)
            stage(session, topic, b"lead", b"x" * (RING_SAYS_AT_MOST + 1), bell=bell)
            stage(session, topic, b"lead", b'{"no bell": 1}')
            await session.flush()
            assert rings == []  # heard at the commit, not before
        await eventually(lambda: rings == ['{"small": 1}'])
        many = [f'{{"n": {i}}}' for i in range(COPY_FROM_ROWS)]  # written by COPY, rung apart
        async with db.transaction() as session:
            for value in many:
                stage(session, topic, b"lead", value.encode(), bell=bell)
        await eventually(lambda: rings[1:] == many)
    finally:
        await listener.close()


@pytest.mark.usefixtures("fresh")
async def test_a_stop_while_postgresql_dropped_the_relays_connection_mid_batch_stops_it(
    db: Database, tmp_path: Path
) -> None:
    """The relay holds its batch's transaction while it publishes. Stopped then, its rollback
    meets a connection PostgreSQL dropped (a restart, a killed backend) and fails: the stop
    came out as asyncpg's InterfaceError, which the relay retried as any failure, for good
    ('did not stop within 10s', then a hung shutdown)."""
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    broker.start()
    publisher = Publisher(broker.bootstrap, "relay-test")
    relay = OutboxRelay(db.direct_connection(), publisher, Telemetry("test"))
    watcher = await db.direct_connection().get()
    pid = broker.process.pid  # type: ignore[union-attr]
    running = None
    try:
        await create_topics(broker.bootstrap, ["relay-stop"], 1)
        await stage_values(db, "relay-stop", [b"held"])
        backend = (await relay.connection.get()).get_server_pid()
        os.kill(pid, signal.SIGSTOP)  # the publish hangs: the relay waits inside its batch
        running = asyncio.create_task(relay.run())
        held = "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND granted"
        await eventually(lambda: _holds(watcher, held, backend), timeout=10)
        await watcher.execute("SELECT pg_terminate_backend($1)", backend)
        running.cancel()
        await asyncio.wait([running], timeout=10)
        assert running.done(), "the relay went on after its stop"
        assert running.cancelled()
    finally:
        os.kill(pid, signal.SIGCONT)
        if running is not None and not running.done():
            running.cancel()
            await asyncio.wait([running], timeout=10)
        await watcher.close()
        await relay.connection.close()
        await publisher.stop()
        broker.stop()


async def _holds(connection: asyncpg.Connection, query: str, backend: int) -> bool:
    return bool(await connection.fetchval(query, backend))


def test_a_partition_that_cannot_take_writes_now_is_waited_for_not_a_refusal() -> None:
    """aiokafka marks its own KafkaTimeoutError not retriable: raised when an earlier batch to a
    partition with no leader is still waiting, it was taken for the broker refusing the row for
    good, and the relay dead-lettered good rows at once; NotEnoughReplicas and a leader not
    available were dead-lettered too, row by row, once the batch had failed five times while the
    broker answered: the lead's later events were published before them, out of order (found by
    a review). Only a refusal, or an error of the client about the message, sets a row aside."""
    from aiokafka.errors import (
        KafkaTimeoutError,
        LeaderNotAvailableError,
        MessageSizeTooLargeError,
        NotEnoughReplicasError,
        RequestTimedOutError,
    )

    from shared.relay import sets_aside

    waited = [
        KafkaTimeoutError(),
        NotEnoughReplicasError(),
        LeaderNotAvailableError(),
        RequestTimedOutError(),
    ]
    assert [sets_aside(error, broker_answers=True) for error in waited] == [False] * len(waited)
    assert sets_aside(MessageSizeTooLargeError(), broker_answers=False)
    assert sets_aside(ValueError("a header the client cannot send"), broker_answers=True)
    assert not sets_aside(ValueError("a header the client cannot send"), broker_answers=False)
