"""Metrics' /v1/health asks every other service for its figures over HTTP, so it runs under a
database role that can read only metrics' own schema: here it does, with ingest and nurture
serving on localhost, ingest holding a dead letter, and scoring not running at all. The
report is reused for a few seconds and callers at the same time share one."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.broker_figures import GROUPS
from services.metrics.config import MetricsSettings
from services.metrics.health import PipelineHealth
from services.nurture.app import create_app as nurture_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.models import Rep
from shared import topics
from shared.db import Database
from shared.embedded import free_port
from shared.events import utcnow
from shared.observability import Telemetry
from shared.outbox import stage
from shared.sealing import SecretBox
from tests.conftest import Servers, eventually, serving
from tests.helpers import lead_classified

TOO_LARGE = b"x" * (2 * 1024 * 1024)


@pytest.fixture
async def metrics_only(servers: Servers) -> AsyncIterator[str]:
    """A database URL for a role that may read metrics' schema and nothing else."""
    role = f"metrics_only_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        password = uuid.uuid4().hex  # over TCP the embedded PostgreSQL asks for one
        await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        await admin.execute(f'GRANT USAGE ON SCHEMA metrics TO "{role}"')
        await admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA metrics TO "{role}"')
        yield (
            make_url(servers.database_url)
            .set(username=role, password=password)
            .render_as_string(hide_password=False)
        )
    finally:
        await admin.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA metrics FROM "{role}"')
        await admin.execute(f'REVOKE ALL ON SCHEMA metrics FROM "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_health_asks_each_service_and_reads_only_its_own_schema(
    servers: Servers, metrics_only: str
) -> None:
    ingest = ingest_app(servers.settings(IngestSettings))
    nurture = nurture_app(servers.settings(NurtureSettings))
    async with serving(ingest) as ingest_url, serving(nurture) as nurture_url:
        async with ingest.state.runtime.db.transaction() as session:
            stage(session, "ingest.lead-events", b"poison", TOO_LARGE)
        settings = servers.settings(
            MetricsSettings,
            database_url=metrics_only,
            ingest_url=ingest_url,
            scoring_url=f"http://127.0.0.1:{free_port()}",  # scoring is not running
            nurture_url=nurture_url,
            health_cache_seconds=60,
        )
        db = Database(metrics_only, "metrics")
        try:

            async def set_aside() -> dict[str, Any]:
                report = await PipelineHealth(db, settings, Telemetry("metrics")).check()
                return report if report["outbox_dead_letters"]["ingest"] == 1 else {}

            report = await eventually(set_aside, timeout=30)
            health = PipelineHealth(db, settings, Telemetry("metrics"))
            first, second = await asyncio.gather(health.check(), health.check())
            third = await health.check()
        finally:
            await db.dispose()
            async with ingest.state.runtime.db.transaction() as session:
                await session.execute(text("DELETE FROM outbox_dead_letters"))
    assert any("ingest: 1 events the broker refused" in p for p in report["problems"]), report["problems"]
    assert report["outbox_backlog"]["scoring"] is None
    assert [p for p in report["problems"] if p.startswith("scoring:")] == [
        f"scoring: no answer from {settings.scoring_url}"
    ], "one line: its inbox, unanswered too, says no more"
    assert report["inbox_dead_letters"]["scoring"] is None
    assert report["inbox_dead_letters"]["nurture"] is not None, "asked of nurture"
    assert report["outbox_backlog"]["metrics"] is not None, "its own, from its own schema"
    assert isinstance(report["webhooks_last_hour"]["attempts"], int), "asked of nurture"
    assert first is second is third, "callers at the same time share one report, reused while fresh"


async def test_a_topic_the_broker_lacks_is_a_problem_line_and_the_rest_is_still_reported(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for a topic it lacks, a client waits for it (the broker no longer makes it on
    request); health asks only for the topics the broker has and names the others."""
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(GROUPS, ghost, [topics.LEAD_EVENTS])  # its dead-letter topic does not exist
    settings = servers.settings(MetricsSettings, health_cache_seconds=0)
    db = Database(servers.database_url, "metrics")
    try:
        report = await PipelineHealth(db, settings, Telemetry("metrics")).check()
    finally:
        await db.dispose()
    assert f"broker: topic {topics.dlq(ghost)} missing" in report["problems"], report["problems"]
    assert not any(p.startswith("broker: TimeoutError") for p in report["problems"]), report["problems"]
    assert set(report["consumer_lag"]) == {"scoring", "nurture", "metrics", ghost}
    assert report["dlq"][ghost] == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("database", ["refusing", "silent"])
async def test_its_own_database_down_is_a_problem_line_and_the_broker_is_still_reported(
    servers: Servers, database: str
) -> None:
    """With metrics' PostgreSQL down, /v1/health answered a bare 503 ("Retry shortly."): the
    operator asking what is wrong got no reason, and not the broker's figures either. A server
    that accepts and never answers (a hung host) is waited for a few seconds, not a minute."""
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1] if database == "silent" else free_port()
    down = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/leadflow"
    settings = servers.settings(MetricsSettings, database_url=down, health_cache_seconds=0)
    db = Database(down, "metrics")
    telemetry = Telemetry("metrics")
    try:
        report = await PipelineHealth(db, settings, telemetry).check()
    finally:
        await db.dispose()
        silent.close()
    problems = telemetry.registry.get_sample_value("leadflow_pipeline_problems")
    assert problems == len(report["problems"]) >= 1, (
        "Prometheus sees it too: the other gauges keep old values"
    )
    reason = "ConnectionRefusedError" if database == "refusing" else "TimeoutError"
    assert f"metrics: database: {reason}" in report["problems"], report["problems"]
    assert report["outbox_backlog"]["metrics"] is None
    assert report["capture_to_webhook_seconds"] == {"p50": None, "p99": None}
    assert set(report["consumer_lag"]) == set(GROUPS), "the broker's figures are still reported"


@pytest.mark.timeout(60)
async def test_a_database_that_stops_answering_after_the_outbox_was_read_is_a_problem_line(
    servers: Servers,
) -> None:
    """The outbox answered, then the read of the last day's latency did not (here lead_facts is
    held by another transaction; a dropped connection alike): a problem line after a few
    seconds, and the gauge counts it (the report failed, and the gauges kept their old values)."""
    settings = servers.settings(MetricsSettings, health_cache_seconds=0)
    db = Database(servers.database_url, "metrics")
    holder = Database(servers.database_url, "metrics")
    telemetry = Telemetry("metrics")
    try:
        async with holder.transaction() as session:
            await session.execute(text("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE"))
            report = await PipelineHealth(db, settings, telemetry).check()
    finally:
        await db.dispose()
        await holder.dispose()
    assert "metrics: database: TimeoutError" in report["problems"], report["problems"]
    assert report["outbox_backlog"]["metrics"] is not None, "its outbox was read"
    assert report["capture_to_webhook_seconds"] == {"p50": None, "p99": None}
    assert telemetry.registry.get_sample_value("leadflow_pipeline_problems") == len(report["problems"])


async def test_a_service_that_answers_503_is_not_said_to_give_no_answer(servers: Servers) -> None:
    """Ingest with its database down answers 503; health said "no answer", as of one not running."""
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/leadflow"
    ingest = ingest_app(servers.settings(IngestSettings, database_url=unreachable))
    async with serving(ingest) as ingest_url:
        nowhere = f"http://127.0.0.1:{free_port()}"  # scoring and nurture are not running
        settings = servers.settings(
            MetricsSettings,
            ingest_url=ingest_url,
            scoring_url=nowhere,
            nurture_url=nowhere,
            health_cache_seconds=0,
        )
        db = Database(servers.database_url, "metrics")
        try:
            report = await PipelineHealth(db, settings, Telemetry("metrics")).check()
        finally:
            await db.dispose()
    assert f"ingest: GET {ingest_url}/v1/outbox answered 503" in report["problems"], report["problems"]
    assert report["outbox_backlog"]["ingest"] is None


async def test_hot_leads_nobody_was_told_of_are_a_problem_line(servers: Servers) -> None:
    """A hot lead no active rep matches, with no active manager to tell either, reached nobody:
    nurture counts those of the last day and health says so, for an operator to add a rep or a
    manager (`leadflow_pipeline_problems` counts the line)."""
    nurture = nurture_app(servers.settings(NurtureSettings, touches_enabled=False))
    async with serving(nurture) as nurture_url:
        nurture_db = nurture.state.runtime.db
        async with nurture_db.transaction() as session:
            await session.execute(text("UPDATE reps SET active = false"))  # managers too
            await assign_leads(session, [lead_classified("hot")], nurture.state.settings, utcnow())
        nowhere = f"http://127.0.0.1:{free_port()}"  # ingest and scoring are not running
        settings = servers.settings(
            MetricsSettings, ingest_url=nowhere, scoring_url=nowhere, nurture_url=nurture_url
        )
        db = Database(servers.database_url, "metrics")
        try:
            report = await PipelineHealth(db, settings, Telemetry("metrics")).check()
        finally:
            await db.dispose()
    told_nobody = re.compile(
        r"nurture: [1-9][0-9]* hot or SQL leads in the last day reached nobody: no active rep matches"
        r" them and no manager is active \(add a rep who covers them, or a manager\)"
    )
    assert any(told_nobody.fullmatch(p) for p in report["problems"]), report["problems"]


async def test_signing_secrets_nurtures_key_does_not_open_are_a_problem_line_naming_the_cause(
    servers: Servers,
) -> None:
    """Restored without its key, nurture dead-lettered every hot lead and health said only
    "nurture: 1 events its consumer could not apply": it now names the cause."""
    nurture = nurture_app(servers.settings(NurtureSettings, touches_enabled=False, secret_key="w" * 32))
    async with serving(nurture) as nurture_url:
        async with nurture.state.runtime.db.transaction() as session:
            sealed = SecretBox("k" * 32).seal("whsec_sealed_by_a_key_not_given")
            session.add(Rep(name="Aigerim", webhook_url="https://crm.example.kz/hook", webhook_secret=sealed))
        nowhere = f"http://127.0.0.1:{free_port()}"  # ingest and scoring are not running
        settings = servers.settings(
            MetricsSettings, ingest_url=nowhere, scoring_url=nowhere, nurture_url=nurture_url
        )
        db = Database(servers.database_url, "metrics")
        try:
            report = await PipelineHealth(db, settings, Telemetry("metrics")).check()
        finally:
            await db.dispose()
    unopened = re.compile(
        r"nurture: stored secrets do not open with this LEADFLOW_SECRET_KEY: [1-9][0-9]* reps' and"
        r" subscriptions' signing secrets, so hot leads to them go to the dead letters \(give nurture"
        r" the key that sealed them: \.leadflow/secret\.key under `make run`, else LEADFLOW_SECRET_KEY;"
        r" or rotate their secrets\)"
    )
    assert any(unopened.fullmatch(p) for p in report["problems"]), report["problems"]
