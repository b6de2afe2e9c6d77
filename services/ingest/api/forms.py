"""Public form endpoint: plain HTML forms and fetch() from landing pages (CORS per source)."""

import html
from typing import Annotated
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID, uuid4

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import form_charsets, idempotency, refused_posts
from services.ingest.api.common import IdempotencyKey, answer_once, check_form_post, check_ip, client_of
from services.ingest.api.cors import allowed, answer_with, cors_headers, preflight_headers
from services.ingest.api.form_pages import FORMS, notice, wants_a_page
from services.ingest.capture import Client, capture, prepare
from services.ingest.form_errors import in_visitors_words
from services.ingest.forms import is_spam, lead_from_form, spam_contact
from services.ingest.idempotency import Answer
from services.ingest.models import Source, SpamSubmission
from services.ingest.normalize import phone_region
from shared.db import defer_insert
from shared.events import utcnow
from shared.http import Fault, InvalidInput, invalid_input_problem, problem
from shared.inputs import UNSTORABLE, unstorable
from shared.languages import Language, browser_languages, choose, page, say
from shared.query_parameters import AnyQuery
from shared.ratelimit import RateLimited

# A landing page's form may post to an action URL carrying its own utm_* or gclid: not refused.
router = APIRouter(prefix=FORMS, tags=["forms"], dependencies=[AnyQuery])
NO_FORM = "No such form"
FOREIGN_ORIGIN = "This form does not accept posts from that origin"
NO_ORIGIN = (
    "This form takes posts from its site's pages only, and this one named no origin (a browser"
    " names it); a server sends leads to POST /v1/leads with the source's key"
)
SAME_POST = "the same form post"  # what a form post's own key stands for (`_take_lead`)
WITHHELD = "null"  # the Origin a browser sends in place of one it will not tell
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELDS = 200
# Read by the route, so FastAPI would declare no body: Swagger's "Try it out" and generated
# clients could not send the form.
FORM = {
    "type": "object",
    "description": "The form's fields: lead fields by any name a form builder gives them"
    " (`name`, `email`, `phone`, `your-email`, `Телефон`…), `utm_*`, `consent`, and `_hp`, the"
    " honeypot, left empty. Other fields are kept as custom fields; files are left out.",
    "additionalProperties": {"type": "string"},
}
FORM_BODY = {
    "requestBody": {"required": True, "content": {media_type: {"schema": FORM} for media_type in FORM_TYPES}}
}


async def _source(request: Request, source_id: UUID, origin: str | None, *, post: bool) -> Source:
    """The form's source. It is looked up before the client's rate limit is checked (an
    unknown id costs one lookup, as a wrong key does), so that the 429 carries its CORS. A post
    counts in the client's budget of form posts, a preflight in that of other requests."""
    source: Source | None = await request.app.state.sources.by_id(source_id)
    if source is not None:
        answer_with(request.scope, cors_headers(source, origin))
    await (check_form_post(request) if post else check_ip(request))
    if source is None:
        raise HTTPException(404, NO_FORM)
    return source


def _refusal(source: Source, origin: str | None) -> str | None:
    """Why a source with allowed origins refuses a post, or None. A browser names the page's
    origin on every POST, a plain form's too; a post naming none is a script's or a server's
    (a bot's, mostly: a site's server sends leads to POST /v1/leads with the source's key). A
    browser sends `Origin: null` when it withholds the page's origin (a page with
    `Referrer-Policy: no-referrer`, a sandboxed frame): taken, since the visitor on such a page
    is as real as any (a script could as well name the right origin); it reads no answer (no
    CORS for null)."""
    if not source.allowed_origins or origin == WITHHELD:
        return None
    if origin is None:
        return refused_posts.NO_ORIGIN
    return None if allowed(source, origin) else refused_posts.FOREIGN_ORIGIN


async def _refuse_origin(
    request: Request, source: Source, origin: str | None, reason: str, accept: str
) -> Response:
    """403, told to the operator (`refused_posts`). The visitor of a plain HTML form is shown a
    page in their language, a script gets the problem."""
    request.app.state.refused_posts.refused(source, reason, origin)
    if not wants_a_page(accept):
        return problem(403, FOREIGN_ORIGIN if reason == refused_posts.FOREIGN_ORIGIN else NO_ORIGIN)
    language = await _visitors_language(request, source.default_language)
    return notice(language, "form_refused_title", "form_refused_text", 403)


async def _held(request: Request, source_id: UUID, held: RateLimited) -> Response:
    """429 to a browser's own form post: a page in the visitor's language asking them to send
    it again in a few minutes (with the limit's Retry-After), not the problem's English JSON. A
    person meets it only behind an address many post from (a mobile carrier's, an office's)."""
    source: Source | None = await request.app.state.sources.by_id(source_id)
    if source is None:
        raise held
    language = await _visitors_language(request, source.default_language)
    return notice(language, "form_held_title", "form_held_text", 429, {"Retry-After": str(held.retry_after)})


async def _gone(request: Request, source_id: UUID) -> Response:
    """404 to a browser's own form post (a source switched off, a mistyped form URL): a page in
    the visitor's language asking them to get in touch another way, not "No such form" in
    English JSON. The language is the page's own, else the switched-off source's, else the
    browser's."""
    language = await _visitors_language(request, await request.app.state.sources.language_of_any(source_id))
    return notice(language, "form_gone_title", "form_gone_text", 404)


def _language(request: Request, fields: list[tuple[str, str]], site_language: str | None) -> Language:
    """The page's own `language` field, its site's, else what the visitor's browser reads."""
    browser = browser_languages(request.headers.get("accept-language"))
    return choose(dict(fields).get("language"), site_language, *browser)


async def _visitors_language(request: Request, site_language: str | None) -> Language:
    """`_language` of a post whose fields are not otherwise read (none, for a body that is no form)."""
    try:
        fields = await _form_fields(request, site_language)
    except HTTPException:
        fields = []
    return _language(request, fields, site_language)


@router.options("/{source_id}", include_in_schema=False)
async def preflight(
    request: Request, source_id: UUID, origin: Annotated[str | None, Header()] = None
) -> Response:
    source = await _source(request, source_id, origin, post=False)
    if not allowed(source, origin):
        raise HTTPException(403, FOREIGN_ORIGIN)
    return Response(status_code=204, headers=preflight_headers(str(origin), "content-type, idempotency-key"))


@router.post(
    "/{source_id}",
    status_code=303,
    responses={
        202: {"description": "Accepted (when the client asks for JSON)"},
        303: {"description": "To the source's redirect URL"},
        403: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The source takes posts from other origins only (or from a browser"
            " only, and this post named no origin): a page in the visitor's language for a"
            " browser, else a problem",
        },
        404: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "No such form (no active source with this id): a page in the"
            " visitor's language for a browser, else a problem",
        },
        413: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The post is over the body's bound (LEADFLOW_MAX_BODY_BYTES): a page"
            " in the visitor's language for a browser, else a problem (`form_pages`)",
        },
        422: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "A field refused: a page in the"
            " visitor's language for a browser, else a problem naming each field",
        },
        429: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "Too many form posts from the client's address: a page in the"
            " visitor's language for a browser, else a problem (Retry-After either way)",
        },
    },
    openapi_extra=FORM_BODY,
)
async def submit_form(
    request: Request,
    source_id: UUID,
    origin: Annotated[str | None, Header()] = None,
    accept: Annotated[str, Header()] = "",
    referer: Annotated[str | None, Header()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A form post (urlencoded or multipart). Answers 303 to the source's redirect URL with
    `lead_id` added, or 202 JSON when `Accept: application/json`. `_hp` is the honeypot:
    leave it empty and hidden. A fetch() sent again with the same `Idempotency-Key` gets the
    first answer and records nothing."""
    try:
        source = await _source(request, source_id, origin, post=True)
    except RateLimited as held:
        if not wants_a_page(accept):
            raise
        return await _held(request, source_id, held)
    except HTTPException:  # no active source with this id
        if not wants_a_page(accept):
            raise
        return await _gone(request, source_id)
    if reason := _refusal(source, origin):
        return await _refuse_origin(request, source, origin, reason, accept)
    fields = await _form_fields(request, source.default_language)
    language = _language(request, fields, source.default_language)
    refused = [problem for name, value in fields if (problem := _unstorable(name, value))]
    if refused:
        return _refused(InvalidInput(refused), accept, language)
    try:
        if is_spam(dict(fields)):
            answer = _accepted_as(await _take_spam(request, source, fields, client_of(request)))
        else:
            answer = await _take_lead(request, source, fields, referer, idempotency_key)
    except InvalidInput as error:  # a field, or a merge that would take the profile over its bounds
        return _refused(error, accept, language)
    return _accepted(source, answer, accept, language)


async def _take_lead(
    request: Request,
    source: Source,
    fields: list[tuple[str, str]],
    referer: str | None,
    idempotency_key: str | None,
) -> Answer:
    """The form's lead, captured once per `Idempotency-Key`, and once for the same post again
    within `REPEAT_WINDOW` (the same fields, from the same address): a second click, a retry
    after a lost answer, or a browser's form sent again while the first post was slow, would
    otherwise record the form again, and score it again. A plain HTML form can send no key."""
    lead = lead_from_form(fields, referer)
    region = request.app.state.settings.default_phone_region
    client = client_of(request)
    submission = prepare(source, lead, region, client)

    async def work(session: AsyncSession) -> Answer:
        return _accepted_as((await capture(session, source, submission)).lead_id)

    again = idempotency.repeat_key("form", str(source.id), client.ip, fields)
    keys = {"Idempotency-Key": idempotency_key, SAME_POST: again}
    windows = {SAME_POST: idempotency.REPEAT_WINDOW}
    return await answer_once(request, source.id, keys, lambda: fields, work, windows=windows)


def _accepted_as(lead_id: UUID) -> Answer:
    """The same answer for a new person, a known one and a bot: a page cannot tell them apart."""
    return Answer(202, {"lead_id": str(lead_id), "status": "accepted"})


async def _form_fields(request: Request, site_language: str | None) -> list[tuple[str, str]]:
    """The form's text fields, in order (a 415 for a body that is no form). Its files are left
    out: a browser sends an empty <input type=file> as one, and they are not ingest's (the body's
    bound holds what comes). A urlencoded post from a page in a legacy charset is read in it
    (`form_charsets`: the site's language, else the browser's, tells which)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        raise HTTPException(415, "Post the form as application/x-www-form-urlencoded or multipart/form-data")
    if media_type == FORM_TYPES[0] and not form_charsets.is_utf8(body := await request.body()):
        browser = browser_languages(request.headers.get("accept-language"))
        languages = [site_language, *browser] if site_language else browser
        charset = form_charsets.legacy_charset(content_type, languages)
        try:
            return form_charsets.legacy_fields(body, charset, MAX_FIELDS)
        except ValueError:
            raise HTTPException(400, f"Too many fields. Maximum number of fields is {MAX_FIELDS}.") from None
    async with request.form(max_files=MAX_FIELDS, max_fields=MAX_FIELDS) as form:
        return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


async def _take_spam(request: Request, source: Source, fields: list[tuple[str, str]], client: Client) -> UUID:
    """Keep a spam submission aside; its id looks accepted to the bot, and nothing goes downstream."""
    lead_id = uuid4()
    region = phone_region(
        source.default_region, source.default_language, request.app.state.settings.default_phone_region
    )
    contact = spam_contact(dict(fields), region)
    await request.app.state.committer.submit(
        lambda session: _keep_spam(session, source, fields, contact, client)
    )
    return lead_id


def _accepted(source: Source, answer: Answer, accept: str, language: Language) -> Response:
    """202 JSON for a script, else a 303 to the source's redirect URL, else a thank-you page
    (each with the source's CORS headers: `_source`)."""
    replayed = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    if "application/json" in accept:
        return JSONResponse(answer.body, status_code=answer.status, headers=replayed)
    if source.redirect_url:
        location = _with_lead_id(source.redirect_url, answer.body["lead_id"])
        return RedirectResponse(location, status_code=303, headers=replayed)
    thanks = page(
        language, say("thanks_title", language), f"<p>{html.escape(say('thanks_text', language))}</p>"
    )
    return HTMLResponse(thanks, status_code=202, headers=replayed | {"Content-Language": language})


def _refused(error: InvalidInput, accept: str, language: Language) -> Response:
    """422: a page in the person's language for a browser, problem+json for a script."""
    if not wants_a_page(accept):
        return invalid_input_problem(error)
    told = [in_visitors_words(field, reason, kind, language) for field, reason, kind in error.typed]
    items = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(text)}</li>" for label, text in told)
    body = page(
        language,
        say("form_error_title", language),
        f"<h1>{html.escape(say('form_error_title', language))}</h1>",
        f"<p>{html.escape(say('form_error_text', language))}</p><ul>{items}</ul>",
        f'<p><a href="javascript:history.back()">{html.escape(say("form_error_back", language))}</a></p>',
    )
    return HTMLResponse(body, status_code=422, headers={"Content-Language": language})


async def _keep_spam(
    session: AsyncSession,
    source: Source,
    fields: list[tuple[str, str]],
    contact: tuple[str | None, str | None],
    client: Client,
) -> None:
    defer_insert(
        session,
        SpamSubmission.__table__,  # type: ignore[attr-defined]
        {
            "id": uuid4(),
            "source_id": source.id,
            "fields": dict(fields),
            "email": contact[0],
            "phone": contact[1],
            "ip": client.ip,
            "user_agent": client.user_agent,
            "received_at": utcnow(),
        },
    )


def _unstorable(name: str, value: str) -> Fault | None:
    """Why a posted field cannot be kept (not even as spam), as (field, reason, type), or None."""
    if reason := unstorable(name):
        return "form", f"a field name {reason}", UNSTORABLE
    if reason := unstorable(value):
        return name, reason, UNSTORABLE
    return None


def _with_lead_id(url: str, lead_id: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"lead_id": lead_id})) if q)
    return urlunsplit(parts._replace(query=query))
