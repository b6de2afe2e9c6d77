"""Request and response models of the nurture API."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Role = Literal["rep", "manager"]


class RepCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: EmailStr | None = None
    webhook_url: HttpUrl
    active: bool = True
    role: Role = Field(
        "rep", description="rep: is given leads. manager: is told when an SLA breach finds no rep."
    )
    territories: list[Label] = Field([], max_length=200, description="Countries or cities; empty: anywhere.")
    segments: list[Label] = Field([], max_length=200, description="Industries or segments; empty: any.")
    capacity: int = Field(1, ge=1, le=1000, description="A weight: capacity 2 gets twice the leads of 1.")


class RepUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: EmailStr | None = None
    webhook_url: HttpUrl | None = None
    active: bool | None = None
    role: Role | None = None
    territories: list[Label] | None = Field(None, max_length=200)
    segments: list[Label] | None = Field(None, max_length=200)
    capacity: int | None = Field(None, ge=1, le=1000)


class RepPublic(BaseModel):
    id: UUID
    name: str
    email: str | None
    webhook_url: str
    active: bool
    role: str
    territories: list[str]
    segments: list[str]
    capacity: int
    assigned_total: int
    created_at: datetime


class RepCreated(RepPublic):
    webhook_secret: str = Field(description="The whsec_ signing secret, shown only once.")


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rep_id: UUID
    token: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="From the webhook's `acknowledge.body`; not needed with the admin token."
    )


class Acknowledged(BaseModel):
    lead_id: UUID
    rep_id: UUID
    acknowledged_at: datetime
    seconds_to_acknowledge: float
