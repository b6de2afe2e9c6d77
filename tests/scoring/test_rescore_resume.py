"""A rescore cut short (a crash, a restart) goes on where it stopped: every lead decided again
once, whichever process resumes it, and two resuming at once share the work."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update

from services.scoring import passes
from services.scoring.rulebook import RuleBook
from services.scoring.seed import seed
from services.scoring.standings import SCORES
from shared.db import Database
from tests.conftest import Servers, eventually
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
