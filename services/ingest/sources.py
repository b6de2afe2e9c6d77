"""Sources: where leads come from, each with its own key (stored only as a SHA-256 hash)."""

import hashlib
import secrets
from typing import Any
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import Source
from services.ingest.schemas import LEAD_FIELDS
from services.ingest.source_schemas import OFFLINE_CHANNELS, SourceCreate, SourceSettings
from shared.events import utcnow
from shared.http import InvalidInput
from shared.paging import keyset

KEY_PREFIX = "lfk_"
NOT_NULL = ("name", "online", "active", "allowed_origins", "required_fields", "field_labels")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """`lfk_` + 43 URL-safe characters (256 bits). Only [A-Za-z0-9_-], so the same key can be
    given to Telegram as a webhook's secret token."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _settings_values(data: SourceSettings) -> dict[str, Any]:
    values = data.model_dump(exclude_unset=True)
    for name in ("required_fields", "field_labels"):
        unknown = [f for f in values.get(name) or [] if f not in LEAD_FIELDS]
        if unknown:
            raise InvalidInput([(name, f"not lead fields: {', '.join(unknown)}")])
    if values.get("allowed_origins") is not None:  # origins by now (source_schemas.web_origin)
        values["allowed_origins"] = list(dict.fromkeys(values["allowed_origins"]))
    if values.get("redirect_url") is not None:
        values["redirect_url"] = str(values["redirect_url"])
    return values


async def create_source(session: AsyncSession, data: SourceCreate) -> tuple[Source, str]:
    """A new source and its key; only the key's hash is stored."""
    values = _settings_values(data)
    values.setdefault("online", data.channel not in OFFLINE_CHANNELS)
    values = {k: v for k, v in values.items() if v is not None}
    key = new_key()
    source = Source(**values, key_hash=hash_key(key), key_prefix=key[:10])
    session.add(source)
    await session.flush()
    await session.refresh(source)
    return source, key


async def update_source(session: AsyncSession, source_id: UUID, data: SourceSettings) -> Source | None:
    source = await session.get(Source, source_id, with_for_update=True)
    if source is None:
        return None
    for name, value in _settings_values(data).items():
        if value is None and name in (
            "name",
            "online",
            "active",
            "allowed_origins",
            "required_fields",
            "field_labels",
        ):
            raise InvalidInput([(name, "cannot be null")])
        setattr(source, name, value)
    source.updated_at = utcnow()
    await session.flush()
    return source


async def rotate_key(session: AsyncSession, source_id: UUID) -> tuple[Source, str] | None:
    """A new key for the source; the old one stops working at once."""
    source = await session.get(Source, source_id, with_for_update=True)
    if source is None:
        return None
    key = new_key()
    source.key_hash, source.key_prefix, source.updated_at = hash_key(key), key[:10], utcnow()
    await session.flush()
    return source, key


async def new_telegram_secret(session: AsyncSession, source_id: UUID) -> str | None:
    """A secret for the source's Telegram webhook (not its key: Telegram sees it), shown once,
    stored hashed; the previous one stops working at once."""
    source = await session.get(Source, source_id, with_for_update=True)
    if source is None:
        return None
    secret = secrets.token_urlsafe(32)
    source.telegram_secret_hash, source.updated_at = hash_key(secret), utcnow()
    await session.flush()
    return secret


async def set_telegram_bot_token(
    session: AsyncSession, source_id: UUID, sealed: str | None, ends: str | None
) -> Source | None:
    """The source's bot token, `sealed` (`shared.sealing`), or none (None): its bot then stays silent."""
    source = await session.get(Source, source_id, with_for_update=True)
    if source is None:
        return None
    source.telegram_bot_token, source.telegram_bot_token_ends, source.updated_at = sealed, ends, utcnow()
    await session.flush()
    return source


async def authenticate_source(session: AsyncSession, key: str) -> Source | None:
    """The active source holding `key`, or None (callers must not say which check failed).
    Keys are looked up by their SHA-256: a timing difference can only reveal bits of a hash
    of a 256-bit random key, so no constant-time comparison is needed on top."""
    source = (await session.exec(select(Source).where(Source.key_hash == hash_key(key)))).first()
    return source if source is not None and source.active else None


async def origin_allowed_anywhere(session: AsyncSession, origin: str) -> bool:
    """Whether an active source lists `origin` (a preflight carries no key to say which)."""
    allowed = col(Source.allowed_origins).contains([origin.rstrip("/")])
    query = select(Source.id).where(col(Source.active), allowed).limit(1)
    return (await session.exec(query)).first() is not None


async def get_source(session: AsyncSession, source_id: UUID) -> Source | None:
    return await session.get(Source, source_id)


ORDER = (col(Source.created_at), col(Source.id))  # a page's order: unique, oldest first


async def list_sources(session: AsyncSession, cursor: str | None, limit: int) -> list[Source]:
    """A page of sources, oldest first (`shared.paging`)."""
    query = keyset(select(Source), ORDER, cursor, limit)
    return list((await session.exec(query)).all())
