"""Scoring handlers: one per consumed event type, each given a run of events of that type and a
session; they never commit, the consumer owns the transaction."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import LeadScore
from services.scoring.rules import RULES_VERSION, Windows, classify
from shared import topics
from shared.consumer import Handler
from shared.db import upsert
from shared.events import (
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    LEAD_ERASED,
    LEAD_UPDATED,
    Envelope,
    LeadClassified,
    Temperature,
    utcnow,
)
from shared.outbox import add_to_outbox


@dataclass(frozen=True)
class Standing:
    """Where a lead stands now, and the profile it was classified from."""

    temperature: Temperature
    stage: str
    score: int
    profile: dict[str, Any]


async def load_standings(session: AsyncSession, lead_ids: set[UUID]) -> dict[UUID, Standing]:
    table = LeadScore.__table__  # type: ignore[attr-defined]
    statement = select(table.c.lead_id, table.c.temperature, table.c.stage, table.c.score, table.c.profile)
    rows = await session.execute(statement.where(table.c.lead_id.in_(lead_ids)))
    return {row.lead_id: Standing(row.temperature, row.stage, row.score, row.profile) for row in rows}


async def classify_leads(session: AsyncSession, events: list[Envelope], windows: Windows) -> None:
    """Merge each event into its lead's profile and classify it; store every lead once and
    publish `lead.classified` for each change of score, temperature or stage."""
    standings = await load_standings(session, {event.lead_id for event in events})
    rows: dict[UUID, dict[str, Any]] = {}
    for event in events:
        before = standings.get(event.lead_id)
        profile = {**(before.profile if before else {}), **event.data}
        result = classify(profile.get("timeframe"), windows)
        after = Standing(result.temperature, result.stage, result.score, profile)
        standings[event.lead_id] = after
        rows[event.lead_id] = {
            "lead_id": event.lead_id,
            "score": result.score,
            "temperature": result.temperature,
            "stage": result.stage,
            "breakdown": [hit.model_dump() for hit in result.breakdown],
            "profile": profile,
            "rules_version": RULES_VERSION,
            "updated_at": utcnow(),
        }
        if before is not None and (before.temperature, before.stage, before.score) == (
            after.temperature,
            after.stage,
            after.score,
        ):
            continue
        payload = LeadClassified(
            score=result.score,
            temperature=result.temperature,
            stage=result.stage,
            previous_temperature=before.temperature if before else None,
            previous_stage=before.stage if before else None,
            breakdown=result.breakdown,
            rules_version=RULES_VERSION,
            lead=profile,
        )
        classified = event.follow_up(LEAD_CLASSIFIED, "scoring", payload)
        add_to_outbox(session, topics.LEAD_CLASSIFICATIONS, classified)
    await upsert(session, LeadScore.__table__, ["lead_id"], list(rows.values()))  # type: ignore[attr-defined]


def event_handlers(windows: Windows) -> dict[str, Handler]:
    """The handler of each event type this service consumes."""

    async def on_leads_captured(session: AsyncSession, events: list[Envelope]) -> None:
        await classify_leads(session, events, windows)

    async def on_leads_updated(session: AsyncSession, events: list[Envelope]) -> None:
        """Progressive profiling: what the person added is merged into the profile and judged."""
        changes = [e.model_copy(update={"data": e.data.get("changes", {})}) for e in events]
        await classify_leads(session, changes, windows)

    async def on_leads_erased(session: AsyncSession, events: list[Envelope]) -> None:
        table = LeadScore.__table__  # type: ignore[attr-defined]
        await session.execute(delete(table).where(table.c.lead_id.in_({e.lead_id for e in events})))

    return {LEAD_CAPTURED: on_leads_captured, LEAD_UPDATED: on_leads_updated, LEAD_ERASED: on_leads_erased}
