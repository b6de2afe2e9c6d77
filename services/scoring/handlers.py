"""Scoring handlers: one per consumed event type; each takes a session and never commits."""

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import LeadScore
from services.scoring.rules import RULES_VERSION, Windows, classify
from shared import topics
from shared.consumer import Handler
from shared.db import upsert
from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED, Envelope, LeadClassified, utcnow
from shared.outbox import add_to_outbox


async def classify_lead(session: AsyncSession, event: Envelope, windows: Windows) -> None:
    """Classify a captured lead; publish `lead.classified` when anything changed."""
    table = LeadScore.__table__  # type: ignore[attr-defined]
    current = (
        await session.execute(
            select(table.c.temperature, table.c.stage, table.c.score, table.c.profile).where(
                table.c.lead_id == event.lead_id
            )
        )
    ).first()
    profile = {**(current.profile if current else {}), **event.data}
    result = classify(profile.get("timeframe"), windows)
    if current and (current.temperature, current.stage, current.score) == (
        result.temperature,
        result.stage,
        result.score,
    ):
        return
    values = {
        "score": result.score,
        "temperature": result.temperature,
        "stage": result.stage,
        "breakdown": [hit.model_dump() for hit in result.breakdown],
        "profile": profile,
        "rules_version": RULES_VERSION,
        "updated_at": utcnow(),
    }
    await upsert(session, table, ["lead_id"], {"lead_id": event.lead_id, **values})
    payload = LeadClassified(
        score=result.score,
        temperature=result.temperature,
        stage=result.stage,
        previous_temperature=current.temperature if current else None,
        previous_stage=current.stage if current else None,
        breakdown=result.breakdown,
        rules_version=RULES_VERSION,
        lead=profile,
    )
    add_to_outbox(session, topics.LEAD_CLASSIFICATIONS, event.follow_up(LEAD_CLASSIFIED, "scoring", payload))


def event_handlers(windows: Windows) -> dict[str, Handler]:
    """The handler of each event type this service consumes."""

    async def on_lead_captured(session: AsyncSession, event: Envelope) -> None:
        await classify_lead(session, event, windows)

    return {LEAD_CAPTURED: on_lead_captured}
