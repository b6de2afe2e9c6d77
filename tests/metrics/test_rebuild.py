"""POST /v1/rebuild: the read model dropped and replayed from metrics' own archive gives the
same numbers, even on a broker that has forgotten every event (a restarted in-memory broker)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from itertools import groupby
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from services.metrics.handlers import event_handlers
from services.metrics.rebuilding import reset_read_model
from shared import topics
from shared.archive import Archived, ArchiveReplay
from shared.consumer import ConsumerRunner
from shared.db import Database
from shared.embedded import EmbeddedBroker, free_port
from shared.events import LEAD_ERASED, OUTCOME_RECORDED, Envelope
from shared.inbox import archive_new_events
from shared.kafka import Publisher, create_topics
from shared.observability import Telemetry
from shared.tombstones import bury
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.metrics import journeys


@pytest.fixture
async def empty_broker(tmp_path: Path) -> AsyncIterator[str]:
    """A broker that holds none of the events: what an in-memory broker is after a restart."""
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    broker.start()
    try:
        await create_topics(broker.bootstrap, topics.DOMAIN_TOPICS, topics.PARTITIONS)
        yield broker.bootstrap
    finally:
        broker.stop()


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    return {
        name: (await client.get(path, params=params)).json()
        for name, (path, params) in journeys.VIEWS.items()
    }


async def test_a_rebuild_on_a_broker_that_forgot_everything_gives_identical_numbers(
    servers: Servers, empty_broker: str
) -> None:
    async with running(create_app(servers.settings(MetricsSettings))) as metrics:
        db = metrics._transport.app.state.runtime.db  # type: ignore[attr-defined]
        async with db.transaction() as session:  # this test's events only
            await session.execute(text("TRUNCATE lead_facts, event_archive, spend"))
        for spend in journeys.SPEND:
            assert (await metrics.post("/v1/spend", json=spend, headers=ADMIN)).status_code == 201
        events = journeys.month_of_leads()
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish(
                [(journeys.topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events]
            )
        finally:
            await publisher.stop()

        async def settled() -> bool:
            funnel = (await snapshot(metrics))["funnel"]
            return bool(funnel["total"] == journeys.LEADS and funnel["stages"][-1]["count"] == 4)

        await eventually(settled, timeout=30)
        await caught_up(metrics._transport.app)  # type: ignore[attr-defined]
        before = await snapshot(metrics)
        # The webhooks' deliveries are in it: REP_B's hand-off that never arrived is not counted.
        speed = before["speed by rep"]["rows"]
        assert {r["group"]: r["to_first_webhook_seconds"]["count"] for r in speed}[str(journeys.REP_B)] == 1

    # Restarted against a broker with none of those events, and with a damaged read model:
    # only a rebuild from metrics' own archive can give the same numbers back.
    async with running(
        create_app(servers.settings(MetricsSettings, kafka_bootstrap=empty_broker))
    ) as metrics:
        db = metrics._transport.app.state.runtime.db  # type: ignore[attr-defined]
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE lead_facts SET stage = 'lost', customer_at = NULL, revenue = 0")
            )
        assert await snapshot(metrics) != before
        started = await metrics.post("/v1/rebuild", headers=ADMIN)
        assert started.status_code == 202
        assert started.json() == {"status": "replaying", "events": len(events)}

        async def finished() -> bool:
            progress = (await metrics.get("/v1/rebuild", headers=ADMIN)).json()
            return bool(progress["status"] == "idle")

        await eventually(finished, timeout=90, interval=0.2)
        assert await snapshot(metrics) == before


async def test_a_rebuild_cut_short_by_a_restart_resumes_where_it_was(servers: Servers) -> None:
    db = Database(servers.database_url, "metrics")
    handlers = event_handlers()

    async def fold(session: AsyncSession, events: list[Envelope]) -> None:
        for handler, run in groupby(events, key=lambda e: handlers[e.type]):
            await handler(session, list(run))

    try:
        events = journeys.month_of_leads()
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            archived = [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in events]
            await archive_new_events(session, archived)
        first = ArchiveReplay(db, fold, no_event_fails, chunk=7)
        async with db.transaction() as session:
            await fold(session, events)
        expected = await facts(db)

        async with db.transaction() as session:
            assert await first.start(session, truncate) == len(events)
        assert await first.step() == 7  # ... and the process stops here

        resumed = ArchiveReplay(db, fold, no_event_fails, chunk=7)  # the next process finds the cursor
        assert (await resumed.progress()).done == 7
        while await resumed.step():
            pass
        assert not (await resumed.progress()).replaying
        assert await facts(db) == expected
    finally:
        await db.dispose()


async def test_a_lead_erased_after_its_chunk_was_read_ahead_stays_out_of_the_rebuild(
    servers: Servers,
) -> None:
    """The replay reads the next chunk while it writes one: a lead erased in between (the live
    consumer runs between two chunks) is in what was read, but not in what is written."""
    db = Database(servers.database_url, "metrics")
    runner = ConsumerRunner(
        group="metrics-test-replay",
        topics=[],
        handlers=event_handlers(),
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        archive=True,
    )
    replay = runner.archive
    assert replay is not None
    replay.chunk = 7
    try:
        events = journeys.month_of_leads()
        written = 7 * (len(events) // 14)  # half the chunks are written before the erasure
        erased = events[written].lead_id  # the first event of the chunk read ahead meanwhile
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            archived = [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in events]
            await archive_new_events(session, archived)
            await replay.start(session, truncate)
        for _ in range(written // 7):
            assert await replay.step() == 7
        erasure = Envelope(
            type=LEAD_ERASED, lead_id=erased, correlation_id=erased, producer="ingest", data={}
        )
        async with db.transaction() as session:  # as the live consumer applies an erasure
            await bury(session, {erased})
            await event_handlers()[LEAD_ERASED](session, [erasure])
        while await replay.step():
            pass
        leads = {row["lead_id"] for row in await facts(db)}
        assert erased not in leads
        assert leads == {e.lead_id for e in events} - {erased}
    finally:
        await db.dispose()


async def no_event_fails(session: AsyncSession, archived: Archived, error: str) -> None:
    raise AssertionError(f"the replay failed {archived.event.type}: {error}")


async def truncate(session: AsyncSession) -> None:
    await session.execute(text("TRUNCATE lead_facts"))


async def facts(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        rows = await session.execute(text("SELECT * FROM lead_facts ORDER BY lead_id"))
        return [dict(row._mapping) for row in rows]


async def test_a_batch_another_process_archived_as_the_rebuild_began_is_counted_once(
    servers: Servers,
) -> None:
    """Two metrics processes (replicas, or a rollout's old and new): one has archived a batch
    (a customer's events) and not yet applied it when the other resets the read model. The
    batch must end up applied once: before the reset and replayed, or after it and not
    replayed. (Without the turn, it was applied to the reset model and replayed too.)"""
    db = Database(servers.database_url, "metrics")
    handlers = event_handlers()

    async def fold(session: AsyncSession, events: list[Envelope]) -> None:
        for handler, run in groupby(events, key=lambda e: handlers[e.type]):
            await handler(session, list(run))

    def archived(events: list[Envelope]) -> list[tuple[Any, ...]]:
        return [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in events]

    events = journeys.month_of_leads()
    customer = next(e.lead_id for e in events if e.type == OUTCOME_RECORDED)
    straggler = [e for e in events if e.lead_id == customer]
    another = next(e.lead_id for e in events if e.lead_id != customer)
    first = [e for e in events if e.lead_id == another]
    rest = [e for e in events if e not in first and e not in straggler]
    try:
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            await fold(session, events)
        expected = await facts(db)
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            await archive_new_events(session, archived(first))  # archived long before
            await fold(session, first)

        stored, go_on = asyncio.Event(), asyncio.Event()

        async def other_process_batch() -> None:
            async with db.transaction() as session:
                assert await archive_new_events(session, archived(straggler))
                stored.set()
                await go_on.wait()
                await fold(session, straggler)

        batch = asyncio.create_task(other_process_batch())
        await stored.wait()
        async with db.transaction() as session:  # a later batch, applied and committed
            await archive_new_events(session, archived(rest))
            await fold(session, rest)
        replay = ArchiveReplay(db, fold, no_event_fails, chunk=7)

        async def rebuild() -> int:
            async with db.transaction() as session:
                return await replay.start(session, truncate)

        reset = asyncio.create_task(rebuild())
        await eventually(lambda: reset.done() or waiting_for_a_lock(db), timeout=10)
        go_on.set()
        await batch
        await reset
        while await replay.step():
            pass
        assert await facts(db) == expected
    finally:
        await db.dispose()


async def waiting_for_a_lock(db: Database) -> bool:
    """Whether a transaction of this test waits for an advisory lock (the rebuild's turn)."""
    async with db.transaction() as session:
        query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1282 AND NOT granted"
        return bool((await session.execute(text(query))).scalar_one())


REPORTS = {
    "/v1/funnel": {},
    "/v1/cac": {"from": "2030-01-01", "to": "2030-12-31"},
    "/v1/ltv": {},
    "/v1/speed-to-lead": {},
}


async def test_a_report_read_while_a_rebuild_is_under_way_says_its_figures_are_partial(
    servers: Servers,
) -> None:
    async with running(create_app(servers.settings(MetricsSettings))) as metrics:
        db = metrics._transport.app.state.runtime.db  # type: ignore[attr-defined]
        events = journeys.month_of_leads()
        handlers = event_handlers()

        async def fold(session: AsyncSession, events: list[Envelope]) -> None:
            for handler, run in groupby(events, key=lambda e: handlers[e.type]):
                await handler(session, list(run))

        replay = ArchiveReplay(db, fold, no_event_fails)
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            await archive_new_events(
                session, [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in events]
            )
            await replay.start(session, truncate)

        async def rebuilding() -> list[Any]:
            answers = [
                await metrics.get(path, params=params, headers=ADMIN) for path, params in REPORTS.items()
            ]
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return [a.json()["rebuilding"] for a in answers]

        async with db.transaction() as session:  # the replay's cursor held: a chunk being written
            await session.execute(text("SELECT FROM archive_replay FOR UPDATE"))
            assert await rebuilding() == [{"done": 0, "events": len(events)}] * len(REPORTS)
        while await replay.step():
            pass
        assert await rebuilding() == [None] * len(REPORTS)


async def test_rebuilds_asked_for_at_once_are_one_rebuild_and_each_asker_is_answered(
    servers: Servers,
) -> None:
    async with running(create_app(servers.settings(MetricsSettings))) as metrics:
        (runner,) = metrics._transport.app.state.runtime.consumers  # type: ignore[attr-defined]
        # Two admins (or a double click) ask before the consumer turns to the first request.
        first = runner.request_replay(reset_read_model)
        second = runner.request_replay(reset_read_model)
        answers = await asyncio.wait_for(asyncio.gather(first, second), timeout=30)
        assert answers[0] == answers[1]

        async def idle() -> bool:
            return bool((await metrics.get("/v1/rebuild", headers=ADMIN)).json()["status"] == "idle")

        await eventually(idle, timeout=30)
        started = await asyncio.wait_for(metrics.post("/v1/rebuild", headers=ADMIN), timeout=30)
        assert started.status_code == 202


async def test_an_event_a_deadlock_failed_during_a_rebuild_is_applied_again_not_skipped(
    servers: Servers,
) -> None:
    """A rebuild beside a live metrics replica (a rollout) meets its transactions: an event that
    met a deadlock in its chunk and again alone was skipped for good, its lead missing from every
    figure after the rebuild (found by a review). A deadlock, as any outage, fails the chunk,
    which is applied again."""
    db = Database(servers.database_url, "metrics")
    handlers = event_handlers()
    events = journeys.month_of_leads()
    victim, deadlocks = events[3].id, [2]  # the chunk's try, then the event's own

    async def fold(session: AsyncSession, batch: list[Envelope]) -> None:
        if deadlocks[0] and any(e.id == victim for e in batch):
            deadlocks[0] -= 1
            await session.execute(text(DEADLOCK))
        for handler, run in groupby(batch, key=lambda e: handlers[e.type]):
            await handler(session, list(run))

    try:
        async with db.transaction() as session:
            await session.execute(text("TRUNCATE lead_facts, event_archive"))
            archived = [(e.id, e.lead_id, journeys.topic_of(e), e.to_bytes()) for e in events]
            await archive_new_events(session, archived)
        async with db.transaction() as session:
            for handler, run in groupby(events, key=lambda e: handlers[e.type]):
                await handler(session, list(run))
        expected = await facts(db)
        replay = ArchiveReplay(db, fold, no_event_fails, chunk=7)
        async with db.transaction() as session:
            await replay.start(session, truncate)

        async def replayed() -> bool:
            with contextlib.suppress(DBAPIError):
                await replay.step()
            return not (await replay.progress()).replaying

        await eventually(replayed, timeout=30)
        assert deadlocks == [0]
        assert await facts(db) == expected
    finally:
        await db.dispose()


DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"
