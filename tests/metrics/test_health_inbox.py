"""Metrics' /v1/health counts each consumer's inbox dead letters (messages it could not apply,
missing from its data until replayed): scoring's and nurture's asked of them (`GET /v1/inbox`,
viewer token), metrics' own from its schema; a problem line names where to read them, and a
gauge on /metrics carries each count."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy import text

from services.metrics.config import MetricsSettings
from services.metrics.health import PipelineHealth
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.scoring.app import create_app as scoring_app
from services.scoring.config import ScoringSettings
from shared.db import Database
from shared.embedded import free_port
from shared.observability import Telemetry
from tests.conftest import VIEWER, Servers, serving

CONSUMERS = ("scoring", "nurture", "metrics")
_KEEP = text(
    "INSERT INTO inbox_dead_letters (consumer_group, topic, partition, message_offset, key, value, error)"
    " VALUES (:group, 'ingest.lead-events', 0, 0, :key, 'not an event', 'undecodable envelope')"
)
_COUNT = text("SELECT count(*) FROM inbox_dead_letters")
_FORGET = text("DELETE FROM inbox_dead_letters WHERE key = :key")


@pytest.fixture
async def stack(servers: Servers) -> AsyncIterator[dict[str, str]]:
    """Scoring and nurture serving on localhost; their URLs."""
    async with AsyncExitStack() as running:
        scoring = await running.enter_async_context(serving(scoring_app(servers.settings(ScoringSettings))))
        nurture = await running.enter_async_context(serving(nurture_app(servers.settings(NurtureSettings))))
        yield {"scoring": scoring, "nurture": nurture}


@pytest.fixture
async def schemas(servers: Servers) -> AsyncIterator[dict[str, Database]]:
    databases = {service: Database(servers.database_url, service) for service in CONSUMERS}
    yield databases
    for db in databases.values():
        await db.dispose()


async def keep_dead_letters(db: Database, group: str, count: int, key: bytes) -> None:
    async with db.transaction() as session:
        for _ in range(count):
            await session.execute(_KEEP, {"group": group, "key": key})


async def counts(schemas: dict[str, Database]) -> dict[str, int]:
    found = {}
    for service, db in schemas.items():
        async with db.transaction() as session:
            found[service] = int((await session.execute(_COUNT)).scalar_one())
    return found


async def test_health_counts_each_consumers_inbox_dead_letters_and_says_where_to_read_them(
    servers: Servers, stack: dict[str, str], schemas: dict[str, Database]
) -> None:
    key = f"health-{uuid.uuid4()}".encode()  # this test's rows
    try:
        await keep_dead_letters(schemas["scoring"], "scoring", 2, key)
        await keep_dead_letters(schemas["metrics"], "metrics", 1, key)
        settings = servers.settings(
            MetricsSettings,
            ingest_url=f"http://127.0.0.1:{free_port()}",  # ingest has no consumer: not asked
            scoring_url=stack["scoring"],
            nurture_url=stack["nurture"],
            health_cache_seconds=0,
        )
        telemetry = Telemetry("metrics")
        expected = await counts(schemas)
        report = await PipelineHealth(schemas["metrics"], settings, telemetry).check()
        async with httpx.AsyncClient(base_url=stack["scoring"], headers=VIEWER) as scoring:
            asked = await scoring.get("/v1/inbox")
    finally:
        for db in schemas.values():
            async with db.transaction() as session:
                await session.execute(_FORGET, {"key": key})

    assert expected["scoring"] >= 2 and expected["metrics"] >= 1
    assert report["inbox_dead_letters"] == expected
    for service, count in expected.items():
        line = (
            f"{service}: {count} events its consumer could not apply, missing from its data until"
            " replayed (GET /v1/inbox/dead-letters)"
        )
        assert (line in report["problems"]) == (count > 0), (line, report["problems"])
        gauge = telemetry.registry.get_sample_value(
            "leadflow_pipeline_inbox_dead_letters", {"service": service}
        )
        assert gauge == count, service
    assert [p for p in report["problems"] if p.startswith("ingest:")] == [
        f"ingest: no answer from {settings.ingest_url}"
    ], "its outbox unanswered: one line, and no inbox asked of it"
    assert asked.status_code == 200 and asked.json() == {"dead_letters": expected["scoring"]}, asked.text
