"""The ingest FastAPI app; its lifespan runs the group committer, the outbox relay, the
idempotency-key purge and the Telegram replies' retries."""

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import idempotency, imports, lead_lookup, spam
from services.ingest.api import routers
from services.ingest.api.cors import HeadersOnEveryAnswer
from services.ingest.api.form_pages import TooLongFormPage, no_such_form_page
from services.ingest.config import IngestSettings
from services.ingest.history import LeadNotFound, NotInScope
from services.ingest.idempotency import KeyReused
from services.ingest.lead_lookup import Contacts
from services.ingest.models import Source
from services.ingest.refused_posts import RefusedPosts
from services.ingest.source_cache import SourceCache
from services.ingest.telegram_bot import TelegramBot
from shared.events import utcnow
from shared.group_commit import GroupCommitter
from shared.http import problem
from shared.lead_keys import ring_keys
from shared.ratelimit import RateLimits
from shared.resealing import reseal_columns
from shared.service import ServiceRuntime
from shared.service_app import create_service_app

# The sources' bot tokens, sealed again with LEADFLOW_SECRET_KEY at the start after it changed.
BOT_TOKENS = {Source.__table__: ("telegram_bot_token",)}  # type: ignore[attr-defined]


def create_app(settings: IngestSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """`clock`: the time dates sent are checked against (none may be a day ahead of it), and
    the Telegram bot's replies are tried again by."""
    # Ingest keeps taking leads while the broker is away (the outbox holds them), so a
    # broker outage is reported by /readyz but does not take ingest out of service.
    runtime = ServiceRuntime("ingest", settings, needs_broker=False)
    ring_keys(runtime.db, settings.admin_token_value)  # scoring has a new lead's key before its event
    committer = GroupCommitter(runtime.db, before_group=_prefetch_leads)
    runtime.add_loop(committer.run)
    hours = settings.idempotency_hours
    runtime.add_periodic("idempotency purge", 3600, lambda: idempotency.forget_older_than(runtime.db, hours))
    days = settings.spam_days
    runtime.add_periodic("spam purge", 3600, lambda: spam.forget_older_than(runtime.db, days))
    stalled = settings.import_stall_seconds
    runtime.add_periodic(
        "abandoned imports", min(60, stalled / 2), lambda: imports.mark_abandoned(runtime.db, stalled)
    )
    bot = TelegramBot(
        settings.telegram_api_url,
        settings.telegram_timeout_seconds,
        settings.box,
        runtime.telemetry.registry,
        runtime.db,
        clock,
        settings.telegram_retry_poll_seconds,
    )
    runtime.add_loop(bot.run)
    runtime.at_start(lambda: _reseal_bot_tokens(runtime, settings), "sealing bot tokens again")
    larger = {"/v1/imports": settings.max_import_bytes}
    app = create_service_app(runtime, "Leadflow ingest", routers, larger_bodies=larger)
    app.state.committer = committer
    app.state.clock = clock
    app.state.sources = SourceCache(runtime.db)
    app.state.telegram_bot = bot
    per_ip, per_form_post = settings.rate_limit_per_ip_other, settings.rate_limit_per_ip
    app.state.limits = RateLimits(settings.rate_limit_per_key, per_ip, per_form_post)
    app.state.refused_posts = RefusedPosts(runtime.telemetry.registry)
    app.add_exception_handler(RequestValidationError, no_such_form_page)  # else as any service's
    app.add_exception_handler(KeyReused, _key_reused)
    app.add_exception_handler(LeadNotFound, _lead_not_found)
    app.add_exception_handler(NotInScope, _not_in_scope)
    app.add_middleware(TooLongFormPage, sources=app.state.sources)  # outside the body's bound
    app.add_middleware(HeadersOnEveryAnswer)  # outside the handlers: errors carry a form's CORS
    return app


async def _reseal_bot_tokens(runtime: ServiceRuntime, settings: IngestSettings) -> None:
    await reseal_columns(runtime.db, settings.box, BOT_TOKENS, "Telegram bot tokens")


async def _prefetch_leads(session: AsyncSession, hints: list[Contacts]) -> None:
    await lead_lookup.prefetch(session, [contact for contacts in hints for contact in contacts])


async def _key_reused(request: Request, error: Exception) -> Response:
    assert isinstance(error, KeyReused)
    errors = [{"field": error.field, "reason": "already used for a different request", "type": "value_error"}]
    return problem(422, f"{error.field} reused", f"Use a new {error.field} for a new request.", errors=errors)


async def _lead_not_found(request: Request, error: Exception) -> Response:
    assert isinstance(error, LeadNotFound)
    if error.erased:
        return problem(410, "Lead erased", "This lead was erased at the person's request.")
    return problem(404, "No such lead")


async def _not_in_scope(request: Request, error: Exception) -> Response:
    return problem(403, "Not allowed for this key", str(error))
