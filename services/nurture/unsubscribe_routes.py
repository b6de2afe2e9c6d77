"""The unsubscribe link in every email, SMS and messenger text: a page that asks, and the button
that unsubscribes."""

import hmac
import html
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from services.nurture import followup
from services.nurture.unsubscribe_links import (
    SHORT_LEAD,
    short_link_lead,
    short_unsubscribe_token,
    unsubscribe_token,
)
from shared.http import InvalidInput
from shared.languages import browser_languages, choose, page, say
from shared.query_parameters import AnyQuery

router = APIRouter(prefix="/v1", dependencies=[AnyQuery])  # mail clients add utm_*, mc_eid


class InvalidLink(Exception):
    """The link names no lead, or its token is not the one nurture signed for the lead."""


def _linked_lead(request: Request, lead_id: str, token: str | None) -> UUID:
    """The lead the link names, if nurture signed it. A cut or altered link (a mail client
    wraps long ones) is a page for a person in a browser; a script gets problem+json."""
    try:
        lead: UUID | None = UUID(lead_id)
    except ValueError:
        lead = None
    return _signed_lead(request, lead, token, unsubscribe_token, "lead_id")


def _short_linked_lead(request: Request, code: str) -> UUID:
    """The lead a text's short link names (`short_unsubscribe_url`), if nurture signed it."""
    return _signed_lead(request, short_link_lead(code), code[SHORT_LEAD:], short_unsubscribe_token, "code")


def _signed_lead(
    request: Request,
    lead: UUID | None,
    token: str | None,
    signed_by: Callable[[bytes, UUID], str],
    field: str,
) -> UUID:
    keys = request.app.state.settings.unsubscribe_keys
    signed = (
        lead is not None
        and token is not None
        and any(hmac.compare_digest(token.encode(), signed_by(key, lead).encode()) for key in keys)
    )
    if lead is not None and signed:
        return lead
    if "text/html" in request.headers.get("accept", ""):  # a person, in a browser
        raise InvalidLink
    if lead is None:
        raise InvalidInput([(field, "is not a lead id: the link was cut or altered")])
    raise HTTPException(403, "This unsubscribe link is not valid")


async def invalid_link_page(request: Request, error: Exception) -> HTMLResponse:
    """403 as a page, in the language the browser asks for (the lead's is not known: the link
    may name anyone): a person who opened a cut or altered link got raw JSON."""
    language = choose(*_browsers(request))
    title = say("unsubscribe_invalid_title", language)
    text = html.escape(say("unsubscribe_invalid_text", language))
    return HTMLResponse(
        page(language, title, f"<h1>{html.escape(title)}</h1><p>{text}</p>"),
        status_code=403,
        headers={"Content-Language": language},
    )


def _browsers(request: Request) -> list[str]:
    """The browser's languages: a lead nurture no longer knows (erased) is answered in them."""
    return browser_languages(request.headers.get("accept-language"))


@router.get("/unsubscribe", response_class=HTMLResponse)
async def confirm_unsubscribe(
    request: Request,
    lead_id: Annotated[str, Query(max_length=100)],
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The link in every email shows a page that asks, in the lead's language; only its button
    (a POST) unsubscribes, so a mail scanner that opens links unsubscribes nobody."""
    return await _asking_page(request, _linked_lead(request, lead_id, token))


@router.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(
    request: Request,
    lead_id: Annotated[str, Query(max_length=100)],
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The confirmation page's button, and RFC 8058 one-click (`List-Unsubscribe-Post`) from the
    mail client: nothing more is sent."""
    return await _unsubscribed_page(request, _linked_lead(request, lead_id, token))


@router.get("/u/{code}", response_class=HTMLResponse)
async def confirm_unsubscribe_by_text(
    request: Request, code: Annotated[str, Path(max_length=100)]
) -> HTMLResponse:
    """The short link at the end of every SMS and messenger text: the same page that asks."""
    return await _asking_page(request, _short_linked_lead(request, code))


@router.post("/u/{code}", response_class=HTMLResponse)
async def unsubscribe_by_text(request: Request, code: Annotated[str, Path(max_length=100)]) -> HTMLResponse:
    """That page's button: nothing more is sent, by any channel."""
    return await _unsubscribed_page(request, _short_linked_lead(request, code))


async def _asking_page(request: Request, lead: UUID) -> HTMLResponse:
    async with request.app.state.runtime.db.transaction() as session:
        language = await followup.language_for(session, lead, _browsers(request))
    return HTMLResponse(
        page(
            language,
            say("unsubscribe_title", language),
            f"<p>{html.escape(say('unsubscribe_question', language))}</p>",
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">',
            f'<button type="submit">{html.escape(say("unsubscribe_button", language))}</button></form>',
        ),
        headers={"Content-Language": language},
    )


async def _unsubscribed_page(request: Request, lead: UUID) -> HTMLResponse:
    async with request.app.state.runtime.db.transaction() as session:
        language = await followup.language_for(session, lead, _browsers(request))
        await followup.unsubscribe(session, lead, "unsubscribed by link")
    text = html.escape(say("unsubscribed_text", language))
    return HTMLResponse(
        page(language, say("unsubscribed_title", language), f"<p>{text}</p>"),
        headers={"Content-Language": language},
    )
