"""A rebuild after a bug dead-lettered an event: metrics' archive holds the event too, so the
rebuild applies it, and its dead letter goes with the reset (replayed as well, the event counted
twice); one the rebuild fails again is kept as a dead letter again, to be replayed once fixed.
Metrics as it runs, with a bug a flag turns on in its handler of outcomes."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.inbox import ARCHIVE_TURN
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured

WON_AT = datetime(2031, 3, 4, 10, 30, tzinfo=UTC)


class Metrics:
    """Metrics running, its handler of outcomes failing for the leads in `bugs`."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, publisher: Publisher) -> None:
        self.app, self.client, self.publisher = app, client, publisher
        self.bugs: dict[uuid.UUID, str] = {}
        (runner,) = app.state.runtime.consumers
        handle = runner.handlers[OUTCOME_RECORDED]

        async def handle_with_a_bug(session: AsyncSession, events: list[Envelope]) -> None:
            for event in events:
                if (bug := self.bugs.get(event.lead_id)) is not None:
                    raise ValueError(bug)
            await handle(session, events)

        runner.handlers[OUTCOME_RECORDED] = handle_with_a_bug

    async def letters(self) -> list[dict[str, Any]]:
        answer = await self.client.get("/v1/inbox/dead-letters?limit=1000", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    async def revenue(self, lead: uuid.UUID) -> Decimal | None:
        async with self.app.state.runtime.db.transaction() as session:
            query = text("SELECT revenue FROM lead_facts WHERE lead_id = :id")
            revenue: Decimal | None = (await session.execute(query, {"id": lead})).scalar_one_or_none()
            return revenue

    async def archived(self, event_id: uuid.UUID) -> int:
        async with self.app.state.runtime.db.transaction() as session:
            query = text("SELECT count(*) FROM event_archive WHERE event_id = :id")
            return int((await session.execute(query, {"id": event_id})).scalar_one())


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[Metrics]:
    app = create_app(servers.settings(MetricsSettings, consumer_max_attempts=1))
    publisher = Publisher(servers.bootstrap, "test")
    try:
        async with running(app) as client:
            yield Metrics(app, client, publisher)
    finally:
        await publisher.stop()


async def a_dead_lettered_win(metrics: Metrics, lead: uuid.UUID, bug: str) -> dict[str, Any]:
    """A lead captured, and its win of 700 that `bug` fails: dead-lettered. The win's row."""
    metrics.bugs[lead] = bug
    captured = lead_captured(lead, captured_at=WON_AT.replace(day=1))
    won = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=WON_AT, amount=700.0)
    win = Envelope.of(OUTCOME_RECORDED, lead, captured.correlation_id, "ingest", won)
    await metrics.publisher.publish(
        [(topics.LEAD_EVENTS, str(lead).encode(), e.to_bytes()) for e in (captured, win)]
    )

    async def its_row() -> dict[str, Any] | None:
        return next((i for i in await metrics.letters() if i["event_id"] == str(win.id)), None)

    row: dict[str, Any] = await eventually(its_row, timeout=30)
    assert await metrics.archived(win.id) == 1, "the archive keeps a dead-lettered event too"
    return row


async def rebuilt(metrics: Metrics) -> None:
    started = await metrics.client.post("/v1/rebuild", headers=ADMIN)
    assert started.status_code == 202, started.text

    async def idle() -> bool:
        progress = (await metrics.client.get("/v1/rebuild", headers=ADMIN)).json()
        return bool(progress["status"] == "idle")

    await eventually(idle, timeout=90, interval=0.1)


async def test_a_dead_letter_the_rebuild_applied_is_gone_so_its_event_counts_once(metrics: Metrics) -> None:
    lead = uuid.uuid4()
    row = await a_dead_lettered_win(metrics, lead, "a bug in the handler")
    assert await metrics.revenue(lead) == 0
    del metrics.bugs[lead]  # the fix is deployed
    await rebuilt(metrics)
    # An operator replaying the dead letter after the rebuild: nothing more to apply.
    replayed = await metrics.client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
    assert (replayed.status_code, await metrics.revenue(lead)) == (404, Decimal("700.00"))
    assert row["event_id"] not in [i["event_id"] for i in await metrics.letters()]


async def test_an_event_the_rebuild_fails_again_is_kept_as_a_dead_letter_and_replayed_once_fixed(
    metrics: Metrics,
) -> None:
    lead = uuid.uuid4()
    row = await a_dead_lettered_win(metrics, lead, "the first bug")
    metrics.bugs[lead] = "the fix missed a case"
    await rebuilt(metrics)
    kept = [i for i in await metrics.letters() if i["event_id"] == row["event_id"]]
    assert [(i["error"], i["topic"], i["partition"], i["offset"]) for i in kept] == [
        ("ValueError: the fix missed a case", topics.LEAD_EVENTS, -1, -1)
    ], "kept once, with the rebuild's error; read from the archive, not the broker"
    assert kept[0]["lead_id"] == str(lead) and kept[0]["bytes"] == row["bytes"]
    assert await metrics.revenue(lead) == 0

    del metrics.bugs[lead]  # the fix, complete this time
    replayed = await metrics.client.post(f"/v1/inbox/dead-letters/{kept[0]['id']}:replay", headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["outcome"] == "applied"
    assert await metrics.revenue(lead) == Decimal("700.00")
    assert row["event_id"] not in [i["event_id"] for i in await metrics.letters()]


async def test_a_replay_asked_during_a_rebuilds_reset_waits_for_it_rather_than_deadlock(
    metrics: Metrics,
) -> None:
    """The replay took its dead letter's row, then waited for the archive's turn that a reset
    held while it waited to delete that row: a deadlock, PostgreSQL cancelling one of the two
    after a second (found by a review of the change that made a reset delete such rows)."""
    lead = uuid.uuid4()
    row = await a_dead_lettered_win(metrics, lead, "a bug in the handler")
    del metrics.bugs[lead]
    db = metrics.app.state.runtime.db
    async with db.transaction() as reset:  # as a rebuild's reset: the turn alone, then the rows
        await reset.execute(text(ARCHIVE_TURN.format("")))
        replay = asyncio.create_task(
            metrics.client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
        )

        async def replay_waits_for_the_turn() -> bool:
            async with db.transaction() as session:
                waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                return bool((await session.execute(text(waiting))).scalar_one())

        await eventually(replay_waits_for_the_turn, timeout=20)
        await reset.execute(text("DELETE FROM inbox_dead_letters WHERE id = :id"), {"id": row["id"]})
    answer = await replay
    assert (answer.status_code, await metrics.revenue(lead)) == (404, 0), answer.text
