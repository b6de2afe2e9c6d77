"""A rescore cut short (a crash, a restart) goes on where it stopped: every lead decided again
once, whichever process resumes it, and two resuming at once share the work."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update

from services.scoring import passes
from services.scoring.handlers import apply_events
from services.scoring.rulebook import RuleBook
from services.scoring.rules import default_rules_text
from services.scoring.seed import seed
from services.scoring.standings import SCORES
from shared.db import Database
from tests.conftest import Servers, eventually
from tests.helpers import lead_captured
from tests.scoring.factories import activity
from tests.scoring.test_seed import UNTIL, some_leads


async def _run(db: Database, run_id: UUID) -> Any:
    async with db.transaction() as session:
        return (await session.execute(select(passes.RUNS).where(passes.RUNS.c.id == run_id))).one()


async def test_a_rescore_cut_short_resumes_where_it_stopped_each_lead_decided_once(servers: Servers) -> None:
    leads = some_leads(1200)
    await seed(servers.database_url.replace("+asyncpg", ""), leads, UNTIL)
    db, book = Database(servers.database_url, "scoring"), RuleBook(None)
    try:
        started_at = datetime.now(UTC)
        run = await passes.start_rescore(db, book)
        first = asyncio.create_task(passes.rescore(db, book, run.id, chunk=100))

        async def some_done() -> bool:
            return bool((await _run(db, run.id)).done >= 300)

        await eventually(some_done, timeout=60)
        first.cancel()  # the process dies mid-run: its open chunk rolls back
        with contextlib.suppress(asyncio.CancelledError):
            await first
        cut = await _run(db, run.id)
        assert cut.status == "running" and 300 <= cut.done < cut.total and cut.resume_after is not None

        # Two processes start and both resume it: they share the chunks, none is done twice.
        await asyncio.gather(passes.resume_rescores(db, book), passes.resume_rescores(db, book))
        finished = await _run(db, run.id)
        async with db.transaction() as session:
            rows = (await session.execute(select(func.count()).select_from(SCORES))).scalar_one()
            decided = select(SCORES.c.lead_id).where(SCORES.c.updated_at >= started_at)
            again = set((await session.execute(decided)).scalars())
    finally:
        await db.dispose()
    assert finished.status == "done" and finished.done == finished.total == rows
    assert {lead.lead_id for lead in leads} <= again


async def test_a_review_pass_goes_through_every_due_lead_a_chunk_at_a_time(servers: Servers) -> None:
    leads = some_leads(450)
    await seed(servers.database_url.replace("+asyncpg", ""), leads, UNTIL)
    db, book = Database(servers.database_url, "scoring"), RuleBook(None)
    later = UNTIL + timedelta(days=1)
    try:
        async with db.transaction() as session:
            ids = [lead.lead_id for lead in leads]
            await session.execute(update(SCORES).where(SCORES.c.lead_id.in_(ids)).values(review_at=UNTIL))
        due = select(func.count()).select_from(SCORES).where(SCORES.c.review_at <= later)
        async with db.transaction() as session:
            assert (await session.execute(due)).scalar_one() >= len(leads)
        await passes.review_due(db, book, later, chunk=100)
        async with db.transaction() as session:
            left = (await session.execute(due)).scalar_one()
    finally:
        await db.dispose()
    assert left == 0


async def test_a_lead_the_rescore_moved_to_new_rules_is_not_decided_again_under_the_old_ones(
    servers: Servers,
) -> None:
    """Replica B read the rules just before A published new ones and rescored every lead; B's
    next event about a lead comes within the second B keeps the rules it read."""
    db = Database(servers.database_url, "scoring")
    replica_a, replica_b = RuleBook(None), RuleBook(None, clock=lambda: 0.0)  # B's second never ends
    lead = lead_captured(job_title="CEO", is_decision_maker=True)
    try:
        async with db.transaction() as session:
            await apply_events(session, [lead], replica_b)
            old = (await replica_b.active(session)).version
            weightier = default_rules_text().replace("decision_maker: 15", "decision_maker: 40")
            new = await replica_a.publish(session, weightier, "test")
        replica_a.forget()  # as the rules route does once the new version is committed
        run = await passes.start_rescore(db, replica_a)
        await passes.rescore(db, replica_a, run.id)
        assert await rules_version_of(db, lead.lead_id) == new
        page_view = activity("page_view").model_copy(update={"lead_id": lead.lead_id})
        async with db.transaction() as session:
            await apply_events(session, [page_view], replica_b)
        assert await rules_version_of(db, lead.lead_id) == new != old
    finally:
        await db.dispose()


async def rules_version_of(db: Database, lead_id: UUID) -> int:
    async with db.transaction() as session:
        found = select(SCORES.c.rules_version).where(SCORES.c.lead_id == lead_id)
        return int((await session.execute(found)).scalar_one())
