"""Nurture HTTP routes: reps (admin) and a rep's acknowledgement of a lead."""

import base64
import secrets
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import col, select

from services.nurture import sla
from services.nurture.models import Rep
from services.nurture.schemas import Acknowledged, AcknowledgeIn, RepCreate, RepCreated, RepPublic, RepUpdate
from shared.http import Admin, is_admin

admin = APIRouter(prefix="/v1", dependencies=[Admin])
reps_side = APIRouter(prefix="/v1")
_bearer = HTTPBearer(auto_error=False)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@admin.post("/reps", status_code=201, response_model=RepCreated)
async def create_rep(request: Request, data: RepCreate) -> RepCreated:
    rep = Rep(**data.model_dump(mode="json"), webhook_secret=new_webhook_secret())
    async with request.app.state.runtime.db.transaction() as session:
        session.add(rep)
        await session.flush()
        await session.refresh(rep)
    return RepCreated.model_validate(rep, from_attributes=True)


@admin.get("/reps", response_model=list[RepPublic])
async def list_reps(request: Request) -> list[Rep]:
    async with request.app.state.runtime.db.transaction() as session:
        return list((await session.exec(select(Rep).order_by(col(Rep.created_at)))).all())


@admin.patch("/reps/{rep_id}", response_model=RepPublic)
async def update_rep(request: Request, rep_id: UUID, data: RepUpdate) -> Rep:
    """Change a rep: set `active: false` when they leave or go on holiday."""
    async with request.app.state.runtime.db.transaction() as session:
        rep = await session.get(Rep, rep_id, with_for_update=True)
        if rep is None:
            raise HTTPException(404, "No such rep")
        for name, value in data.model_dump(mode="json", exclude_unset=True).items():
            setattr(rep, name, value)
        session.add(rep)
        await session.flush()
        await session.refresh(rep)
        return rep


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
            done = await sla.acknowledge(session, lead_id, data.rep_id, data.token)
    except sla.NotAssigned as error:
        raise HTTPException(404, "This lead is not assigned to a rep") from error
    except sla.NotTheirs as error:
        raise HTTPException(403, "This lead is not this rep's, or the token is wrong") from error
    return Acknowledged(lead_id=lead_id, **done.model_dump())


routers = [admin, reps_side]
