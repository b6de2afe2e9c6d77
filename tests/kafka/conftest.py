"""Each test of this package runs on Apache Kafka and on the embedded Tansu broker: one broker of
each kind per module, started here. Apache Kafka is skipped, with the reason, where Java 17 or
its jars cannot be had (LEADFLOW_TEST_APACHE_KAFKA=required makes that a failure instead)."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.cli import migrations_dir
from shared.db import Database
from shared.migrations import upgrade
from tests.conftest import Servers
from tests.kafka.apache_kafka import ApacheKafka, Broker, Tansu, Unavailable, java, kafka_jars

SCHEMA = "broker_recovery"


def _apache_kafka(home: Path) -> ApacheKafka:
    try:
        return ApacheKafka(java(), kafka_jars(), home)
    except Unavailable as reason:
        if os.environ.get("LEADFLOW_TEST_APACHE_KAFKA") == "required":
            pytest.fail(f"Apache Kafka is required here: {reason}")
        pytest.skip(f"Apache Kafka cannot run here: {reason}")


@pytest.fixture(scope="module", params=["apache-kafka", "tansu"])
async def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Broker]:
    """A broker of this module's own, which a test may stop and wipe (`lose_everything`)."""
    home = tmp_path_factory.mktemp(request.param)
    chosen: Broker
    if request.param == "apache-kafka":
        chosen = await asyncio.to_thread(_apache_kafka, home)
    else:
        chosen = Tansu(home)
    try:
        await chosen.start()
        yield chosen
    finally:
        await chosen.stop()


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    """A schema with the relay's and the inbox's tables (scoring's migrations), and a table the
    test handler counts applied events in."""
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.counters (lead_id uuid PRIMARY KEY, n int NOT NULL)")
        )
    yield database
    await database.dispose()


@pytest.fixture(autouse=True)
async def fresh(db: Database) -> None:
    """Each test starts with an empty outbox and journal, so the relay checks only its topics."""
    async with db.transaction() as session:
        await session.execute(text("TRUNCATE outbox, journal, relay_positions, outbox_dead_letters"))
