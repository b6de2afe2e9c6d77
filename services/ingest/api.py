"""Ingest HTTP routes: thin, each one transaction around one handler."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Request

from services.ingest import handlers
from services.ingest.schemas import (
    LeadAccepted,
    LeadIn,
    LeadPublic,
    SourceCreate,
    SourceCreated,
    SourcePublic,
)
from shared.http import Admin
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1")
UNAUTHORIZED = "Source key missing, unknown or disabled"


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


@router.post("/sources", status_code=201, response_model=SourceCreated, dependencies=[Admin])
async def create_source(request: Request, data: SourceCreate) -> SourceCreated:
    async with _runtime(request).db.transaction() as session:
        source, key = await handlers.create_source(session, data)
    return SourceCreated(**source.model_dump(), key=key)


@router.get("/sources", response_model=list[SourcePublic], dependencies=[Admin])
async def list_sources(request: Request) -> list[SourcePublic]:
    async with _runtime(request).db.transaction() as session:
        sources = await handlers.list_sources(session)
    return [SourcePublic(**s.model_dump()) for s in sources]


@router.post("/leads", status_code=202, response_model=LeadAccepted)
async def capture_lead(
    request: Request,
    data: LeadIn,
    x_source_key: Annotated[str | None, Header(max_length=200)] = None,
) -> LeadAccepted:
    state = request.app.state
    source = await state.sources.authenticate(x_source_key or "")
    if source is None:
        raise HTTPException(401, UNAUTHORIZED)
    region = state.settings.default_phone_region
    lead_id = await state.committer.submit(
        lambda session: handlers.capture_lead(session, source, data, region)
    )
    return LeadAccepted(lead_id=lead_id)


@router.get("/leads/{lead_id}", response_model=LeadPublic, dependencies=[Admin])
async def get_lead(request: Request, lead_id: UUID) -> LeadPublic:
    async with _runtime(request).db.transaction() as session:
        lead = await handlers.get_lead(session, lead_id)
    if lead is None:
        raise HTTPException(404, "No such lead")
    return LeadPublic(**lead.model_dump())
