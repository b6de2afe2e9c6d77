"""Response models of the scoring API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.events import RuleHit


class LeadScorePublic(BaseModel):
    lead_id: UUID
    score: int
    temperature: str
    stage: str
    breakdown: list[RuleHit]
    rules_version: int
    updated_at: datetime
