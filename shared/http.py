"""HTTP plumbing: RFC 9457 problem responses, admin auth, body size limit, health and metrics routes."""

import asyncio
import hmac
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import CommitUnknown
from shared.faults import TRANSIENT_ERRORS, is_transient
from shared.inputs import unstorable

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


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


async def _validation_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": field_name(tuple(e["loc"])), "reason": e["msg"], "type": e["type"]} for e in error.errors()
    ]
    return problem(422, "Request is invalid", "See `errors` for each field.", errors=errors)


class InvalidInput(Exception):
    """Input that parsed but breaks a rule; answered as 422 naming each field."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = errors


def invalid_input_problem(error: InvalidInput, headers: dict[str, str] | None = None) -> JSONResponse:
    errors = [{"field": f, "reason": r, "type": "value_error"} for f, r in error.errors]
    return problem(422, "Request is invalid", "See `errors` for each field.", headers=headers, errors=errors)


async def _invalid_input_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidInput)
    return invalid_input_problem(error)


def _unreadable_body(cause: BaseException | None) -> str | None:
    """Why FastAPI could not read a JSON body, where it answers only "There was an error parsing
    the body" (a 400): said as a 422 naming the body, as a malformed one is."""
    if isinstance(cause, RecursionError):
        return "is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "is not valid UTF-8"
    return None


async def _http_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and (reason := _unreadable_body(error.__cause__)):
        return invalid_input_problem(InvalidInput([("body", reason)]))
    headers = dict(error.headers) if error.headers else None
    return problem(error.status_code, error.detail or "Error", headers=headers)


class _OutageLog:
    """During an outage every request fails the same way: log the first failure, then one
    line every `every_seconds` with how many requests were turned away meanwhile."""

    def __init__(self, every_seconds: float = 5.0) -> None:
        self.every_seconds = every_seconds
        self._last = -every_seconds
        self._unlogged = 0

    def failed(self, error: Exception) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last < self.every_seconds:
            self._unlogged += 1
            return
        log.warning("dependency unavailable (%d more since last report): %r", self._unlogged, error)
        self._last, self._unlogged = now, 0


_outage_log = _OutageLog()


async def _dependency_problem(request: Request, error: Exception) -> Response:
    """An outage of the database or broker is a 503 with Retry-After, never a 500 or a hang."""
    if is_transient(error):
        _outage_log.failed(error)
        return problem(503, "Service temporarily unavailable", "Retry shortly.", headers={"Retry-After": "2"})
    return await _unexpected_problem(request, error)


async def _commit_unknown(request: Request, error: Exception) -> Response:
    """A commit lost with the connection: the work may have been stored. A request with an
    Idempotency-Key is safe to send again (it finds what was stored); any other is told to
    look before it does, and no Retry-After invites a client to send it twice."""
    if not is_transient(error):
        return await _unexpected_problem(request, error)
    _outage_log.failed(error)
    if request.headers.get("Idempotency-Key"):
        detail, headers = "Retry with the same Idempotency-Key.", {"Retry-After": "2"}
    else:
        detail, headers = (
            "The database did not confirm it: it may have been stored. Look before sending it again.",
            None,
        )
    return problem(503, "Service temporarily unavailable", detail, headers=headers)


async def _unexpected_problem(request: Request, error: Exception) -> Response:
    """A 500, logged by the error's type and where it was raised, not by its text: an error's
    text may quote the input (pydantic's `input_value='Aruzhan …'`), personal data included."""
    log.error(
        "unhandled error %s in %s %s\n%s",
        type(error).__name__,
        request.method,
        request.url.path,
        where(error),
    )
    return problem(500, "Internal error")


def where(error: BaseException, frames: int = 12) -> str:
    """The innermost `frames` of an error's traceback, files and lines only (no message)."""
    stack = traceback.extract_tb(error.__traceback__)[-frames:]
    return "\n".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in stack)


class AnswerUnexpected:
    """Answers an error no handler took with a 500 and does not raise it on, as Starlette does
    after its catch-all handler: the server would log the error's text, input and all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            response = await _unexpected_problem(Request(scope), error)
            if not started:  # else the answer is cut short; the log says why
                await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(InvalidInput, _invalid_input_problem)
    app.add_exception_handler(HTTPException, _http_problem)
    # Registered per class so they are answered here; Starlette re-raises what reaches the
    # catch-all `Exception` handler after answering it.
    for error_type in (*TRANSIENT_ERRORS, DBAPIError):
        app.add_exception_handler(error_type, _dependency_problem)
    app.add_exception_handler(CommitUnknown, _commit_unknown)
    app.add_exception_handler(Exception, _unexpected_problem)  # for errors outside AnswerUnexpected
    app.add_middleware(AnswerUnexpected)


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
    """Constant-time comparison of a bearer token with one we hold (None: none is accepted)."""
    if expected is None:
        return False
    return hmac.compare_digest(given.credentials.encode() if given else b"", expected.encode())


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request carries the admin token (constant-time check)."""
    return _matches(credentials, request.app.state.settings.admin_token_value)


def is_viewer(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request may read lead data: the viewer token or the admin token."""
    settings = request.app.state.settings
    return _matches(credentials, settings.viewer_token_value) | is_admin(request, credentials)


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin endpoints take `Authorization: Bearer <LEADFLOW_ADMIN_TOKEN>`."""
    if not is_admin(request, credentials):
        raise HTTPException(401, "Admin token missing or wrong", {"WWW-Authenticate": "Bearer"})


async def require_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Reads of lead data take `Authorization: Bearer <LEADFLOW_VIEWER_TOKEN>` (or the admin token)."""
    if not is_viewer(request, credentials):
        raise HTTPException(401, "Viewer or admin token missing or wrong", {"WWW-Authenticate": "Bearer"})


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


def health_router(
    checks: Mapping[str, Check],
    registry_of: Callable[[], Any],
    informational: frozenset[str] = frozenset(),
) -> APIRouter:
    """`/healthz` (process up), `/readyz` (each dependency answers; the `informational`
    ones are reported but do not make the service unready), `/metrics` (Prometheus)."""
    router = APIRouter(include_in_schema=False)

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
    except Exception as error:
        return f"failed: {type(error).__name__}"
