"""Tables of the scoring schema."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Identity, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


class LeadScore(SQLModel, table=True):
    """The current classification of a lead, with the profile it was computed from."""

    __tablename__ = "lead_scores"

    lead_id: UUID = Field(primary_key=True)
    score: int
    fit: int = 0
    engagement: int = 0
    intent: int = 0
    temperature: str = Field(index=True)
    stage: str = Field(index=True)
    stage_since: datetime | None = _timestamp(default=None)
    breakdown: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    bant: dict[str, bool] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    rules_version: int
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    review_at: datetime | None = _timestamp(default=None)  # when time alone may change it
    updated_at: datetime = _timestamp()


class ClassificationChange(SQLModel, table=True):
    """One change of a lead's score, temperature or stage, or a refused stage move."""

    __tablename__ = "classification_history"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    lead_id: UUID
    at: datetime = _timestamp()
    cause: str
    correlation_id: UUID | None = None
    score: int
    temperature: str
    stage: str
    previous_score: int | None = None
    previous_temperature: str | None = None
    previous_stage: str | None = None
    rules_version: int
    note: str | None = None


class RulesVersion(SQLModel, table=True):
    __tablename__ = "rules_versions"

    version: int = Field(primary_key=True)
    rules: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    source: str
    created_at: datetime | None = _timestamp(default=None, sa_column_kwargs={"server_default": func.now()})
    from_release: bool = False  # a release's built-in rules, not an operator's (shared.documents)


class RescoreRun(SQLModel, table=True):
    __tablename__ = "rescore_runs"

    id: UUID = Field(primary_key=True)
    status: str  # running | done | failed
    rules_version: int
    total: int | None = None
    done: int = 0
    changed: int = 0
    resume_after: UUID | None = None  # the last lead decided again: where a cut-short run goes on
    error: str | None = None
    started_at: datetime | None = _timestamp(default=None, sa_column_kwargs={"server_default": func.now()})
    finished_at: datetime | None = _timestamp(default=None)
