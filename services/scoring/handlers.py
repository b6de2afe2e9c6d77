"""Scoring's consumer: every event on `ingest.lead-events` is folded into its lead's profile,
the lead is decided again, and each change is stored and published. A run of events is
handled in one go: the leads are loaded once, locked, and written once."""

from datetime import UTC, datetime
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring import standings
from services.scoring.profile import fold, outcome_of
from services.scoring.rulebook import RuleBook
from services.scoring.standings import Batch, Standing
from shared.consumer import Handler
from shared.events import (
    ACTIVITY_RECORDED,
    CONSENT_CHANGED,
    LEAD_CAPTURED,
    LEAD_ERASED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    Envelope,
)

SCORED_TYPES = (LEAD_CAPTURED, LEAD_UPDATED, ACTIVITY_RECORDED, OUTCOME_RECORDED, CONSENT_CHANGED)


async def apply_events(session: AsyncSession, events: list[Envelope], book: RuleBook) -> Batch:
    """Fold the events, in order, into their leads and decide each lead after each event.
    A lead not seen before starts from an empty profile, whatever the event: nothing is
    dropped when an activity arrives before the capture."""
    batch = Batch(await book.active(session))
    known = await standings.load(session, {event.lead_id for event in events})
    erased: set[UUID] = set()
    now = datetime.now(UTC)
    for event in events:
        if event.type == LEAD_ERASED:
            known.pop(event.lead_id, None)
            batch.rows.pop(event.lead_id, None)
            erased.add(event.lead_id)
            continue
        standing = known.setdefault(event.lead_id, Standing(event.lead_id))
        erased.discard(event.lead_id)
        fold(standing.profile, event)
        batch.apply(session, standing, now, event, outcome_of(event))
    if erased:
        await standings.forget(session, erased)
        batch.history = [row for row in batch.history if row["lead_id"] not in erased]
    await batch.save(session)
    return batch


def event_handlers(book: RuleBook) -> dict[str, Handler]:
    """The handler of each event type this service consumes (one for all: order matters)."""

    async def handle(session: AsyncSession, events: list[Envelope]) -> None:
        await apply_events(session, events, book)

    return {event_type: handle for event_type in (*SCORED_TYPES, LEAD_ERASED)}
