"""Metrics HTTP routes."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select

from services.metrics.models import LeadFact

router = APIRouter(prefix="/v1")


class Funnel(BaseModel):
    total: int
    by_stage: dict[str, int]
    by_temperature: dict[str, int]


@router.get("/funnel", response_model=Funnel)
async def funnel(
    request: Request,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
) -> Funnel:
    """Leads per lifecycle stage and per temperature, for leads captured in the period."""
    filters = []
    if from_ is not None:
        filters.append(col(LeadFact.captured_at) >= from_)
    if to is not None:
        filters.append(col(LeadFact.captured_at) < to)
    if channel is not None:
        filters.append(col(LeadFact.channel) == channel)
    async with request.app.state.runtime.db.transaction() as session:
        stages = await _count_by(session, LeadFact.stage, filters)
        temperatures = await _count_by(session, LeadFact.temperature, filters)
    return Funnel(total=sum(stages.values()), by_stage=stages, by_temperature=temperatures)


async def _count_by(session, column, filters) -> dict[str, int]:  # type: ignore[no-untyped-def]
    statement = select(column, func.count()).where(*filters).group_by(column)
    rows = (await session.exec(statement)).all()
    return {key or "unclassified": count for key, count in rows}
