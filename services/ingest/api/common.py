"""What every ingest route shares: the source behind a key, the client, limits, idempotency."""

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import idempotency
from services.ingest.api.cors import answer_with, cors_headers
from services.ingest.capture import Client
from services.ingest.idempotency import Answer
from services.ingest.lead_lookup import Contacts
from services.ingest.models import Source
from services.ingest.source_cache import SourceCache
from shared.error_docs import answers
from shared.group_commit import GroupCommitter
from shared.ratelimit import RateLimited

log = logging.getLogger(__name__)
UNAUTHORIZED = "Source key missing, unknown or disabled"
ANOTHER_SOURCE = "This source key is another source's: the path names a source it is not"
MAX_KEY_LENGTH = 200
# The document's security scheme; read by hand so a missing key is our 401, not FastAPI's 403.
_source_key = APIKeyHeader(name="X-Source-Key", scheme_name="SourceKey", auto_error=False)


def client_of(request: Request) -> Client:
    """The sender's address (behind a trusted proxy, uvicorn puts the forwarded one here)."""
    host = request.client.host if request.client else None
    return Client(ip=host, user_agent=(request.headers.get("user-agent") or "")[:500] or None)


@answers(429)
async def check_ip(request: Request) -> None:
    """A request ingest takes without a key (a preflight, Telegram's webhook) or a failed key
    check, counted against the client's address (LEADFLOW_RATE_LIMIT_PER_IP_OTHER)."""
    await request.app.state.limits.check_ip(client_of(request).ip or "unknown")


async def check_form_post(request: Request) -> None:
    """A public form post, counted against the client's address (LEADFLOW_RATE_LIMIT_PER_IP).
    Behind a proxy LEADFLOW_TRUSTED_PROXIES does not name, every visitor has the proxy's
    address and one budget for all, a few posts a minute: a post held so, carrying the proxy's
    X-Forwarded-For, is logged (a line a minute at most) so that an operator sees why."""
    try:
        await request.app.state.limits.check_form_post(client_of(request).ip or "unknown")
    except RateLimited:
        proxies = request.app.state.settings.trusted_proxies.strip()
        if not proxies and "x-forwarded-for" in request.headers and _untrusted_proxy_log.due():
            log.warning(
                "form posts held by LEADFLOW_RATE_LIMIT_PER_IP come through a proxy (X-Forwarded-For)"
                " that LEADFLOW_TRUSTED_PROXIES does not name: every visitor behind it shares one"
                " address's budget; name the proxy"
            )
        raise


class _Throttle:
    """True at most once every `every_seconds`."""

    def __init__(self, every_seconds: float) -> None:
        self.every_seconds = every_seconds
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every_seconds:
            return False
        self._last = now
        return True


_untrusted_proxy_log = _Throttle(60.0)


@answers(401, 429)
async def keyed_source(
    request: Request, x_source_key: Annotated[str | None, Security(_source_key)] = None
) -> Source:
    """The source whose key is in `X-Source-Key`; 401 alike for missing, unknown or disabled
    keys (one over 200 characters is no key of ours). Failed attempts count against the
    client's IP, so keys cannot be guessed at speed."""
    cache: SourceCache = request.app.state.sources
    key = x_source_key or ""
    source = await cache.authenticate(key) if len(key) <= MAX_KEY_LENGTH else None
    if source is None:
        await check_ip(request)
        raise HTTPException(401, UNAUTHORIZED)
    answer_with(request.scope, cors_headers(source, request.headers.get("origin")))  # a page's key
    await request.app.state.limits.check_key(str(source.id))
    return source


KeyedSource = Annotated[Source, Depends(keyed_source)]


@answers(415)
async def require_json(request: Request) -> None:
    """JSON routes refuse other bodies with 415 rather than guessing."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(415, "Send the body as application/json")


JsonBody = Depends(require_json)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="A retry with the same key gets the first answer and changes nothing (kept 48 h).",
    ),
]


async def run_once(
    request: Request,
    source_id: UUID,
    keys: Mapping[str, str | None],
    payload: Callable[[], Any],  # the request, for the keys' fingerprint (made only with a key)
    work: Callable[[AsyncSession], Awaitable[Answer]],
    contacts: Contacts = (),
) -> JSONResponse:
    """`answer_once`, answered as JSON (`Idempotent-Replayed: true` on a retry)."""
    answer = await answer_once(request, source_id, keys, payload, work, contacts)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


async def answer_once(
    request: Request,
    source_id: UUID,
    keys: Mapping[str, str | None],
    payload: Callable[[], Any],
    work: Callable[[AsyncSession], Awaitable[Answer]],
    contacts: Contacts = (),
    windows: Mapping[str, timedelta] | None = None,
) -> Answer:
    """Run `work` in a group-committed transaction, once per key: `keys` maps what the client
    sent each as (`Idempotency-Key`, a body's `event_id`) to the key, None where not sent. A
    retry of the same request under any of them gets the stored first answer, and a key reused
    for another request is a 422 naming what it was sent as. A key is remembered for
    LEADFLOW_IDEMPOTENCY_HOURS, or for its field's while in `windows` (a key ingest made of
    the request itself: `idempotency.repeat_key`).
    `contacts`: the (email, phone) pairs the work will look up, fetched for the whole group."""
    committer: GroupCommitter = request.app.state.committer
    named = {field: key for field, key in keys.items() if key is not None}
    if not named:
        return await committer.submit(work, contacts)
    digest = idempotency.fingerprint(payload())
    remembered = timedelta(hours=request.app.state.settings.idempotency_hours)
    within = {field: (windows or {}).get(field, remembered) for field in named}

    async def once(session: AsyncSession) -> Answer:
        for field, key in named.items():
            try:
                prior = await idempotency.recall(session, source_id, key, digest, within[field])
            except idempotency.KeyReused as error:
                raise idempotency.KeyReused(key, field) from error
            if prior is not None:
                return prior
        answer = await work(session)
        for key in dict.fromkeys(named.values()):  # the same text sent as both is one key
            idempotency.remember(session, source_id, key, digest, answer)
        return answer

    return await committer.submit(once, contacts)
