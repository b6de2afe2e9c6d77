"""HTTP plumbing: RFC 9457 problem responses, admin auth, body size limit, health and metrics routes."""

import asyncio
import hashlib
import hmac
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.error_docs import PROBLEM_JSON, answers
from shared.inputs import unstorable
from shared.query_parameters import AnyQuery
from shared.ratelimit import RateLimited


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, **extra}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_name(location: tuple[Any, ...]) -> str:
    """A validation error's location as the field a client sent, e.g. `utm.source`."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validator_words(message: str) -> str:
    """A validation error's message as its validator wrote it: pydantic puts "Value error, "
    before the text of a ValueError, which tells a client nothing (other messages are kept)."""
    return message.removeprefix("Value error, ")


VALUE_ERROR = "value_error"
# (field, reason) or (field, reason, type): the type is what a client acts on (a page showing
# the visitor its own words: `email_invalid`, `contact_missing`), whatever the reason's words.
Fault = tuple[str, str] | tuple[str, str, str]


class InvalidInput(Exception):
    """Input that parsed but breaks a rule; answered as 422 naming each field (reasons taken
    from pydantic's errors in its validators' words, wherever they are shown), each with its
    type (pydantic's where it came from pydantic, else value_error unless a rule names one)."""

    def __init__(self, errors: Sequence[Fault]) -> None:
        self.typed = [typed(fault) for fault in errors]
        self.errors = [(field, reason) for field, reason, _ in self.typed]
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.errors))


def typed(fault: Fault) -> tuple[str, str, str]:
    """(field, reason, type), in the validator's words, value_error unless a type is given."""
    field, reason, *kind = fault
    return field, validator_words(reason), kind[0] if kind else VALUE_ERROR


def invalid_input_problem(error: InvalidInput, headers: dict[str, str] | None = None) -> JSONResponse:
    errors = [{"field": f, "reason": r, "type": t} for f, r, t in error.typed]
    return problem(422, "Request is invalid", "See `errors` for each field.", headers=headers, errors=errors)


def where(error: BaseException, frames: int = 12) -> str:
    """The innermost `frames` of an error's traceback, files and lines only (no message)."""
    stack = traceback.extract_tb(error.__traceback__)[-frames:]
    return "\n".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in stack)


async def refuse_unstorable_parameters(request: Request) -> None:
    """Query and path parameters whose text PostgreSQL cannot store (a %00, say) are a 422
    naming the parameter; request bodies are checked by their models (shared.text)."""
    errors = [
        (name, reason)
        for name, value in (*request.query_params.multi_items(), *request.path_params.items())
        if isinstance(value, str) and (reason := unstorable(value))
    ]
    if errors:
        raise InvalidInput(errors)


_bearer = HTTPBearer(auto_error=False)


def _matches(given: HTTPAuthorizationCredentials | None, expected: str | None) -> bool:
    """Constant-time comparison of a bearer token with one we hold (None: none is accepted).
    Their SHA-256 digests are compared, equal in length whatever was sent: `compare_digest`
    on the tokens themselves returns at once when the lengths differ, which tells the length."""
    if expected is None:
        return False
    sent = hashlib.sha256(given.credentials.encode() if given else b"").digest()
    return hmac.compare_digest(sent, hashlib.sha256(expected.encode()).digest())


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request carries the admin token (constant-time check)."""
    return _matches(credentials, request.app.state.settings.admin_token_value)


def is_viewer(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request may read lead data: the viewer token or the admin token."""
    settings = request.app.state.settings
    return _matches(credentials, settings.viewer_token_value) | is_admin(request, credentials)


@answers(401, 403, 429)
async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin endpoints take `Authorization: Bearer <LEADFLOW_ADMIN_TOKEN>`. The viewer token is a
    403: its holder is known and only reads, so "missing or wrong" would send them looking for a
    typo. Both comparisons are made whatever is sent; the answer says no more than which it was."""
    await _refuse_guessers(request, credentials)
    viewer = _matches(credentials, request.app.state.settings.viewer_token_value)
    if is_admin(request, credentials):
        return
    if viewer:
        raise HTTPException(403, "This needs the admin token; the viewer token only reads")
    await _count_guess(request, credentials)
    raise HTTPException(401, "Admin token missing or wrong", {"WWW-Authenticate": "Bearer"})


@answers(401, 429)
async def require_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Reads of lead data take `Authorization: Bearer <LEADFLOW_VIEWER_TOKEN>` (or the admin token)."""
    await _refuse_guessers(request, credentials)
    if not is_viewer(request, credentials):
        await _count_guess(request, credentials)
        raise HTTPException(401, "Viewer or admin token missing or wrong", {"WWW-Authenticate": "Bearer"})


@answers(429)
async def admin_if_sent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> bool:
    """Whether the request carries the admin token, on a route that takes another proof too (a
    rep's acknowledgement, with the token from their webhook). A wrong token sent is counted as
    a guess, as on the admin routes: this door must not be the one where guessing goes at speed."""
    await _refuse_guessers(request, credentials)
    if is_admin(request, credentials):
        return True
    if not _matches(credentials, request.app.state.settings.viewer_token_value):
        await _count_guess(request, credentials)
    return False


# Wrong tokens are counted per client (an IPv4 address, an IPv6 /64: `shared.ratelimit`), in
# `app.state.token_guesses` (LEADFLOW_FAILED_TOKENS_PER_IP). Past that budget every token the
# client sends is a 429 until the window passes, the right one too: were only the wrong ones
# refused, a right guess would still be let in, and guessing would go on at speed.


async def _refuse_guessers(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    if credentials is not None:
        with _told_as_guesses():
            await request.app.state.token_guesses.refuse_spent_ip(_client(request))


async def _count_guess(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    if credentials is not None:  # none sent is no guess (a browser that has not asked for one yet)
        with _told_as_guesses():
            await request.app.state.token_guesses.check_ip(_client(request))


@contextmanager
def _told_as_guesses() -> Iterator[None]:
    """A 429 that says why: an operator whose service sends a stale token sees what to fix."""
    try:
        yield
    except RateLimited as held:
        retry = {"Retry-After": str(held.retry_after)}
        raise HTTPException(
            429, "Too many wrong tokens from this address; send the right one later", retry
        ) from None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Admin = Depends(require_admin)
Viewer = Depends(require_viewer)


class BodySizeLimit:
    """Refuses request bodies over `max_bytes` with 413, whether or not Content-Length is sent.
    `larger` gives some paths (file uploads) their own limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app, self.default_max, self.larger = app, max_bytes, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope["path"], self.default_max)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._too_large(scope, receive, send, max_bytes)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise HTTPException(413, f"Request body is larger than {max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = problem(413, f"Request body is larger than {max_bytes} bytes")
        await response(scope, receive, send)


Check = Callable[[], Awaitable[None]]


class NotReady(Exception):
    """A check's own reason, shown in /readyz as it is: it names no address or value, so anyone
    may read it (another error shows only its type: its text may quote a host or a user)."""


def health_router(
    checks: Mapping[str, Check],
    registry_of: Callable[[], Any],
    informational: frozenset[str] = frozenset(),
) -> APIRouter:
    """`/healthz` (process up), `/readyz` (each dependency answers; the `informational`
    ones are reported but do not make the service unready), `/metrics` (Prometheus). Any query
    parameter is ignored: probes and scrapers we do not configure add their own."""
    router = APIRouter(include_in_schema=False, dependencies=[AnyQuery])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> Response:
        results = await asyncio.gather(*(_run_check(c) for c in checks.values()))
        report = dict(zip(checks, results, strict=True))
        ready = all(r == "ok" for name, r in report.items() if name not in informational)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": report},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics")
    async def metrics(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Response:
        """Open where only this machine reaches the service (or LEADFLOW_PUBLIC_METRICS=true);
        elsewhere it takes the viewer or admin token, as a Prometheus scrape can send."""
        if not request.app.state.settings.public_metrics:
            await require_viewer(request, credentials)
        return Response(generate_latest(registry_of()), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run_check(check: Check) -> str:
    try:
        async with asyncio.timeout(2.0):
            await check()
        return "ok"
    except NotReady as error:
        return f"failed: {error}"
    except Exception as error:
        return f"failed: {type(error).__name__}"
