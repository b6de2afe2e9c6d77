"""Lead routes: one lead, a batch, read (admin) and erase (admin)."""

from functools import partial
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.api.common import (
    IdempotencyKey,
    JsonBody,
    KeyedSource,
    client_of,
    run_once,
)
from services.ingest.capture import Captured, Submission, capture, parse_lead, prepare
from services.ingest.history import erase_lead, lead_with_history
from services.ingest.idempotency import Answer
from services.ingest.models import Source
from services.ingest.schemas import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    HistoryEntry,
    ItemError,
    LeadAccepted,
    LeadIn,
    LeadPublic,
)
from shared.http import Admin, InvalidInput

router = APIRouter(prefix="/v1/leads", tags=["leads"])


def accepted(captured: Captured, tell: bool = True) -> Answer:
    """The 202; `tell`: say whether the person was known (`merged`) or new (`accepted`)."""
    return Answer(202, {"lead_id": str(captured.lead_id), "status": captured.status if tell else "accepted"})


@router.post("", status_code=202, response_model=LeadAccepted, dependencies=[JsonBody])
async def capture_lead(
    request: Request, data: LeadIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Take a lead. A known email or phone merges into its lead: a key with the `history` scope
    is told so (`status: merged`); a `capture` key, which sits in a web page, gets the same
    answer for a new person and a known one (`accepted`), so it cannot tell who is known."""
    region = request.app.state.settings.default_phone_region
    submission = prepare(source, data, region, client_of(request), vouched=source.scope == "history")

    async def work(session: AsyncSession) -> Answer:
        return accepted(await capture(session, source, submission), tell=source.scope == "history")

    contacts = [(submission.email, submission.phone)]
    payload = partial(data.model_dump, mode="json", exclude_unset=True)
    return await run_once(request, source.id, {"Idempotency-Key": idempotency_key}, payload, work, contacts)


@router.post(":batch", response_model=BatchResult, dependencies=[JsonBody])
async def capture_batch(
    request: Request, data: BatchIn, source: KeyedSource, idempotency_key: IdempotencyKey = None
) -> Response:
    """Up to 500 leads, in one transaction; each is judged on its own (`results[i].status`
    202, or 422 with its errors)."""
    ready, rejected = _prepared(request, source, data.leads)

    async def work(session: AsyncSession) -> Answer:
        stored, refused = [], list(rejected)
        for index, submission in ready:
            try:
                captured = await capture(session, source, submission)
            except InvalidInput as error:  # refused before it wrote anything (a profile over its bounds)
                problems = [ItemError(field=f, reason=r, type=t) for f, r, t in error.typed]
                refused.append(BatchItemResult(index=index, status=422, errors=problems))
                continue
            stored.append(
                BatchItemResult(
                    index=index,
                    status=202,
                    lead_id=captured.lead_id,
                    outcome=captured.status if source.scope == "history" else "accepted",
                )
            )
        results = sorted(stored + refused, key=lambda r: r.index)
        body = BatchResult(accepted=len(stored), rejected=len(refused), results=results)
        return Answer(200, body.model_dump(mode="json"))

    payload = partial(data.model_dump, mode="json")
    contacts = [(submission.email, submission.phone) for _, submission in ready]
    return await run_once(request, source.id, {"Idempotency-Key": idempotency_key}, payload, work, contacts)


def _prepared(
    request: Request, source: Source, items: list[dict[str, Any]]
) -> tuple[list[tuple[int, Submission]], list[BatchItemResult]]:
    """The batch's items ready to capture, by index, and the ones refused (422) as they are."""
    region = request.app.state.settings.default_phone_region
    client = client_of(request)
    rejected: list[BatchItemResult] = []
    ready: list[tuple[int, Submission]] = []
    for index, item in enumerate(items):
        try:
            lead = parse_lead(item)
            ready.append((index, prepare(source, lead, region, client, vouched=source.scope == "history")))
        except InvalidInput as error:
            problems = [ItemError(field=f, reason=r, type=t) for f, r, t in error.typed]
            rejected.append(BatchItemResult(index=index, status=422, errors=problems))
    return ready, rejected


@router.get("/{lead_id}", response_model=LeadPublic, dependencies=[Admin])
async def get_lead(request: Request, lead_id: UUID) -> LeadPublic:
    async with request.app.state.runtime.db.transaction() as session:
        found = await lead_with_history(session, lead_id)
    if found is None:
        raise HTTPException(404, "No such lead")
    lead, history = found
    entries = [HistoryEntry(**h.model_dump()) for h in history]
    return LeadPublic(**lead.model_dump(), history=entries)


@router.delete("/{lead_id}", status_code=204, dependencies=[Admin])
async def erase(request: Request, lead_id: UUID) -> Response:
    """Erase the person here and, through `lead.erased`, in every service."""
    async with request.app.state.runtime.db.transaction() as session:
        existed = await erase_lead(session, lead_id)
    if not existed:
        raise HTTPException(404, "No such lead")
    return Response(status_code=204)
