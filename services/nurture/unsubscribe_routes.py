"""The unsubscribe link in every email: a page that asks, and the button that unsubscribes."""

import hmac
import html
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from services.nurture import followup
from services.nurture.touch_channels import unsubscribe_token
from shared.languages import choose, page, say
from shared.query_parameters import AnyQuery

router = APIRouter(prefix="/v1", dependencies=[AnyQuery])  # mail clients add utm_*, mc_eid


class InvalidLink(Exception):
    """The link's token is not the one nurture signed for this lead."""


def _check_unsubscribe_link(request: Request, lead_id: UUID, token: str) -> None:
    keys = request.app.state.settings.unsubscribe_keys
    signed = [hmac.compare_digest(token.encode(), unsubscribe_token(key, lead_id).encode()) for key in keys]
    if not any(signed):
        if "text/html" in request.headers.get("accept", ""):  # a person, in a browser
            raise InvalidLink
        raise HTTPException(403, "This unsubscribe link is not valid")


async def invalid_link_page(request: Request, error: Exception) -> HTMLResponse:
    """403 as a page, in the language the browser asks for (the lead's is not known: the link
    may name anyone): a person who opened a cut or altered link got raw JSON."""
    language = choose(*request.headers.get("accept-language", "").replace(";", ",").split(","))
    title = say("unsubscribe_invalid_title", language)
    text = html.escape(say("unsubscribe_invalid_text", language))
    return HTMLResponse(
        page(language, title, f"<h1>{html.escape(title)}</h1><p>{text}</p>"),
        status_code=403,
        headers={"Content-Language": language},
    )


@router.get("/unsubscribe", response_class=HTMLResponse)
async def confirm_unsubscribe(
    request: Request, lead_id: UUID, token: Annotated[str, Query(max_length=200)]
) -> HTMLResponse:
    """The link in every email shows a page that asks, in the lead's language; only its button
    (a POST) unsubscribes, so a mail scanner that opens links unsubscribes nobody."""
    _check_unsubscribe_link(request, lead_id, token)
    async with request.app.state.runtime.db.transaction() as session:
        language = await followup.language_for(session, lead_id)
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


@router.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(
    request: Request, lead_id: UUID, token: Annotated[str, Query(max_length=200)]
) -> HTMLResponse:
    """The confirmation page's button, and RFC 8058 one-click (`List-Unsubscribe-Post`) from the
    mail client: nothing more is sent."""
    _check_unsubscribe_link(request, lead_id, token)
    async with request.app.state.runtime.db.transaction() as session:
        language = await followup.language_for(session, lead_id)
        await followup.unsubscribe(session, lead_id, "unsubscribed by link")
    text = html.escape(say("unsubscribed_text", language))
    return HTMLResponse(
        page(language, say("unsubscribed_title", language), f"<p>{text}</p>"),
        headers={"Content-Language": language},
    )
