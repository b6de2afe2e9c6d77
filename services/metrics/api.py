"""Metrics HTTP routes."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

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
    filters: list[ColumnElement[bool]] = []
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


async def _count_by(session: AsyncSession, column: Any, filters: list[ColumnElement[bool]]) -> dict[str, int]:
    statement = select(column, func.count()).where(*filters).group_by(column)
    rows = (await session.execute(statement)).all()
    return {key or "unclassified": count for key, count in rows}
