"""The pages a browser's own form post is answered with when it is not taken: in the visitor's
language, not the problem's English JSON a script reads (`{"title":"No such form"}` lost the
visitor's enquiry without a word they could read)."""

import html
from uuid import UUID

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.source_cache import SourceCache
from shared.languages import Language, browser_languages, choose, page, say
from shared.problem_handlers import validation_problem

FORMS = "/v1/forms"  # the form route's prefix (forms.py)
TOO_LARGE = 413


def wants_a_page(accept: str) -> bool:
    """A browser's own form post asks for HTML; a script's fetch() for JSON, or for anything."""
    return "text/html" in accept and "application/json" not in accept


def notice(
    language: Language, title: str, text: str, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A page in `language` saying the texts `title` and `text` (texts.yaml), with a way back."""
    body = page(
        language,
        say(title, language),
        f"<h1>{html.escape(say(title, language))}</h1>",
        f"<p>{html.escape(say(text, language))}</p>",
        f'<p><a href="javascript:history.back()">{html.escape(say("form_back", language))}</a></p>',
    )
    return HTMLResponse(body, status_code=status, headers={"Content-Language": language} | (headers or {}))


class TooLongFormPage:
    """A browser's own form post over the body's bound is shown a page in the visitor's language
    (the form's source's, else the browser's) asking for a shorter message, in place of the 413's
    problem+json. The bound is kept before any route reads the body (`shared.http.BodySizeLimit`),
    so the page replaces its answer on the way out; any other request's 413 passes as it is."""

    def __init__(self, app: ASGIApp, sources: SourceCache) -> None:
        self.app, self.sources = app, sources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source_id = _form_posted_by_a_browser(scope)
        if source_id is None:
            await self.app(scope, receive, send)
            return
        replaced = False

        async def sending(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == TOO_LARGE:
                replaced = True
                await (await self._page(scope, source_id))(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, sending)

    async def _page(self, scope: Scope, source_id: UUID) -> HTMLResponse:
        source = await self.sources.by_id(source_id)
        browser = browser_languages(Headers(scope=scope).get("accept-language"))
        language = choose(source.default_language if source else None, *browser)
        return notice(language, "form_too_long_title", "form_too_long_text", TOO_LARGE)


async def no_such_form_page(request: Request, error: Exception) -> Response:
    """A browser's own post to a form address whose id is no id at all (cut short, mistyped) is
    shown the page a form taking no enquiries shows, in the browser's language; anything else
    that fails validation is answered as on any route (`validation_problem`)."""
    assert isinstance(error, RequestValidationError)
    cut = any(tuple(e["loc"]) == ("path", "source_id") for e in error.errors())
    posted = request.method == "POST" and request.url.path.startswith(f"{FORMS}/")
    if cut and posted and wants_a_page(request.headers.get("accept", "")):
        language = choose(*browser_languages(request.headers.get("accept-language")))
        return notice(language, "form_gone_title", "form_gone_text", 404)
    return await validation_problem(request, error)


def _form_posted_by_a_browser(scope: Scope) -> UUID | None:
    """The source id of a browser's own post to a form, or None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    prefix, _, source_id = scope["path"].rpartition("/")
    if prefix != FORMS or not wants_a_page(Headers(scope=scope).get("accept", "")):
        return None
    try:
        return UUID(source_id)
    except ValueError:
        return None
