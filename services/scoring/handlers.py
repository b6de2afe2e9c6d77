"""Scoring handlers: one per consumed event type; each takes a session and never commits."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import LeadScore
from services.scoring.rules import RULES_VERSION, Windows, classify
from shared import topics
from shared.consumer import Handler
from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED, Envelope, LeadClassified, utcnow
from shared.outbox import add_to_outbox


async def classify_lead(session: AsyncSession, event: Envelope, windows: Windows) -> None:
    """Classify a captured lead; publish `lead.classified` when anything changed."""
    current = await session.get(LeadScore, event.lead_id)
    profile = {**(current.profile if current else {}), **event.data}
    result = classify(profile.get("timeframe"), windows)
    previous = (current.temperature, current.stage, current.score) if current else None
    if previous == (result.temperature, result.stage, result.score):
        return
    breakdown = [hit.model_dump() for hit in result.breakdown]
    score = current or LeadScore(lead_id=event.lead_id, score=0, temperature="cold", stage="lead",
                                 rules_version=RULES_VERSION, updated_at=utcnow())
    score.sqlmodel_update({"score": result.score, "temperature": result.temperature,
                           "stage": result.stage, "breakdown": breakdown, "profile": profile,
                           "rules_version": RULES_VERSION, "updated_at": utcnow()})
    session.add(score)
    payload = LeadClassified(
        score=result.score, temperature=result.temperature, stage=result.stage,
        previous_temperature=previous[0] if previous else None,  # type: ignore[arg-type]
        previous_stage=previous[1] if previous else None,
        breakdown=result.breakdown, rules_version=RULES_VERSION, lead=profile,
    )
    add_to_outbox(session, topics.LEAD_CLASSIFICATIONS,
                  event.follow_up(LEAD_CLASSIFIED, "scoring", payload))


def event_handlers(windows: Windows) -> dict[str, Handler]:
    """The handler of each event type this service consumes."""

    async def on_lead_captured(session: AsyncSession, event: Envelope) -> None:
        await classify_lead(session, event, windows)

    return {LEAD_CAPTURED: on_lead_captured}
