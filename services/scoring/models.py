"""Tables of the scoring schema."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class LeadScore(SQLModel, table=True):
    """The current classification of a lead, with the profile it was computed from."""

    __tablename__ = "lead_scores"

    lead_id: UUID = Field(primary_key=True)
    score: int
    temperature: str = Field(index=True)
    stage: str = Field(index=True)
    breakdown: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    rules_version: int
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
