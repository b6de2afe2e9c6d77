"""Work over many leads: the decay pass (time alone changes scores), rescoring every lead
under the active rules, and simulating candidate rules without changing anything."""

import asyncio
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring import standings
from services.scoring.classification_batches import Batch
from services.scoring.classify import decide
from services.scoring.models import RescoreRun
from services.scoring.rulebook import RuleBook
from services.scoring.rules import Rules
from services.scoring.standings import SCORES
from shared.db import Database, driver_connection
from shared.faults import raise_hidden_stop
from shared.tombstones import hold

log = logging.getLogger(__name__)
CHUNK = 500
RUNS = RescoreRun.__table__  # type: ignore[attr-defined]


async def review_due(db: Database, book: RuleBook, now: datetime, chunk: int = CHUNK) -> int:
    """Re-decide the leads whose review time has come by `now` (a hot lead cooling,
    engagement decaying); returns how many changed. Replicas share the work: rows another
    one holds are skipped (a chunk cut short by them ends the pass)."""
    changed = 0
    while True:
        async with db.transaction() as session:
            due = select(SCORES.c.lead_id).where(SCORES.c.review_at <= now)
            lead_ids = set((await session.execute(due.order_by(SCORES.c.review_at).limit(chunk))).scalars())
            decided, changes = await _decide_again(session, book, lead_ids, "decay", now, skip_locked=True)
            changed += changes
        if decided < chunk:
            return changed


async def _decide_again(
    session: AsyncSession,
    book: RuleBook,
    lead_ids: set[UUID],
    cause: str,
    now: datetime,
    *,
    skip_locked: bool = False,
) -> tuple[int, int]:
    """Decide the leads again; returns how many were decided, and how many of them changed.
    Their slots first, before their rows: an erasure under way commits before
    (`shared.tombstones`), and its leads are then gone."""
    if not lead_ids:
        return 0, 0
    await hold(await driver_connection(session), lead_ids)
    loaded = await standings.load(session, lead_ids, skip_locked=skip_locked)
    batch = Batch(await book.active(session, at_least=standings.newest_rules(loaded)))
    for standing in loaded.values():
        batch.apply(session, standing, now, cause)
    batch.save(session)
    return len(loaded), batch.changed


async def start_rescore(db: Database, book: RuleBook) -> RescoreRun:
    async with db.transaction() as session:
        active = await book.active(session)
        total = (await session.execute(select(func.count()).select_from(SCORES))).scalar_one()
        run = RescoreRun(id=uuid4(), status="running", rules_version=active.version, total=total)
        session.add(run)
    return run


async def rescore(db: Database, book: RuleBook, run_id: UUID, chunk: int = CHUNK) -> None:
    """Apply the active rules to every lead, a chunk per transaction, progress on the run.
    Each chunk's transaction also moves the run's place on (`resume_after`), under a lock on
    the run: a run cut short (a crash, a restart) goes on from there with `resume_rescores`,
    no lead decided twice, and two processes resuming one run share its chunks. Never raises."""
    try:
        while await _rescore_chunk(db, book, run_id, chunk):
            pass
    except Exception as error:
        raise_hidden_stop(error)  # a stop leaves the run running, resumed at the next start
        log.exception("rescore %s failed", run_id)
        async with db.transaction() as session:
            values = {"status": "failed", "error": type(error).__name__, "finished_at": func.now()}
            await session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))


async def _rescore_chunk(db: Database, book: RuleBook, run_id: UUID, chunk: int) -> bool:
    """Decide the next chunk of the run again; False once the run is over."""
    async with db.transaction() as session:
        place = select(RUNS.c.status, RUNS.c.resume_after).where(RUNS.c.id == run_id).with_for_update()
        run = (await session.execute(place)).one_or_none()
        if run is None or run.status != "running":
            return False  # finished by another process meanwhile
        page = select(SCORES.c.lead_id).order_by(SCORES.c.lead_id).limit(chunk)
        if run.resume_after is not None:
            page = page.where(SCORES.c.lead_id > run.resume_after)
        lead_ids = list((await session.execute(page)).scalars())
        progress: dict[str, Any] = {"done": RUNS.c.done + len(lead_ids)}
        if lead_ids:
            _, changed = await _decide_again(session, book, set(lead_ids), "rescore", datetime.now(UTC))
            progress |= {"changed": RUNS.c.changed + changed, "resume_after": lead_ids[-1]}
        if len(lead_ids) < chunk:
            progress |= {"status": "done", "finished_at": func.now()}
        await session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**progress))
    return len(lead_ids) == chunk


async def resume_rescores(db: Database, book: RuleBook, retry_seconds: float = 5.0) -> None:
    """At start: go on with the rescore runs a crash or a restart cut short, oldest first."""
    while True:
        try:
            async with db.transaction() as session:
                running = select(RUNS.c.id).where(RUNS.c.status == "running").order_by(RUNS.c.started_at)
                run_ids = list((await session.execute(running)).scalars())
            break
        except Exception as error:
            raise_hidden_stop(error)
            log.warning("looking for rescores to resume failed, next try in %.0fs: %r", retry_seconds, error)
            await asyncio.sleep(retry_seconds)  # the database is not there yet: a retry, not synchronisation
    for run_id in run_ids:
        log.info("resuming rescore %s", run_id)
        await rescore(db, book, run_id)


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
            _compare(result, standings.from_row(row._mapping), active, candidate, now, examples)
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
