"""Nurture HTTP routes."""

import base64
import secrets

from fastapi import APIRouter, Request
from sqlmodel import col, select

from services.nurture.models import Rep
from services.nurture.schemas import RepCreate, RepCreated, RepPublic
from shared.http import Admin

router = APIRouter(prefix="/v1", dependencies=[Admin])


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@router.post("/reps", status_code=201, response_model=RepCreated)
async def create_rep(request: Request, data: RepCreate) -> RepCreated:
    rep = Rep(
        name=data.name,
        email=data.email,
        webhook_url=str(data.webhook_url),
        webhook_secret=new_webhook_secret(),
        active=data.active,
    )
    async with request.app.state.runtime.db.transaction() as session:
        session.add(rep)
        await session.flush()
        await session.refresh(rep)
    return RepCreated.model_validate(rep, from_attributes=True)


@router.get("/reps", response_model=list[RepPublic])
async def list_reps(request: Request) -> list[Rep]:
    async with request.app.state.runtime.db.transaction() as session:
        return list((await session.exec(select(Rep).order_by(col(Rep.created_at)))).all())
