"""Work over many leads: the decay pass (time alone changes scores), rescoring every lead
under the active rules, and simulating candidate rules without changing anything."""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring import standings
from services.scoring.classify import decide
from services.scoring.models import RescoreRun
from services.scoring.rulebook import RuleBook
from services.scoring.rules import Rules
from services.scoring.standings import SCORES, Batch
from shared.db import Database

log = logging.getLogger(__name__)
CHUNK = 500
RUNS = RescoreRun.__table__  # type: ignore[attr-defined]


async def review_due(db: Database, book: RuleBook, now: datetime, chunk: int = CHUNK) -> int:
    """Re-decide the leads whose review time has come by `now` (a hot lead cooling,
    engagement decaying); returns how many changed. Replicas share the work: rows another
    one holds are skipped."""
    changed = 0
    while True:
        async with db.transaction() as session:
            due = select(SCORES.c.lead_id).where(SCORES.c.review_at <= now)
            due = due.order_by(SCORES.c.review_at).limit(chunk).with_for_update(skip_locked=True)
            lead_ids = set((await session.execute(due)).scalars())
            if lead_ids:
                batch = await _decide_again(session, book, lead_ids, "decay", now)
                changed += batch.changed
        if len(lead_ids) < chunk:
            return changed


async def _decide_again(
    session: AsyncSession, book: RuleBook, lead_ids: set[UUID], cause: str, now: datetime
) -> Batch:
    batch = Batch(await book.active(session))
    for standing in (await standings.load(session, lead_ids)).values():
        batch.apply(session, standing, now, cause)
    await batch.save(session)
    return batch


async def start_rescore(db: Database, book: RuleBook) -> RescoreRun:
    async with db.transaction() as session:
        active = await book.active(session)
        total = (await session.execute(select(func.count()).select_from(SCORES))).scalar_one()
        run = RescoreRun(id=uuid4(), status="running", rules_version=active.version, total=total)
        session.add(run)
    return run


async def rescore(db: Database, book: RuleBook, run_id: UUID, chunk: int = CHUNK) -> None:
    """Apply the active rules to every lead, a chunk per transaction, progress on the run.
    Never raises."""
    after: UUID | None = None
    try:
        while True:
            async with db.transaction() as session:
                page = select(SCORES.c.lead_id).order_by(SCORES.c.lead_id).limit(chunk)
                if after is not None:
                    page = page.where(SCORES.c.lead_id > after)
                lead_ids = list((await session.execute(page)).scalars())
                batch = None
                if lead_ids:
                    batch = await _decide_again(session, book, set(lead_ids), "rescore", datetime.now(UTC))
                progress = {"done": RUNS.c.done + len(lead_ids)}
                if batch is not None:
                    progress["changed"] = RUNS.c.changed + batch.changed
                if len(lead_ids) < chunk:
                    progress |= {"status": "done", "finished_at": func.now()}
                await session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**progress))
            if len(lead_ids) < chunk:
                return
            after = lead_ids[-1]
    except Exception as error:
        log.exception("rescore %s failed", run_id)
        async with db.transaction() as session:
            values = {"status": "failed", "error": type(error).__name__, "finished_at": func.now()}
            await session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))


@dataclass
class Simulation:
    """What candidate rules would change, compared with the active rules at the same moment."""

    leads: int = 0
    score_changes: int = 0
    temperature: Counter[str] = field(default_factory=Counter)
    stage: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def note(self, kind: str, before: str, after: str, example: dict[str, Any], keep: int) -> None:
        if before == after:
            return
        move = f"{before} → {after}"
        getattr(self, kind)[move] += 1
        if len(self.examples[f"{kind}: {move}"]) < keep:
            self.examples[f"{kind}: {move}"].append(example)


async def simulate(db: Database, book: RuleBook, candidate: Rules, examples: int = 5) -> Simulation:
    """Decide every stored lead under the active and the candidate rules; count the moves.
    Reads only: nothing is stored or published."""
    result = Simulation()
    now = datetime.now(UTC)
    after: UUID | None = None
    while True:
        async with db.transaction() as session:
            active = (await book.active(session)).value
            page = select(*standings.COLUMNS).order_by(SCORES.c.lead_id).limit(CHUNK)
            if after is not None:
                page = page.where(SCORES.c.lead_id > after)
            rows = list(await session.execute(page))
        for row in rows:
            _compare(result, standings.from_row(row), active, candidate, now, examples)
        if len(rows) < CHUNK:
            return result
        after = rows[-1].lead_id


def _compare(
    result: Simulation,
    standing: standings.Standing,
    active: Rules,
    candidate: Rules,
    now: datetime,
    keep: int,
) -> None:
    current = decide(standing.stage, standing.stage_since, standing.profile, active, now)
    proposed = decide(standing.stage, standing.stage_since, standing.profile, candidate, now)
    result.leads += 1
    before, after = current.evaluation, proposed.evaluation
    if before.score != after.score:
        result.score_changes += 1
    example = {"lead_id": str(standing.lead_id), "score": before.score, "new_score": after.score}
    result.note("temperature", before.temperature, after.temperature, example, keep)
    result.note("stage", current.stage, proposed.stage, example, keep)
