"""Request and response models of the nurture API."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, StringConstraints


class RepCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    email: EmailStr | None = None
    webhook_url: HttpUrl
    active: bool = True


class RepPublic(BaseModel):
    id: UUID
    name: str
    email: str | None
    webhook_url: str
    active: bool
    created_at: datetime


class RepCreated(RepPublic):
    webhook_secret: str = Field(description="The whsec_ signing secret, shown only once.")
