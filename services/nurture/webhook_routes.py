"""Nurture's webhook routes: subscriptions, their secrets, deliveries and redelivery; delivery health."""

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from services.nurture import delivery_log, directory
from services.nurture.models import WebhookEndpoint
from services.nurture.schemas import (
    AttemptPublic,
    DeliveryHealth,
    DeliveryPublic,
    EndpointCreate,
    EndpointCreated,
    EndpointPublic,
    EndpointUpdate,
    Redelivering,
    RedeliverRange,
    Rotate,
    Rotated,
)
from services.nurture.subscriptions import forget_subscribers
from shared import paging
from shared.events import utcnow
from shared.http import Admin, Viewer

admin = APIRouter(prefix="/v1", dependencies=[Admin])
readers = APIRouter(prefix="/v1", dependencies=[Viewer])


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


Status = Literal["pending", "delivered", "failed"] | None
Limit = Annotated[int, Query(ge=1, le=500)]


@admin.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryPublic])
async def list_deliveries(
    request: Request,
    response: Response,
    endpoint_id: UUID,
    status: Status = None,
    limit: Limit = 100,
    cursor: paging.Cursor = None,
) -> list[DeliveryPublic]:
    """The deliveries to this endpoint, newest first, a page at a time (a `Link: rel=next`
    header while more follow), each with its latest attempts (at most 20) and their answers."""
    async with request.app.state.runtime.db.transaction() as session:
        await directory.endpoint(session, endpoint_id)
        to = delivery_log.to_endpoint(endpoint_id)
        return await _page(session, request, response, to, status, cursor, limit)


@admin.get("/reps/{rep_id}/deliveries", response_model=list[DeliveryPublic])
async def list_rep_deliveries(
    request: Request,
    response: Response,
    rep_id: UUID,
    status: Status = None,
    limit: Limit = 100,
    cursor: paging.Cursor = None,
) -> list[DeliveryPublic]:
    """The webhooks to this rep (hot leads, escalations, call tasks, managers' notices), newest
    first, as an endpoint's: which hand-offs never reached them, and why."""
    async with request.app.state.runtime.db.transaction() as session:
        await directory.rep(session, rep_id)
        return await _page(session, request, response, delivery_log.to_rep(rep_id), status, cursor, limit)


async def _page(
    session: Any,
    request: Request,
    response: Response,
    to: Any,
    status: Status,
    cursor: str | None,
    limit: int,
) -> list[DeliveryPublic]:
    found = await delivery_log.deliveries(session, to, status, cursor, limit)
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
        endpoint = await directory.endpoint(session, endpoint_id)
        to = delivery_log.to_endpoint(endpoint.id)
        sent = await delivery_log.redeliver_range(
            session, to, endpoint.url, data.since, data.until, data.status
        )
    return Redelivering(deliveries=sent)


@admin.post("/reps/{rep_id}/redeliver", status_code=202, response_model=Redelivering)
async def redeliver_to_rep(request: Request, rep_id: UUID, data: RedeliverRange) -> Redelivering:
    """Send again every webhook to this rep created in a time range (by default the failed
    ones), to the rep's webhook as it is now."""
    async with request.app.state.runtime.db.transaction() as session:
        rep = await directory.rep(session, rep_id)
        to = delivery_log.to_rep(rep_id)
        sent = await delivery_log.redeliver_range(
            session, to, rep.webhook_url, data.since, data.until, data.status
        )
    return Redelivering(deliveries=sent)


@readers.get("/delivery-health", response_model=DeliveryHealth)
async def delivery_health(request: Request) -> DeliveryHealth:
    """Webhook attempts in the last hour and how many failed, and the leads of the last day told
    to nobody (no rep matched them, no manager was active): metrics' health asks this."""
    async with request.app.state.runtime.db.transaction() as session:
        return await delivery_log.delivery_health(session, utcnow(), request.app.state.settings.box)
