"""Nurture HTTP routes: reps and webhook subscriptions (admin), and a rep's acknowledgement
of a lead."""

import hmac
import html
from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.nurture import delivery_log, directory, followup, sla
from services.nurture.followup import PlaybookBook
from services.nurture.models import (
    Rep,
    Touch,
    WebhookEndpoint,
)
from services.nurture.schemas import (
    Acknowledged,
    AcknowledgeIn,
    AttemptPublic,
    DeliveryHealth,
    DeliveryPublic,
    EndpointCreate,
    EndpointCreated,
    EndpointPublic,
    EndpointUpdate,
    PlaybooksAccepted,
    PlaybooksPublic,
    Redelivering,
    RedeliverRange,
    RepCreate,
    RepCreated,
    RepPublic,
    RepUpdate,
    Rotate,
    Rotated,
    TouchPublic,
)
from services.nurture.subscriptions import forget_subscribers
from services.nurture.touch_channels import unsubscribe_token
from shared import paging
from shared.documents import DOCUMENT_BODY, read_document
from shared.events import utcnow
from shared.http import Admin, Viewer, is_admin
from shared.languages import page, say

admin = APIRouter(prefix="/v1", dependencies=[Admin])
reps_side = APIRouter(prefix="/v1")
readers = APIRouter(prefix="/v1", dependencies=[Viewer])
_bearer = HTTPBearer(auto_error=False)


@admin.post("/reps", status_code=201, response_model=RepCreated)
async def create_rep(request: Request, data: RepCreate) -> RepCreated:
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        rep, secret = await directory.create_rep(session, settings, data.model_dump(mode="json"))
    created = RepCreated.model_validate(rep, from_attributes=True)
    return created.model_copy(update={"webhook_secret": secret})


@admin.get("/reps", response_model=list[RepPublic])
async def list_reps(
    request: Request, response: Response, limit: paging.Limit = 100, cursor: paging.Cursor = None
) -> list[Rep]:
    """The reps, oldest first, a page at a time; while more follow, the answer carries
    `Link: <…>; rel="next"` (RFC 8288)."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await directory.list_reps(session, cursor, limit)
    return paging.page(found, limit, request, response, lambda rep: (rep.created_at, rep.id))


@admin.patch("/reps/{rep_id}", response_model=RepPublic)
async def update_rep(request: Request, rep_id: UUID, data: RepUpdate) -> Rep:
    """Change a rep: set `active: false` when they leave or go on holiday."""
    changes = data.model_dump(mode="json", exclude_unset=True)
    async with request.app.state.runtime.db.transaction() as session:
        return await directory.update_rep(session, request.app.state.settings, rep_id, changes)


@reps_side.post("/leads/{lead_id}/acknowledge", response_model=Acknowledged)
async def acknowledge_lead(
    request: Request,
    lead_id: UUID,
    data: AcknowledgeIn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Acknowledged:
    """The rep holding the lead takes it on, which stops the SLA clock. Send the `rep_id` and
    `token` from the webhook (or call with the admin token). Again later: the first answer."""
    if data.token is None and not is_admin(request, credentials):
        raise HTTPException(401, "Send the token from the webhook, or the admin token")
    try:
        async with request.app.state.runtime.db.transaction() as session:
            box = request.app.state.settings.box
            done = await sla.acknowledge(session, lead_id, data.rep_id, data.token, box)
    except sla.NotAssigned as error:
        raise HTTPException(404, "This lead is not assigned to a rep") from error
    except sla.NotTheirs as error:
        raise HTTPException(403, "This lead is not this rep's, or the token is wrong") from error
    return Acknowledged(lead_id=lead_id, **done.model_dump())


@admin.post("/webhooks", status_code=201, response_model=EndpointCreated)
async def create_endpoint(request: Request, data: EndpointCreate) -> EndpointCreated:
    """Subscribe an endpoint to event types; every such event is POSTed to it, signed
    (Standard Webhooks) with the secret shown here once."""
    settings = request.app.state.settings
    db = request.app.state.runtime.db
    async with db.transaction() as session:
        endpoint, secret = await directory.create_endpoint(session, settings, data.model_dump(mode="json"))
    forget_subscribers(db)  # this process at once; the others as they hear the ring
    created = EndpointCreated.model_validate(endpoint, from_attributes=True)
    return created.model_copy(update={"secret": secret})


@admin.get("/webhooks", response_model=list[EndpointPublic])
async def list_endpoints(
    request: Request, response: Response, limit: paging.Limit = 100, cursor: paging.Cursor = None
) -> list[WebhookEndpoint]:
    """The subscriptions, oldest first, a page at a time (a `Link: rel=next` header while more
    follow)."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await directory.list_endpoints(session, cursor, limit)
    return paging.page(found, limit, request, response, lambda endpoint: (endpoint.created_at, endpoint.id))


@admin.patch("/webhooks/{endpoint_id}", response_model=EndpointPublic)
async def update_endpoint(request: Request, endpoint_id: UUID, data: EndpointUpdate) -> WebhookEndpoint:
    changes = data.model_dump(mode="json", exclude_unset=True)
    db = request.app.state.runtime.db
    async with db.transaction() as session:
        updated = await directory.update_endpoint(session, request.app.state.settings, endpoint_id, changes)
    forget_subscribers(db)
    return updated


@admin.post("/webhooks/{endpoint_id}/rotate-secret", response_model=Rotated)
async def rotate_secret(request: Request, endpoint_id: UUID, data: Rotate | None = None) -> Rotated:
    """A new secret, shown once. For `overlap_hours` both sign every message, so receivers
    can switch without missing one."""
    overlap = timedelta(hours=(data or Rotate()).overlap_hours)
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        secret, until = await directory.rotate_secret(session, settings, endpoint_id, overlap, utcnow())
    return Rotated(secret=secret, previous_secret_until=until)


@admin.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryPublic])
async def list_deliveries(
    request: Request,
    response: Response,
    endpoint_id: UUID,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: paging.Cursor = None,
) -> list[DeliveryPublic]:
    """The deliveries to this endpoint, newest first, a page at a time (a `Link: rel=next`
    header while more follow), each with its latest attempts (at most 20) and their answers."""
    async with request.app.state.runtime.db.transaction() as session:
        await directory.endpoint(session, endpoint_id)
        found = await delivery_log.deliveries(session, endpoint_id, status, cursor, limit)
        shown = paging.page(found, limit, request, response, lambda d: (d.created_at, d.id))
        attempts = await delivery_log.latest_attempts(session, [d.id for d in shown])
    return [
        DeliveryPublic(
            **d.model_dump(),
            attempt_log=[
                AttemptPublic.model_validate(a, from_attributes=True) for a in attempts.get(d.id, [])
            ],
        )
        for d in shown
    ]


@admin.post("/deliveries/{delivery_id}/redeliver", status_code=202, response_model=Redelivering)
async def redeliver(request: Request, delivery_id: UUID) -> Redelivering:
    """Send one delivery again (same webhook-id), now, with a fresh retry schedule."""
    async with request.app.state.runtime.db.transaction() as session:
        await delivery_log.redeliver(session, delivery_id)
    return Redelivering(deliveries=1)


@admin.post("/webhooks/{endpoint_id}/redeliver", status_code=202, response_model=Redelivering)
async def redeliver_range(request: Request, endpoint_id: UUID, data: RedeliverRange) -> Redelivering:
    """Send again every delivery to this endpoint created in a time range (by default the
    failed ones): what a receiver missed while it was down."""
    async with request.app.state.runtime.db.transaction() as session:
        await directory.endpoint(session, endpoint_id)
        sent = await delivery_log.redeliver_range(session, endpoint_id, data.since, data.until, data.status)
    return Redelivering(deliveries=sent)


@readers.get("/leads/{lead_id}/touches", response_model=list[TouchPublic])
async def lead_touches(
    request: Request,
    response: Response,
    lead_id: UUID,
    limit: paging.Limit = 500,
    cursor: paging.Cursor = None,
) -> list[Touch]:
    """The lead's follow-up timeline: every touch planned, sent, moved, failed or cancelled, by
    when it is due, a page at a time (a `Link: rel=next` header while more follow). A read of
    lead data: the viewer token or the admin token."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await followup.timeline(session, lead_id, cursor, limit)
    return paging.page(found, limit, request, response, lambda touch: (touch.due_at, touch.step, touch.id))


@admin.get("/playbooks", response_model=PlaybooksPublic)
async def get_playbooks(request: Request) -> PlaybooksPublic:
    book: PlaybookBook = request.app.state.playbooks
    async with request.app.state.runtime.db.transaction() as session:
        stored = await book.stored(session, (await book.active(session)).version)
    return PlaybooksPublic(
        version=stored.version, created_at=stored.created_at, playbooks=stored.document, source=stored.source
    )


@admin.put("/playbooks", status_code=201, response_model=PlaybooksAccepted, openapi_extra=DOCUMENT_BODY)
async def put_playbooks(request: Request) -> PlaybooksAccepted:
    """A new version of the playbooks (YAML or JSON), validated first: 422 names every problem.
    Leads move to it as they are next classified."""
    document, source = await read_document(request)
    book: PlaybookBook = request.app.state.playbooks
    async with request.app.state.runtime.db.transaction() as session:
        version = await book.publish(session, document, source)
    book.forget()
    return PlaybooksAccepted(version=version)


def _check_unsubscribe_link(request: Request, lead_id: UUID, token: str) -> None:
    expected = unsubscribe_token(request.app.state.settings.unsubscribe_key, lead_id)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(403, "This unsubscribe link is not valid")


@reps_side.get("/unsubscribe", response_class=HTMLResponse)
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


@reps_side.post("/unsubscribe", response_class=HTMLResponse)
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


@readers.get("/delivery-health", response_model=DeliveryHealth)
async def delivery_health(request: Request) -> DeliveryHealth:
    """Webhook attempts in the last hour and how many failed (metrics' health asks this)."""
    async with request.app.state.runtime.db.transaction() as session:
        return await delivery_log.failures_last_hour(session)


routers = [admin, reps_side, readers]
