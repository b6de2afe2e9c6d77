"""Tables of the ingest schema."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from shared.personal import new_key


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


def _now_default() -> Any:
    return _timestamp(default=None, sa_column_kwargs={"server_default": func.now()})


class Source(SQLModel, table=True):
    """Where leads come from; authenticates with a key we keep only as a SHA-256 hash."""

    __tablename__ = "sources"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str
    channel: str
    online: bool = True
    key_hash: str = Field(unique=True)
    key_prefix: str
    active: bool = True
    allowed_origins: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    required_fields: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    # What its form snippet calls a field, per language: {"company_size": {"ru": "Сотрудников"}}
    field_labels: dict[str, dict[str, str]] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    default_region: str | None = None
    redirect_url: str | None = None
    default_campaign: str | None = None
    marketing_basis: str | None = None  # unset: marketing to its leads needs their consent
    default_language: str | None = None  # kk, ru, az or en: for leads that do not say theirs
    consent_text: str | None = None  # the consent wording its form shows, kept with each consent
    scope: str = "capture"  # capture | history: what its key may do (see services/ingest/scopes)
    telegram_secret_hash: str | None = None  # Telegram's webhook secret token, hashed
    telegram_bot_token: str | None = None  # the bot's token, sealed (shared.sealing): never shown
    telegram_bot_token_ends: str | None = None  # its last 4 characters, to tell which one is set
    created_at: datetime | None = _now_default()
    updated_at: datetime | None = _now_default()


class Lead(SQLModel, table=True):
    """A person: one row per normalised email and per phone (both unique), everything else
    they told us in `attributes`, merged as they come back."""

    __tablename__ = "leads"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_id: UUID = Field(index=True)
    email: str | None = None
    phone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    correlation_id: UUID
    ip: str | None = None
    user_agent: str | None = None
    captured_at: datetime = _timestamp()
    updated_at: datetime | None = _now_default()
    # What its personal data in events is sealed with (`shared.personal`); goes with the row.
    seal_key: bytes = Field(default_factory=new_key, sa_column=Column(LargeBinary, nullable=False))


class LeadHistory(SQLModel, table=True):
    """Everything recorded on a lead after its capture: activities, sales outcomes, consent."""

    __tablename__ = "lead_history"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    lead_id: UUID = Field(index=True)
    kind: str  # activity | outcome | consent
    type: str
    source_id: UUID | None = None
    occurred_at: datetime = _timestamp()
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class ErasedLead(SQLModel, table=True):
    """A tombstone: the id of an erased lead, so late events for it are refused, not revived."""

    __tablename__ = "erased_leads"

    lead_id: UUID = Field(primary_key=True)
    erased_at: datetime = _timestamp()


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a request carrying an Idempotency-Key, replayed to its retries."""

    __tablename__ = "idempotency_keys"

    source_id: UUID = Field(primary_key=True)
    key: str = Field(primary_key=True)
    fingerprint: str | None = None  # none once a person the answer names was erased
    status: int
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _timestamp()


class SpamSubmission(SQLModel, table=True):
    """A form post that filled the honeypot: kept for review, never sent downstream."""

    __tablename__ = "spam_submissions"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_id: UUID
    fields: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    email: str | None = Field(default=None, index=True)  # normalised, as a lead's (for erasure)
    phone: str | None = Field(default=None, index=True)
    ip: str | None = None
    user_agent: str | None = None
    received_at: datetime = _timestamp()


class Conversation(SQLModel, table=True):
    """A chatbot conversation; messages wait in `waiting` until the person shares a contact."""

    __tablename__ = "conversations"

    source_id: UUID = Field(primary_key=True)
    conversation_id: str = Field(primary_key=True)
    lead_id: UUID | None = None
    waiting: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    asked_contact_at: datetime | None = _timestamp(default=None)  # the bot's last ask for a contact
    updated_at: datetime | None = _now_default()


class TelegramReply(SQLModel, table=True):
    """A Telegram bot's reply (`telegram_replies`) until the Bot API took it: sent at once after
    its update commits, and again by `TelegramBot.run` while it fails (`next_attempt_at`, the
    row leased to one sender until `lease_until`); deleted once sent or given up."""

    __tablename__ = "telegram_replies"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_id: UUID
    conversation_id: str
    chat_id: int = Field(sa_type=BigInteger)
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _timestamp()
    attempts: int = 0
    next_attempt_at: datetime = _timestamp()
    lease_until: datetime | None = _timestamp(default=None)


class Import(SQLModel, table=True):
    """A CSV import and its running report."""

    __tablename__ = "imports"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_id: UUID
    filename: str | None = None
    status: str  # receiving | running | done | failed | interrupted
    rows_total: int | None = None
    rows_done: int = 0
    accepted: int = 0
    merged: int = 0
    rejected: int = 0
    error: str | None = None
    started_at: datetime | None = _now_default()
    progress_at: datetime | None = _now_default()
    finished_at: datetime | None = _timestamp(default=None)
    # the headers no lead field takes (`import_headers.unknown_headers`), once the file is read
    unknown_headers: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))


class ImportRejection(SQLModel, table=True):
    """A rejected CSV row: its number (1 = the first data row), the file's line it starts on
    (the header is line 1; none for rows rejected before lines were kept) and each field's
    reason."""

    __tablename__ = "import_rejections"

    import_id: UUID = Field(primary_key=True)
    row: int = Field(primary_key=True)
    line: int | None = None
    errors: list[dict[str, str]] = Field(sa_column=Column(JSONB, nullable=False))
