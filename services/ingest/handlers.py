"""Ingest use cases: each takes a session and never commits; the caller owns the transaction."""

import hashlib
import secrets
from uuid import UUID, uuid4

import phonenumbers
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import Lead, Source
from services.ingest.schemas import LeadIn, SourceCreate
from shared import topics
from shared.db import defer_insert
from shared.events import LEAD_CAPTURED, Envelope, LeadCaptured, utcnow
from shared.http import InvalidInput
from shared.outbox import add_to_outbox

KEY_PREFIX = "lfk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_source(session: AsyncSession, data: SourceCreate) -> tuple[Source, str]:
    """A new source and its key; only the key's hash is stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    source = Source(
        name=data.name,
        channel=data.channel,
        key_hash=hash_key(key),
        key_prefix=key[:10],
        allowed_origins=[str(o).rstrip("/") for o in data.allowed_origins],
        required_fields=list(data.required_fields),
        default_region=data.default_region,
        redirect_url=str(data.redirect_url) if data.redirect_url else None,
    )
    session.add(source)
    await session.flush()
    await session.refresh(source)
    return source, key


async def authenticate_source(session: AsyncSession, key: str) -> Source | None:
    """The active source holding `key`, or None (callers must not say which check failed).
    Keys are looked up by their SHA-256: a timing difference can only reveal bits of a hash
    of a 256-bit random key, so no constant-time comparison is needed on top."""
    source = (await session.exec(select(Source).where(Source.key_hash == hash_key(key)))).first()
    return source if source is not None and source.active else None


def normalize_phone(raw: str, region: str) -> str:
    """E.164, or InvalidInput naming the phone field."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput([("phone", f"not a phone number: {error}")]) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput([("phone", "not a valid phone number")])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_required(source: Source, data: LeadIn) -> None:
    """Email or phone always; plus whatever the source requires."""
    missing = [(f, "required by this source") for f in source.required_fields if not getattr(data, f, None)]
    if not data.email and not data.phone:
        missing.insert(0, ("email", "email or phone is required"))
    if missing:
        raise InvalidInput(missing)


async def capture_lead(session: AsyncSession, source: Source, data: LeadIn, default_region: str) -> UUID:
    """Store the lead and stage `lead.captured` in the same transaction; returns the lead id."""
    check_required(source, data)
    phone = normalize_phone(data.phone, source.default_region or default_region) if data.phone else None
    email = data.email.lower() if data.email else None
    attributes = data.model_dump(mode="json", exclude={"email", "phone"}, exclude_none=True)
    lead_id, correlation_id, captured_at = uuid4(), uuid4(), utcnow()
    row = {
        "id": lead_id,
        "source_id": source.id,
        "email": email,
        "phone": phone,
        "attributes": attributes,
        "correlation_id": correlation_id,
        "captured_at": captured_at,
    }
    defer_insert(session, Lead.__table__, row)  # type: ignore[attr-defined]
    payload = LeadCaptured(
        source_id=source.id,
        channel=source.channel,
        email=email,
        phone=phone,
        captured_at=captured_at,
        **attributes,
    )
    event = Envelope(
        type=LEAD_CAPTURED,
        lead_id=lead_id,
        correlation_id=correlation_id,
        producer="ingest",
        data=payload.model_dump(mode="json", exclude_none=True),
    )
    add_to_outbox(session, topics.LEAD_EVENTS, event)
    return lead_id


async def list_sources(session: AsyncSession) -> list[Source]:
    return list((await session.exec(select(Source).order_by(col(Source.created_at)))).all())


async def get_lead(session: AsyncSession, lead_id: UUID) -> Lead | None:
    return await session.get(Lead, lead_id)
