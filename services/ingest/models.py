"""Tables of the ingest schema."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, DateTime, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class Source(SQLModel, table=True):
    """Where leads come from; authenticates with a key we keep only as a SHA-256 hash."""

    __tablename__ = "sources"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str
    channel: str
    key_hash: str = Field(unique=True)
    key_prefix: str
    active: bool = True
    allowed_origins: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    required_fields: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    default_region: str | None = None
    redirect_url: str | None = None
    created_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


class Lead(SQLModel, table=True):
    """A captured person: contact points in columns, everything else in `attributes`."""

    __tablename__ = "leads"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_id: UUID = Field(index=True)
    email: str | None = Field(default=None, index=True)
    phone: str | None = Field(default=None, index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    correlation_id: UUID
    captured_at: datetime = Field(sa_type=DateTime(timezone=True))
