"""The lead keys, for the services that open what events carry about a person (admin)."""

import base64

from fastapi import APIRouter, Request

from services.ingest.history import seal_keys
from services.ingest.schemas import LeadKeys, LeadKeysWanted
from shared.http import Admin

router = APIRouter(prefix="/v1", tags=["leads"])


@router.post("/lead-keys:fetch", response_model=LeadKeys, dependencies=[Admin])
async def fetch_lead_keys(request: Request, wanted: LeadKeysWanted) -> LeadKeys:
    """The key each lead's personal data is sealed with in events (`shared.personal`); scoring
    and nurture ask for it. An erased lead has no key any more."""
    keys = await seal_keys(request.app.state.runtime.db, wanted.lead_ids)
    return LeadKeys(keys={lead: base64.b64encode(key).decode() for lead, key in keys.items()})
