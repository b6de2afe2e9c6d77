"""A hot lead is not handed to a rep whose webhook receiver is paused (it kept failing: nothing
is sent to it for a while) when another matching rep can be reached: it waited there for the SLA
to run out before anyone had it. The passed rep's turn is spent (`routing_base` one lower), so
they come back level. With nobody else matching, they take it all the same. Escalations pass
them too. The hand-offs run at the times the tests name, as the consumers run them."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.paused_receivers import paused_origins
from services.nurture.sla import escalate_overdue
from services.nurture.subscriptions import origin_of
from shared.db import Database
from shared.events import utcnow
from tests.conftest import Servers, caught_up, eventually, running
from tests.nurture.test_sla import add, assign, settings_of
from tests.receiver import webhook_receiver

SLA = timedelta(minutes=10)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        sla_seconds=SLA.total_seconds(),
        sla_check_every_seconds=3600,  # the app's own check stays out of the tests' way
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(servers: Servers, nurture: httpx.AsyncClient) -> AsyncIterator[Database]:
    """The hand-offs' database, reading the pauses in each transaction (the app's process keeps
    them, forgotten when their bell rings: the last test waits for it); every rep of earlier
    tests retired, every earlier lead's clock stopped, no receiver paused."""
    database = Database(servers.database_url, "nurture")
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
        await session.execute(text("DELETE FROM receiver_circuits"))
    yield database
    await database.dispose()


async def pause(db: Database, rep: dict[str, Any], until: datetime) -> None:
    """The rep's receiver paused as the dispatcher pauses one that kept failing."""
    async with db.transaction() as session:
        await session.execute(
            text("INSERT INTO receiver_circuits (origin, failures, open_until) VALUES (:origin, 5, :until)"),
            {"origin": origin_of(rep["webhook_url"]), "until": until},
        )


async def holder(db: Database, lead_id: UUID) -> str:
    async with db.transaction() as session:
        query = text("SELECT rep_id FROM assignments WHERE lead_id = :id")
        return str((await session.execute(query, {"id": lead_id})).scalar_one())


async def routing_base(db: Database, rep: dict[str, Any]) -> int:
    async with db.transaction() as session:
        query = text("SELECT routing_base FROM reps WHERE id = :id")
        base: int = (await session.execute(query, {"id": UUID(rep["id"])})).scalar_one()
    return base


async def test_a_rep_whose_receiver_is_paused_is_passed_over_and_their_turn_spent(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - SLA
    with webhook_receiver() as one, webhook_receiver() as other:
        reps = {
            rep["id"]: rep for rep in [await add(nurture, one, "Aigerim"), await add(nurture, other, "Bota")]
        }
        first = await holder(db, (await assign(db, settings, start)).lead_id)
        second = await holder(db, (await assign(db, settings, start + SECOND)).lead_id)
        assert {first, second} == set(reps)  # one each; the first's turn comes next
        before = await routing_base(db, reps[first])
        await pause(db, reps[first], start + SLA)
        third = await holder(db, (await assign(db, settings, start + 2 * SECOND)).lead_id)
        spent = await routing_base(db, reps[first])
        fourth = await holder(db, (await assign(db, settings, start + SLA + SECOND)).lead_id)  # unpaused
    assert third == second, "given to the rep whose receiver is paused"
    assert spent == before - 1
    assert fourth == first, "back, level with the others: their turn"


async def test_a_paused_rep_nobody_else_matches_takes_the_lead(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - SLA
    with webhook_receiver() as one, webhook_receiver() as other:
        alone = await add(nurture, one, "Aigerim", territories=["KZ"])
        await add(nurture, other, "Bota", territories=["AZ"])
        await pause(db, alone, start + SLA)
        before = await routing_base(db, alone)
        event = await assign(db, settings, start, country="KZ")
        assert await holder(db, event.lead_id) == alone["id"]
        assert await routing_base(db, alone) == before


async def test_an_escalation_passes_over_a_rep_whose_receiver_is_paused(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as one, webhook_receiver() as two, webhook_receiver() as three:
        first = await add(nurture, one, "Aigerim")
        event = await assign(db, settings, start)
        assert await holder(db, event.lead_id) == first["id"]
        paused = await add(nurture, two, "Bota", capacity=5)  # far below: next in turn
        reachable = await add(nurture, three, "Dana")
        await pause(db, paused, start + 2 * SLA)
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1
        assert await holder(db, event.lead_id) == reachable["id"]


async def test_the_process_keeps_the_pauses_and_hears_when_one_begins_or_ends(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """The app's process keeps the paused receivers between transactions; a pause that begins or
    ends rings its bell as it commits, and the process reads them again."""
    settings = settings_of(nurture)
    kept: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    start = utcnow()

    async def paused_here() -> set[str]:
        async with kept.transaction() as session:
            return await paused_origins(session, start)

    with webhook_receiver() as one, webhook_receiver() as other:
        rep = await add(nurture, one, "Aigerim")
        await add(nurture, other, "Bota")
        assert await paused_here() == set()  # read, and kept
        await pause(db, rep, start + SLA)
        await eventually(lambda: paused_here_is(paused_here, {origin_of(rep["webhook_url"])}), timeout=10)
        lead = await assign(kept, settings, start)
        assert await holder(db, lead.lead_id) != rep["id"]
        async with db.transaction() as session:
            await session.execute(text("UPDATE receiver_circuits SET failures = 0, open_until = NULL"))
        await eventually(lambda: paused_here_is(paused_here, set()), timeout=10)


async def paused_here_is(paused_here: Any, expected: set[str]) -> bool:
    return bool(await paused_here() == expected)
