"""Nurture HTTP routes: reps (admin), a rep's acknowledgement, a lead's touches (a failed one sent
again); and every router."""

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.nurture import (
    directory,
    followup,
    manual_assignments,
    playbook_routes,
    rep_leads,
    sla,
    touch_resends,
    unsubscribe_routes,
    webhook_routes,
)
from services.nurture.models import Rep
from services.nurture.schemas import (
    Acknowledged,
    AcknowledgeIn,
    Assigned,
    AssignIn,
    HeldLead,
    RepCreate,
    RepCreated,
    RepPublic,
    RepUpdate,
    ResendIn,
    Rotate,
    Rotated,
    TouchPublic,
)
from shared import paging
from shared.events import utcnow
from shared.http import Admin, Viewer, admin_if_sent

admin = APIRouter(prefix="/v1", dependencies=[Admin])
reps_side = APIRouter(prefix="/v1")
readers = APIRouter(prefix="/v1", dependencies=[Viewer])


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


@admin.get("/reps/{rep_id}/leads", response_model=list[HeldLead], responses={404: {}})
async def list_rep_leads(
    request: Request,
    response: Response,
    rep_id: UUID,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many leads on a page.")] = 100,
    cursor: paging.Cursor = None,
) -> list[HeldLead]:
    """The hot leads the rep holds now (not won, lost, parked or past SQL), the longest held
    first, a page at a time (a `Link: rel=next` header while more follow): when each was given
    them, acknowledged, due, why they have it, and the person (admin token only). 404: no such
    rep."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await rep_leads.held_leads(session, rep_id, cursor, limit)
    shown = paging.page(found, limit, request, response, lambda held: (held.assigned_at, held.lead_id))
    return [HeldLead.of(held) for held in shown]


@admin.patch("/reps/{rep_id}", response_model=RepPublic)
async def update_rep(request: Request, rep_id: UUID, data: RepUpdate) -> Rep:
    """Change a rep: set `active: false` when they leave or go on holiday. The hot leads they
    hold and have not acknowledged go at once to the next matching rep (`lead.assigned` with
    `reason: rep_left`), or to the managers when none matches."""
    changes = data.model_dump(mode="json", exclude_unset=True)
    async with request.app.state.runtime.db.transaction() as session:
        return await directory.update_rep(session, request.app.state.settings, rep_id, changes, utcnow())


@admin.post("/reps/{rep_id}/rotate-secret", response_model=Rotated)
async def rotate_rep_secret(request: Request, rep_id: UUID, data: Rotate | None = None) -> Rotated:
    """A new webhook secret for the rep, shown once. For `overlap_hours` both sign every
    webhook, and acknowledge links made with the old one still work; after it, only the new."""
    overlap = timedelta(hours=(data or Rotate()).overlap_hours)
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        secret, until = await directory.rotate_rep_secret(session, settings, rep_id, overlap, utcnow())
    return Rotated(secret=secret, previous_secret_until=until)


@reps_side.post(
    "/leads/{lead_id}/acknowledge", response_model=Acknowledged, responses={401: {}, 403: {}, 404: {}}
)
async def acknowledge_lead(
    request: Request,
    lead_id: UUID,
    data: AcknowledgeIn,
    by_admin: Annotated[bool, Depends(admin_if_sent)],
) -> Acknowledged:
    """The rep holding the lead takes it on, which stops the SLA clock. Send the `rep_id` and
    `token` from the webhook (or call with the admin token). Again later: the first answer.
    Without the admin token, a lead no rep holds answers 403 as another rep's lead does."""
    if data.token is None and not by_admin:
        raise HTTPException(401, "Send the token from the webhook, or the admin token")
    try:
        async with request.app.state.runtime.db.transaction() as session:
            box = request.app.state.settings.box
            done = await sla.acknowledge(session, lead_id, data.rep_id, data.token, box)
    except sla.NotAssigned as error:
        raise HTTPException(404, "This lead is not assigned to a rep") from error
    except sla.NotTheirs as error:
        reason = str(error) or "This lead is not this rep's, or the token is wrong"
        raise HTTPException(403, reason) from error
    return Acknowledged(lead_id=lead_id, **done.model_dump())


@admin.post("/leads/{lead_id}/assign", response_model=Assigned, responses={404: {}, 409: {}, 410: {}})
async def assign_lead(request: Request, lead_id: UUID, data: AssignIn) -> Assigned:
    """Give a hot lead to a rep: one no rep covers, one no rep took on in time, one whose rep
    left (what the managers are asked to do), or one a rep holds. The rep gets the `lead.hot`
    webhook with its acknowledge link and an SLA from now; `lead.assigned` says `reason:
    assigned`; the rep who held it gets `lead.unassigned` (stop calling). Again for the rep
    who holds it: the lead as it is. 422 (`rep_id`): no such rep,
    inactive, or not a rep; 404: nurture never handed the lead off; 409: it is past new interest
    (an opportunity, a customer, lost...); 410: erased."""
    settings = request.app.state.settings
    try:
        async with request.app.state.runtime.db.transaction() as session:
            held = await manual_assignments.assign_lead(session, lead_id, data.rep_id, settings, utcnow())
            assigned = Assigned.model_validate(held, from_attributes=True)
    except manual_assignments.NotHeld as error:
        raise HTTPException(404, "Nurture never handed this lead off (it was not hot or SQL)") from error
    except manual_assignments.PastNewInterest as error:
        raise HTTPException(409, str(error)) from error
    except manual_assignments.Erased as error:
        raise HTTPException(410, "Lead erased at the person's request") from error
    return assigned


@readers.get("/leads/{lead_id}/touches", response_model=list[TouchPublic])
async def lead_touches(
    request: Request,
    response: Response,
    lead_id: UUID,
    limit: paging.Limit = 500,
    cursor: paging.Cursor = None,
) -> list[TouchPublic]:
    """The lead's follow-up timeline: every touch planned, sent, moved, failed or cancelled, by
    when it is due, a page at a time (a `Link: rel=next` header while more follow). A read of
    lead data: the viewer token or the admin token."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await followup.timeline(session, lead_id, cursor, limit)
    shown = paging.page(found, limit, request, response, lambda touch: (touch.due_at, touch.step, touch.id))
    return [TouchPublic.of(touch) for touch in shown]


@admin.post("/touches/{touch_id}/resend", response_model=TouchPublic)
async def resend_touch(request: Request, touch_id: UUID, data: ResendIn | None = None) -> TouchPublic:
    """A failed touch scheduled again, due now (a provider's long outage, an address put right),
    and judged at its send like any other: consent, unsubscribe, the lead's hours. 409 when it
    did not fail, when the lead's next step has gone, or when an email may have reached the
    person (unless `even_if_in_doubt`)."""
    in_doubt = (data or ResendIn()).even_if_in_doubt
    try:
        async with request.app.state.runtime.db.transaction() as session:
            touch = await touch_resends.resend(session, touch_id, utcnow(), in_doubt)
    except LookupError as error:
        raise HTTPException(404, "No such touch") from error
    except touch_resends.CannotResend as error:
        raise HTTPException(409, str(error)) from error
    return TouchPublic.of(touch)


routers = [
    admin,
    webhook_routes.admin,
    playbook_routes.admin,
    reps_side,
    unsubscribe_routes.router,
    readers,
    webhook_routes.readers,
]
