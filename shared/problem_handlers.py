"""The app's answers to errors: each a problem response (422, 503, 500), none with an error's text."""

import asyncio
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import CommitUnknown
from shared.faults import TRANSIENT_ERRORS, is_transient
from shared.http import InvalidInput, field_name, invalid_input_problem, problem, validator_words, where
from shared.ratelimit import RateLimited

log = logging.getLogger(__name__)


def _not_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type != "application/json" and not media_type.endswith("+json")


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    if error["type"] == "json_invalid":
        # FastAPI puts the character position where the field goes (`("body", 9)`): it is the
        # body that is malformed, and where and why are its reason (the parser's words, no input).
        position, why = error["loc"][-1], error.get("ctx", {}).get("error", "")
        reason = f"is not valid JSON: {why} at character {position}" if why else "is not valid JSON"
        return {"field": "body", "reason": reason, "type": "json_invalid"}
    reason = validator_words(error["msg"])
    return {"field": field_name(tuple(error["loc"])), "reason": reason, "type": error["type"]}


async def validation_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if _not_json(request) and any(tuple(e["loc"]) == ("body",) for e in error.errors()):
        # `curl -d` sends a form's content type: the body was never read as JSON, so "Input
        # should be a valid dictionary" would blame a body that may well be right.
        return problem(415, "Send the body as application/json")
    errors = [_field_error(e) for e in error.errors()]
    return problem(422, "Request is invalid", "See `errors` for each field.", errors=errors)


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


async def _rate_limited(request: Request, error: Exception) -> Response:
    assert isinstance(error, RateLimited)
    return problem(429, "Too many requests", headers={"Retry-After": str(error.retry_after)})


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
    app.add_exception_handler(RequestValidationError, validation_problem)
    app.add_exception_handler(InvalidInput, _invalid_input_problem)
    app.add_exception_handler(HTTPException, _http_problem)
    # Registered per class so they are answered here; Starlette re-raises what reaches the
    # catch-all `Exception` handler after answering it.
    for error_type in (*TRANSIENT_ERRORS, DBAPIError):
        app.add_exception_handler(error_type, _dependency_problem)
    app.add_exception_handler(CommitUnknown, _commit_unknown)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(Exception, _unexpected_problem)  # for errors outside AnswerUnexpected
    app.add_middleware(AnswerUnexpected)
