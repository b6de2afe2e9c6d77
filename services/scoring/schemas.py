"""Request and response models of the scoring API."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared.events import RuleHit, Said


class HistoryEntry(BaseModel):
    at: datetime
    cause: str
    score: int
    temperature: str
    stage: str
    previous_score: int | None
    previous_temperature: str | None
    previous_stage: str | None
    rules_version: int
    note: str | None = Field(description="Why the stage moved, or a refused move and why.")
    correlation_id: UUID | None


class LeadScorePublic(BaseModel):
    lead_id: UUID
    score: int = Field(description="0-100; the breakdown sums to it.")
    fit: int
    engagement: int
    intent: int
    temperature: str
    stage: str
    stage_since: datetime | None
    breakdown: list[RuleHit]
    bant: dict[str, bool]
    rules_version: int
    updated_at: datetime


class LeadScoreDetail(LeadScorePublic):
    said: Said | None = Field(
        description="What the person said most recently, and when: the profile's own timeframe, "
        "message and need, or a later submission's (a repeat through a capture key, which does not "
        "overwrite the profile), as the rep's hot-lead message quotes it; null if they said nothing."
    )
    history: list[HistoryEntry] = Field(description="The latest changes, newest first (at most 50).")


class LeadPage(BaseModel):
    items: list[LeadScorePublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class RulesPublic(BaseModel):
    version: int
    created_at: datetime | None
    rules: dict[str, Any]
    source: str = Field(description="The document as it was sent (YAML or JSON).")


class RulesAccepted(BaseModel):
    version: int


class SimulationReport(BaseModel):
    leads: int
    score_changes: int
    temperature_moves: dict[str, int] = Field(description='e.g. {"warm → hot": 12}')
    stage_moves: dict[str, int]
    examples: dict[str, list[dict[str, Any]]]
    compared_with_version: int


class RescoreStarted(BaseModel):
    run_id: UUID
    status_url: str


class RescoreStatus(BaseModel):
    id: UUID
    status: str
    rules_version: int
    total: int | None
    done: int
    changed: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
