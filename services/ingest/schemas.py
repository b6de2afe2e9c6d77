"""Request and response models of the ingest API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, StringConstraints

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Url = Annotated[str, StringConstraints(max_length=2000)]


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    allowed_origins: list[HttpUrl] = Field(default_factory=list, max_length=50)
    required_fields: list[Short] = Field(default_factory=list, max_length=50)
    default_region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    redirect_url: HttpUrl | None = None


class SourcePublic(BaseModel):
    id: UUID
    name: str
    channel: str
    key_prefix: str
    active: bool
    allowed_origins: list[str]
    required_fields: list[str]
    default_region: str | None
    redirect_url: str | None
    created_at: datetime


class SourceCreated(SourcePublic):
    key: str = Field(description="The source key, shown only once; send it as X-Source-Key.")


class LeadIn(BaseModel):
    """A lead as posted by a form, landing page or integration. Email or phone is required."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    first_name: Short | None = None
    last_name: Short | None = None
    company: Short | None = None
    job_title: Short | None = None
    industry: Short | None = None
    company_size: Short | None = None
    country: Short | None = None
    city: Short | None = None
    timezone: Short | None = None
    budget: float | None = Field(default=None, ge=0)
    timeframe: Short | None = None
    need: Long | None = None
    is_decision_maker: bool | None = None
    message: Long | None = None
    consent: bool | None = None
    utm: dict[Short, Short] = Field(default_factory=dict, max_length=20)
    page_url: Url | None = None
    referrer: Url | None = None
    custom: dict[Short, Any] = Field(default_factory=dict, max_length=50)


class LeadAccepted(BaseModel):
    lead_id: UUID
    status: str = "accepted"


class LeadPublic(BaseModel):
    id: UUID
    source_id: UUID
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    captured_at: datetime
