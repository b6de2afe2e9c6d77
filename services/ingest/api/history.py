"""Routes for what happens after capture: activities, sales outcomes, consent."""

from collections.abc import Awaitable, Callable
from functools import partial
from uuid import UUID

from fastapi import APIRouter, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import history
from services.ingest.api.common import IdempotencyKey, JsonBody, KeyedSource, run_once
from services.ingest.capture import Submission
from services.ingest.history_schemas import ActivityIn, ConsentIn, LeadRef, OutcomeIn, Recorded
from services.ingest.idempotency import Answer
from services.ingest.models import Source
from services.ingest.normalize import phone_region
from shared.http import InvalidInput

# A lead named by `lead_id` that is not known (404) or was erased (410: services.ingest.app).
router = APIRouter(
    prefix="/v1", tags=["activities and outcomes"], dependencies=[JsonBody], responses={404: {}, 410: {}}
)
Apply = Callable[[AsyncSession], Awaitable[tuple[UUID, UUID]]]


async def _record(
    request: Request, source: Source, data: LeadRef | OutcomeIn, key: str | None, apply: Apply
) -> Response:
    """Run `apply` once per request: once per `Idempotency-Key` and once per the body's
    `event_id`, so a retry of the same event is one whichever of them it carries."""

    async def work(session: AsyncSession) -> Answer:
        entry, lead_id = await apply(session)
        return Answer(202, {"id": str(entry), "lead_id": str(lead_id), "status": "recorded"})

    payload = partial(data.model_dump, mode="json")
    keys = {"Idempotency-Key": key, "event_id": data.event_id}
    return await run_once(request, source.id, keys, payload, work)


def _contact(request: Request, source: Source, data: LeadRef) -> Submission | None:
    region = phone_region(
        source.default_region, source.default_language, request.app.state.settings.default_phone_region
    )
    return history.contact_of(data, region, source)


@router.post("/activities", status_code=202, response_model=Recorded)
async def record_activity(
    request: Request, data: ActivityIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Something the lead did. Named by `lead_id`, or by email or phone (a lead is created
    when nobody matches). `event_id` works like an Idempotency-Key. `occurred_at` may be at
    most 24 hours ahead."""
    history.refuse_future(data.occurred_at, request.app.state.clock())
    contact = _contact(request, source, data)
    return await _record(
        request,
        source,
        data,
        idempotency_key,
        lambda session: history.record_activity_in(session, source, data, contact),
    )


@router.post("/outcomes", status_code=202, response_model=Recorded, responses={403: {}})
async def record_outcome(
    request: Request, data: OutcomeIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """What sales reported: accepted or rejected, meeting booked, proposal sent, won (with
    amount), lost (with reason), churned. `occurred_at` may be at most 24 hours ahead."""
    history.refuse_future(data.occurred_at, request.app.state.clock())
    return await _record(
        request, source, data, idempotency_key, lambda session: history.record_outcome(session, source, data)
    )


@router.post("/consent", status_code=202, response_model=Recorded)
async def change_consent(
    request: Request, data: ConsentIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Consent given or withdrawn for a purpose (and optionally one channel). Withdrawn for
    `marketing` on every channel is an unsubscribe: nurture stops all follow-up. The lead's
    history keeps the proof: when, through which source (`source_id`, else the key's), and the
    wording the person was shown (`text`, else that source's `consent_text`) with its SHA-256."""
    through = None
    if data.source_id is not None and data.source_id != source.id:
        through = await request.app.state.sources.by_id(data.source_id)
        if through is None:
            raise InvalidInput([("source_id", "names no source")])
    contact = _contact(request, source, data)
    return await _record(
        request,
        source,
        data,
        idempotency_key,
        lambda session: history.record_consent(session, source, data, contact, through),
    )
