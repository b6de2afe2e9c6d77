"""Fault tests: the broker or PostgreSQL goes away under load, and ingest keeps its word.

Each test gets its own broker or PostgreSQL (the session's are shared with every other
test), stops it for real while a steady stream of leads is posted, and starts it again.
"""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared import topics
from shared.cli import migrations_dir
from shared.embedded import EmbeddedBroker, free_port
from shared.embedded_postgres import EmbeddedPostgres, ensure_database
from shared.events import Envelope
from shared.kafka import create_topics
from shared.migrations import upgrade
from tests.conftest import Servers, eventually, running
from tests.helpers import create_source
from tests.shared.private_roots import discard

BROKER_OUTAGE_SECONDS = 15
DATABASE_OUTAGE_SECONDS = 5
REQUEST_DEADLINE = 10  # an answer slower than this counts as a hang


@dataclass
class Load:
    """A steady stream of new people posted by a few concurrent clients, each answer noted."""

    client: httpx.AsyncClient
    key: str
    accepted: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → lead id
    sent_at: dict[str, float] = field(default_factory=dict)  # lead id → when its request left
    refused: dict[str, dict[str, object]] = field(default_factory=dict)  # Idempotency-Key → lead
    statuses: list[int] = field(default_factory=list)
    retry_after: set[str | None] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(self, idempotency_key: str, lead: dict[str, object]) -> httpx.Response:
        headers = {"X-Source-Key": self.key, "Idempotency-Key": idempotency_key}
        async with asyncio.timeout(REQUEST_DEADLINE):
            return await self.client.post("/v1/leads", json=lead, headers=headers)

    async def _worker(self) -> None:
        while not self._stop.is_set():
            idempotency_key = str(uuid.uuid4())
            lead = {"email": f"{idempotency_key}@faults.example.kz", "first_name": "Әлия"}
            sent_at = asyncio.get_running_loop().time()
            response = await self.post(idempotency_key, lead)
            self.statuses.append(response.status_code)
            if response.status_code == 202:
                lead_id = self.accepted[idempotency_key] = response.json()["lead_id"]
                self.sent_at[lead_id] = sent_at
            else:
                self.refused[idempotency_key] = lead
                self.retry_after.add(response.headers.get("Retry-After"))
                await asyncio.sleep(0.05)  # a client backing off, not synchronisation

    @asynccontextmanager
    async def running(self, workers: int = 4) -> AsyncIterator["Load"]:
        tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    async def until_accepted(self, count: int) -> None:
        target = len(self.accepted) + count
        await eventually(lambda: len(self.accepted) >= target, timeout=30)


async def for_the_outage(seconds: float, load: Load) -> None:
    """Keep the load running for the outage's length (its duration, not a synchronisation)."""
    deadline = asyncio.get_running_loop().time() + seconds
    await eventually(lambda: asyncio.get_running_loop().time() >= deadline, timeout=seconds + 5, interval=0.1)


async def lead_ids_on_topic(bootstrap: str, wanted: set[str], timeout: float = 60) -> set[str]:
    """Read ingest's topic from the start until every wanted lead id has appeared."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=5
    )
    await consumer.start()
    consumer.assign([TopicPartition(topics.LEAD_EVENTS, p) for p in range(topics.PARTITIONS)])
    await consumer.seek_to_beginning()
    seen: set[str] = set()
    try:

        async def all_seen() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            seen.update(str(Envelope.from_bytes(m.value).lead_id) for ms in batch.values() for m in ms)
            return wanted <= seen

        await eventually(all_seen, timeout=timeout)
    finally:
        await consumer.stop()
    return seen


async def create_domain_topics(bootstrap: str) -> None:
    await eventually(_topics_created(bootstrap), timeout=30, interval=0.2)


def _topics_created(bootstrap: str) -> Callable[[], object]:
    async def attempt() -> bool:
        try:
            await create_topics(bootstrap, topics.DOMAIN_TOPICS, topics.PARTITIONS)
        except Exception:  # the broker is still starting
            return False
        return True

    return attempt


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    broker.start()
    try:
        await create_domain_topics(broker.bootstrap)
        yield broker
    finally:
        broker.stop()


async def test_broker_stopped_for_15_s_under_load_every_accepted_lead_is_published_after(
    servers: Servers, own_broker: EmbeddedBroker
) -> None:
    settings = servers.settings(IngestSettings, kafka_bootstrap=own_broker.bootstrap)
    async with running(create_app(settings)) as client:
        source = await create_source(client)
        load = Load(client, source["key"])
        async with load.running():
            await load.until_accepted(50)
            await asyncio.to_thread(own_broker.stop)
            stopped_at = asyncio.get_running_loop().time()  # the process has exited
            await for_the_outage(BROKER_OUTAGE_SECONDS, load)
            own_broker.start()  # memory storage: it comes back empty, so topics are recreated
            await create_domain_topics(own_broker.bootstrap)
            await load.until_accepted(50)

        assert set(load.statuses) == {202}, "ingest kept accepting while the broker was down"
        # Every lead posted once the broker had exited reaches the new broker. (Leads
        # published before the stop went down with the broker's memory storage.)
        accepted_while_away = {lead for lead, sent in load.sent_at.items() if sent > stopped_at}
        assert len(accepted_while_away) > 100
        await lead_ids_on_topic(own_broker.bootstrap, accepted_while_away)
        relay = client._transport.app.state.runtime.relay  # type: ignore[attr-defined]
        await eventually(lambda: _backlog_is(relay, 0), timeout=30)


async def _backlog_is(relay: object, count: int) -> bool:
    return await relay.backlog() == count  # type: ignore[attr-defined]


async def test_broker_frozen_for_15_s_under_load_nothing_is_lost(
    servers: Servers, own_broker: EmbeddedBroker
) -> None:
    """A hung broker (SIGSTOP) instead of a dead one: requests time out rather than being
    refused, and this time every lead ever accepted must be on the topic."""
    settings = servers.settings(IngestSettings, kafka_bootstrap=own_broker.bootstrap)
    async with running(create_app(settings)) as client:
        source = await create_source(client)
        load = Load(client, source["key"])
        pid = own_broker.process.pid  # type: ignore[union-attr]
        async with load.running():
            await load.until_accepted(50)
            os.kill(pid, signal.SIGSTOP)
            try:
                await for_the_outage(BROKER_OUTAGE_SECONDS, load)
            finally:
                os.kill(pid, signal.SIGCONT)
            await load.until_accepted(50)

        assert set(load.statuses) == {202}
        await lead_ids_on_topic(own_broker.bootstrap, set(load.accepted.values()))


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[EmbeddedPostgres]:
    postgres = EmbeddedPostgres(tmp_path / "postgres", free_port(), durable=False)
    await asyncio.to_thread(postgres.start)
    try:
        await ensure_database(postgres.url(), "leadflow")
        await asyncio.to_thread(upgrade, postgres.url("leadflow"), "ingest", migrations_dir("ingest"))
        yield postgres
    finally:
        await asyncio.to_thread(postgres.stop)
        discard(postgres)


async def test_postgres_stopped_ingest_answers_503_then_recovers_by_itself_nothing_lost(
    servers: Servers, own_postgres: EmbeddedPostgres
) -> None:
    database_url = own_postgres.url("leadflow")
    settings = servers.settings(IngestSettings, database_url=database_url)
    async with running(create_app(settings)) as client:
        source = await create_source(client)
        load = Load(client, source["key"])
        async with load.running():
            await load.until_accepted(50)
            await asyncio.to_thread(own_postgres.stop)
            await eventually(lambda: 503 in load.statuses, timeout=REQUEST_DEADLINE)
            await for_the_outage(DATABASE_OUTAGE_SECONDS, load)
            await asyncio.to_thread(own_postgres.start)
            await load.until_accepted(50)  # the same app, not restarted

        assert set(load.statuses) == {202, 503}, "an outage is a 503, never a 500"
        assert load.retry_after == {"2"}
        # The refused clients retry with the same Idempotency-Key and are taken now.
        for idempotency_key, lead in load.refused.items():
            response = await load.post(idempotency_key, lead)
            assert response.status_code == 202, response.text
            load.accepted[idempotency_key] = response.json()["lead_id"]
        await lead_ids_on_topic(servers.bootstrap, set(load.accepted.values()))

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        stored = await connection.fetch(
            "SELECT id::text, email FROM ingest.leads WHERE email LIKE '%@faults.example.kz'"
        )
    finally:
        await connection.close()
    assert sorted(r["id"] for r in stored) == sorted(load.accepted.values()), "each person once"
    assert len(stored) == len({r["email"] for r in stored})
