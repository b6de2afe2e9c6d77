"""Routes for what happens after capture: activities, sales outcomes, consent."""

from fastapi import APIRouter, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import history
from services.ingest.api.common import IdempotencyKey, JsonBody, KeyedSource, run_once
from services.ingest.idempotency import Answer
from services.ingest.schemas import ActivityIn, ConsentIn, OutcomeIn, Recorded

router = APIRouter(prefix="/v1", tags=["activities and outcomes"], dependencies=[JsonBody])


def _recorded(entry_and_lead: tuple[object, object]) -> Answer:
    entry, lead_id = entry_and_lead
    return Answer(202, {"id": str(entry), "lead_id": str(lead_id), "status": "recorded"})


@router.post("/activities", status_code=202, response_model=Recorded)
async def record_activity(
    request: Request, data: ActivityIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Something the lead did. Named by `lead_id`, or by email or phone (a lead is created
    when nobody matches). `event_id` works like an Idempotency-Key."""
    contact = history.contact_of(
        data, source.default_region or request.app.state.settings.default_phone_region
    )

    async def work(session: AsyncSession) -> Answer:
        return _recorded(await history.record_activity_in(session, source, data, contact))

    key = idempotency_key or data.event_id
    return await run_once(request, source.id, key, data.model_dump(mode="json"), work)


@router.post("/outcomes", status_code=202, response_model=Recorded)
async def record_outcome(
    request: Request, data: OutcomeIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """What sales reported: accepted or rejected, meeting booked, proposal sent, won (with
    amount), lost (with reason), churned."""

    async def work(session: AsyncSession) -> Answer:
        return _recorded(await history.record_outcome(session, source, data))

    key = idempotency_key or data.event_id
    return await run_once(request, source.id, key, data.model_dump(mode="json"), work)


@router.post("/consent", status_code=202, response_model=Recorded)
async def change_consent(
    request: Request, data: ConsentIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Consent given or withdrawn for a purpose (and optionally one channel). Withdrawn for
    `marketing` on every channel is an unsubscribe: nurture stops all follow-up."""
    contact = history.contact_of(
        data, source.default_region or request.app.state.settings.default_phone_region
    )

    async def work(session: AsyncSession) -> Answer:
        return _recorded(await history.record_consent(session, source, data, contact))

    key = idempotency_key or data.event_id
    return await run_once(request, source.id, key, data.model_dump(mode="json"), work)
