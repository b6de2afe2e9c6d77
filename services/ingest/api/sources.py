"""Admin routes for sources: create, list, read, change, rotate the key."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from services.ingest import sources
from services.ingest.embed import form_snippet
from services.ingest.models import Source
from services.ingest.source_schemas import (
    SourceCreate,
    SourceCreated,
    SourcePublic,
    SourceSettings,
    TelegramBotToken,
    TelegramSecret,
)
from shared import paging
from shared.db import Database
from shared.http import Admin, problem
from shared.languages import Language, choose

router = APIRouter(prefix="/v1/sources", tags=["sources"], dependencies=[Admin])


def _db(request: Request) -> Database:
    db: Database = request.app.state.runtime.db
    return db


def _public(source: Source | None) -> SourcePublic:
    if source is None:
        raise HTTPException(404, "No such source")
    return SourcePublic(
        **source.model_dump(exclude={"telegram_bot_token"}),
        telegram_secret_set=source.telegram_secret_hash is not None,
        telegram_bot_token_set=source.telegram_bot_token is not None,
    )


@router.post("", status_code=201, response_model=SourceCreated)
async def create_source(request: Request, data: SourceCreate) -> SourceCreated:
    async with _db(request).transaction() as session:
        source, key = await sources.create_source(session, data)
    return SourceCreated(**_public(source).model_dump(), key=key)


@router.get("", response_model=list[SourcePublic])
async def list_sources(
    request: Request, response: Response, limit: paging.Limit = 100, cursor: paging.Cursor = None
) -> list[SourcePublic]:
    """The sources, oldest first, a page at a time; while more follow, the answer carries
    `Link: <…>; rel="next"` (RFC 8288)."""
    async with _db(request).transaction() as session:
        found = await sources.list_sources(session, cursor, limit)
    return [_public(s) for s in paging.page(found, limit, request, response, lambda s: (s.created_at, s.id))]


@router.get("/{source_id}", response_model=SourcePublic)
async def get_source(request: Request, source_id: UUID) -> SourcePublic:
    async with _db(request).transaction() as session:
        return _public(await sources.get_source(session, source_id))


@router.patch("/{source_id}", response_model=SourcePublic)
async def update_source(request: Request, source_id: UUID, data: SourceSettings) -> SourcePublic:
    """Change settings; `active: false` disables the source and its key."""
    async with _db(request).transaction() as session:
        source = await sources.update_source(session, source_id, data)
    request.app.state.sources.forget(source_id)
    return _public(source)


@router.post("/{source_id}/rotate-key", response_model=SourceCreated)
async def rotate_key(request: Request, source_id: UUID) -> SourceCreated:
    """A new key, shown once; the old one stops working."""
    async with _db(request).transaction() as session:
        rotated = await sources.rotate_key(session, source_id)
    if rotated is None:
        raise HTTPException(404, "No such source")
    request.app.state.sources.forget(source_id)
    source, key = rotated
    return SourceCreated(**_public(source).model_dump(), key=key)


@router.post("/{source_id}/telegram-secret", response_model=TelegramSecret)
async def telegram_secret(request: Request, source_id: UUID) -> TelegramSecret:
    """The secret Telegram sends with each update (`setWebhook` with this `secret_token`):
    shown once; a new one replaces it at once."""
    async with _db(request).transaction() as session:
        secret = await sources.new_telegram_secret(session, source_id)
    if secret is None:
        raise HTTPException(404, "No such source")
    request.app.state.sources.forget(source_id)
    return TelegramSecret(telegram_secret=secret)


NO_SEALING_KEY = (
    "Set LEADFLOW_SECRET_KEY on ingest (the same as nurture's) and restart it: a bot token is"
    " sealed with it, and others reach this ingest, so a key made from the admin token will not do."
)


@router.put(
    "/{source_id}/telegram-bot-token",
    response_model=SourcePublic,
    responses={409: {"description": "Ingest has no LEADFLOW_SECRET_KEY to seal the token with"}},
)
async def set_telegram_bot_token(request: Request, source_id: UUID, data: TelegramBotToken) -> Response:
    """The token of the company's Telegram bot (from @BotFather): with it, the bot answers a
    person who writes with no phone or email known yet, asking for their contact with a
    button, and thanks them once it comes. Stored sealed; never shown again."""
    settings = request.app.state.settings
    if settings.exposed and settings.secret_key is None:
        return problem(409, "LEADFLOW_SECRET_KEY is not set", NO_SEALING_KEY)
    token = data.telegram_bot_token.get_secret_value()
    sealed = request.app.state.settings.box.seal(token)
    async with _db(request).transaction() as session:
        source = await sources.set_telegram_bot_token(session, source_id, sealed, token[-4:])
    request.app.state.sources.forget(source_id)
    return JSONResponse(_public(source).model_dump(mode="json"))


@router.delete("/{source_id}/telegram-bot-token", response_model=SourcePublic)
async def clear_telegram_bot_token(request: Request, source_id: UUID) -> SourcePublic:
    """The bot token forgotten: the bot is silent again, as a source without one."""
    async with _db(request).transaction() as session:
        source = await sources.set_telegram_bot_token(session, source_id, None, None)
    request.app.state.sources.forget(source_id)
    return _public(source)


@router.get("/{source_id}/embed", response_class=HTMLResponse)
async def embed(request: Request, source_id: UUID, language: Language | None = None) -> HTMLResponse:
    """The source's form as HTML to paste into its site, in `language` (default: the source's
    own, else English): it posts to this service's form route (LEADFLOW_INGEST_PUBLIC_URL, else
    the address this was asked at), sends the page's address for its UTM tags, and carries the
    honeypot. Add the site's origin to `allowed_origins` to refuse posts from other sites."""
    async with _db(request).transaction() as session:
        source = await sources.get_source(session, source_id)
    if source is None:
        raise HTTPException(404, "No such source")
    base = request.app.state.settings.public_url or str(request.base_url)
    action = f"{base.rstrip('/')}/v1/forms/{source.id}"
    return HTMLResponse(form_snippet(source, action, choose(language, source.default_language)))
