"""Tables of the metrics schema: one read-model row per lead."""

from datetime import datetime
from uuid import UUID

from sqlmodel import Field, SQLModel


class LeadFact(SQLModel, table=True):
    """What the funnel needs to know about one lead; filled by whichever event arrives first."""

    __tablename__ = "lead_facts"

    lead_id: UUID = Field(primary_key=True)
    channel: str | None = Field(default=None, index=True)
    source_id: UUID | None = None
    captured_at: datetime | None = Field(default=None, index=True)
    temperature: str | None = None
    stage: str | None = None
    classified_at: datetime | None = None
    rep_id: UUID | None = None
    assigned_at: datetime | None = None
