"""Scoring HTTP routes."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request

from services.scoring.models import LeadScore
from services.scoring.schemas import LeadScorePublic

router = APIRouter(prefix="/v1")


@router.get("/leads/{lead_id}", response_model=LeadScorePublic)
async def get_lead(request: Request, lead_id: UUID) -> LeadScorePublic:
    async with request.app.state.runtime.db.transaction() as session:
        score = await session.get(LeadScore, lead_id)
    if score is None:
        raise HTTPException(404, "No classification for this lead yet")
    return LeadScorePublic.model_validate(score, from_attributes=True)
