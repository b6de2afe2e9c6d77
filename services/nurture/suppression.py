"""Addresses whose person asked for nothing more: an unsubscribe outlives their erasure. Erased,
then sent again by a CRM (a sync, an import), the same address was a new lead and was emailed
the welcome again. What is kept is a keyed hash of each address (the key is this database's,
made once), with no lead, name or date of theirs: enough to tell the address again, not to
read it. A new consent given for marketing (`POST /v1/consent`) lifts it."""

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import FollowedLead

SUPPRESSED = "the person unsubscribed by this address before (kept after their erasure)"
_KEY = text("SELECT key FROM suppression_key")
_REMEMBER = text(
    "INSERT INTO suppressed_addresses (digest) SELECT unnest(CAST(:digests AS bytea[]))"
    " ON CONFLICT DO NOTHING"
)
_FORGET = text("DELETE FROM suppressed_addresses WHERE digest = ANY(CAST(:digests AS bytea[]))")
_FOUND = text("SELECT digest FROM suppressed_addresses WHERE digest = ANY(CAST(:digests AS bytea[]))")


def addresses(context: Mapping[str, Any]) -> list[str]:
    """The lead's email and phone, written one way: case and spaces, or the phone's punctuation,
    do not make another address."""
    found = []
    if isinstance(email := context.get("email"), str) and email.strip():
        found.append("email:" + email.strip().lower())
    for field in ("phone", "messenger"):
        if isinstance(number := context.get(field), str) and (digits := "".join(filter(str.isdigit, number))):
            found.append("phone:" + digits)
    return found


async def _digests(session: AsyncSession, written: Iterable[str]) -> list[bytes]:
    key = (await session.execute(_KEY)).scalar_one()
    return [hmac.digest(bytes(key), address.encode(), hashlib.sha256) for address in written]


async def remember(session: AsyncSession, lead_id: UUID) -> None:
    """The lead's addresses, as unsubscribed (what nurture knows of them: none before its first
    classification)."""
    lead = await session.get(FollowedLead, lead_id)
    if lead is not None:
        await remember_addresses(session, lead.context)


async def remember_addresses(session: AsyncSession, context: Mapping[str, Any]) -> None:
    """These addresses, as unsubscribed: those an unsubscribed person's classification tells
    (an unsubscribe heard before nurture knew any address, or an address given since)."""
    if written := addresses(context):
        await session.execute(_REMEMBER, {"digests": await _digests(session, written)})


async def forget(session: AsyncSession, context: Mapping[str, Any]) -> None:
    """The person opted in again: their addresses are written to once more."""
    if written := addresses(context):
        await session.execute(_FORGET, {"digests": await _digests(session, written)})


async def suppressed(session: AsyncSession, leads: Mapping[UUID, FollowedLead]) -> set[UUID]:
    """Those of `leads` with an address someone unsubscribed (one query for a claimed batch)."""
    written = {lead_id: addresses(lead.context) for lead_id, lead in leads.items()}
    every = sorted({address for found in written.values() for address in found})
    if not every:
        return set()
    digests = dict(zip(every, await _digests(session, every), strict=True))
    found = {bytes(row[0]) for row in await session.execute(_FOUND, {"digests": list(digests.values())})}
    return {lead_id for lead_id, ours in written.items() if any(digests[a] in found for a in ours)}
