"""Scoring HTTP routes: a lead's classification with its reasons, the reps' queue, the rules."""

import base64
import binascii
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, or_, select

from services.scoring import passes
from services.scoring.lifecycle import STAGES
from services.scoring.models import ClassificationChange, LeadScore, RescoreRun
from services.scoring.profile import Profile, said_last
from services.scoring.rulebook import RuleBook
from services.scoring.rules import parse_rules
from services.scoring.schemas import (
    HistoryEntry,
    LeadPage,
    LeadScoreDetail,
    LeadScorePublic,
    RescoreStarted,
    RescoreStatus,
    RulesAccepted,
    RulesPublic,
    SimulationReport,
)
from shared import paging
from shared.documents import DOCUMENT_BODY, read_document
from shared.http import Admin, InvalidInput, Viewer
from shared.tombstones import erased_among

router = APIRouter(prefix="/v1")
HISTORY_SHOWN = 50


@router.get("/leads/{lead_id}", response_model=LeadScoreDetail, dependencies=[Viewer])
async def get_lead(request: Request, lead_id: UUID) -> LeadScoreDetail:
    """The lead's score, its parts and every rule behind it, its stage, what the person said
    last, and its history."""
    history = ClassificationChange.__table__  # type: ignore[attr-defined]
    async with request.app.state.runtime.db.transaction() as session:
        score = await session.get(LeadScore, lead_id)
        recent = history.select().where(history.c.lead_id == lead_id).order_by(history.c.id.desc())
        changes = list(await session.execute(recent.limit(HISTORY_SHOWN)))
        erased = score is None and bool(await erased_among(session, [lead_id]))
    if erased:  # not "yet": it never will be
        raise HTTPException(410, "Lead erased at the person's request")
    if score is None:
        raise HTTPException(404, "No classification for this lead yet")
    public = LeadScorePublic.model_validate(score, from_attributes=True)
    entries = [HistoryEntry.model_validate(row._mapping) for row in changes]
    said = said_last(Profile.model_validate(score.profile))
    return LeadScoreDetail(**public.model_dump(), said=said, history=entries)


@router.get("/leads", response_model=LeadPage, dependencies=[Viewer])
async def list_leads(
    request: Request,
    temperature: Literal["hot", "warm", "cold"] | None = None,
    stage: Annotated[str | None, Query(description=f"One of: {', '.join(STAGES)}.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LeadPage:
    """A reps' queue: leads by score, highest first, filtered by temperature and stage."""
    if stage is not None and stage not in STAGES:
        raise InvalidInput([("stage", f"unknown stage; one of: {', '.join(STAGES)}")])
    table = LeadScore.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(table.c.score.desc(), table.c.lead_id).limit(limit + 1)
    if temperature is not None:
        query = query.where(table.c.temperature == temperature)
    if stage is not None:
        query = query.where(table.c.stage == stage)
    if cursor is not None:
        score, after = _decode_cursor(cursor, table)
        # Descending score, then ascending id: the rows after (score, id) in that order.
        later = and_(table.c.score == score, table.c.lead_id > after)
        query = query.where(or_(table.c.score < score, later))
    async with request.app.state.runtime.db.transaction() as session:
        rows = list(await session.execute(query))
    items = [LeadScorePublic.model_validate(row._mapping) for row in rows[:limit]]
    more = len(rows) > limit
    return LeadPage(items=items, next_cursor=_encode_cursor(items[-1]) if more else None)


def _encode_cursor(last: LeadScorePublic) -> str:
    return _cursor_of(last.score, last.lead_id)


def _cursor_of(score: int, lead_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{score}:{lead_id}".encode()).decode()


def _decode_cursor(cursor: str, table: Any) -> tuple[int, UUID]:
    """The (score, lead id) a cursor of `_encode_cursor` holds, each within its column's range,
    and written as `_encode_cursor` writes it (not " 40", "+40", "٤٠" or a uuid in braces)."""
    try:
        score, lead_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        position = paging.value_of(table.c.score, score), paging.value_of(table.c.lead_id, lead_id)
        if _cursor_of(*position) != cursor:
            raise ValueError("not in the form the list gives")
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput([("cursor", paging.NOT_A_CURSOR)]) from error


@router.get("/rules", response_model=RulesPublic, dependencies=[Viewer])
async def get_rules(request: Request) -> RulesPublic:
    """The active rules (the newest version)."""
    book: RuleBook = request.app.state.rulebook
    async with request.app.state.runtime.db.transaction() as session:
        stored = await book.stored(session, (await book.active(session)).version)
    return RulesPublic(
        version=stored.version, created_at=stored.created_at, rules=stored.document, source=stored.source
    )


@router.put(
    "/rules", status_code=201, response_model=RulesAccepted, dependencies=[Admin], openapi_extra=DOCUMENT_BODY
)
async def put_rules(request: Request) -> RulesAccepted:
    """Replace the rules with a new version, validated first (422 names every problem).
    New events are scored with it at once; POST /v1/rescore applies it to every lead."""
    document, source = await read_document(request)
    book: RuleBook = request.app.state.rulebook
    async with request.app.state.runtime.db.transaction() as session:
        version = await book.publish(session, document, source)
    book.forget()
    return RulesAccepted(version=version)


@router.post(
    "/rules:simulate", response_model=SimulationReport, dependencies=[Admin], openapi_extra=DOCUMENT_BODY
)
async def simulate_rules(request: Request) -> SimulationReport:
    """What candidate rules would do to the stored leads, compared with the active rules at
    this moment: how many would change temperature and stage, with examples. Changes nothing."""
    document, _ = await read_document(request)
    candidate = parse_rules(document)
    book: RuleBook = request.app.state.rulebook
    db = request.app.state.runtime.db
    async with db.transaction() as session:
        version = (await book.active(session)).version
    result = await passes.simulate(db, book, candidate)
    return SimulationReport(
        leads=result.leads,
        score_changes=result.score_changes,
        temperature_moves=dict(result.temperature),
        stage_moves=dict(result.stage),
        examples=dict(result.examples),
        compared_with_version=version,
    )


@router.post("/rescore", status_code=202, response_model=RescoreStarted, dependencies=[Admin])
async def start_rescore(request: Request) -> JSONResponse:
    """Apply the active rules to every lead, in the background; follow the status URL."""
    runtime = request.app.state.runtime
    book: RuleBook = request.app.state.rulebook
    run = await passes.start_rescore(runtime.db, book)
    runtime.spawn(passes.rescore(runtime.db, book, run.id), f"rescore {run.id}")
    body = RescoreStarted(run_id=run.id, status_url=f"/v1/rescore/{run.id}")
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": body.status_url})


@router.get("/rescore/{run_id}", response_model=RescoreStatus, dependencies=[Admin])
async def rescore_status(request: Request, run_id: UUID) -> RescoreStatus:
    async with request.app.state.runtime.db.transaction() as session:
        run = await session.get(RescoreRun, run_id)
    if run is None:
        raise HTTPException(404, "No such rescore run")
    return RescoreStatus.model_validate(run, from_attributes=True)
