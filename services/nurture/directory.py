"""Reps and webhook subscriptions: who nurture sends to, stored with their sealed signing
secrets. The URLs admins give are checked against the egress policy before they are kept."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.config import NurtureSettings
from services.nurture.models import Rep, WebhookEndpoint
from services.nurture.reassignment import hand_on_held, holds_leads
from services.nurture.routing import joining_base
from services.nurture.subscriptions import new_secret, origin_of
from shared.http import InvalidInput
from shared.paging import keyset


class NotFound(Exception):
    pass


def check_url(settings: NurtureSettings, field: str, url: str | None) -> None:
    """Refuse (422, naming the field) a URL nurture must not send to."""
    https_only = settings.env == "production"
    if url is not None and (reason := settings.egress.refuses_url(url, https_only)):
        raise InvalidInput([(field, reason)])


async def create_rep(
    session: AsyncSession, settings: NurtureSettings, fields: dict[str, Any]
) -> tuple[Rep, str]:
    """The new rep and its signing secret (shown once, stored sealed)."""
    check_url(settings, "webhook_url", fields["webhook_url"])
    secret = new_secret()
    rep = Rep(**fields, webhook_secret=settings.box.seal(secret))
    await _join_round_robin(session, rep)
    session.add(rep)
    await session.flush()
    await session.refresh(rep)
    return rep, secret


# A change to any of these makes the rep join the round robin afresh (routing.py).
JOINING = frozenset({"active", "role", "capacity", "territories", "segments"})


async def _locked_reps(session: AsyncSession) -> list[Rep]:
    """The active reps, locked in the order a hand-off locks them (assignments.active_reps), so
    their counts hold still and neither waits for the other in a cycle."""
    statement = select(Rep).where(col(Rep.active), Rep.role == "rep").order_by(col(Rep.created_at))
    return list((await session.exec(statement.with_for_update())).all())


async def _join_round_robin(session: AsyncSession, rep: Rep, reps: list[Rep] | None = None) -> None:
    """Start an active rep level with the reps it competes with (routing.joining_base)."""
    if rep.active and rep.role == "rep":
        rep.routing_base = joining_base(rep, await _locked_reps(session) if reps is None else reps)


REPS_ORDER = (col(Rep.created_at), col(Rep.id))  # a page's order: unique, oldest first
ENDPOINTS_ORDER = (col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))


async def list_reps(session: AsyncSession, cursor: str | None, limit: int) -> list[Rep]:
    """A page of reps, oldest first (`shared.paging`)."""
    return list((await session.exec(keyset(select(Rep), REPS_ORDER, cursor, limit))).all())


async def update_rep(
    session: AsyncSession, settings: NurtureSettings, rep_id: UUID, changes: dict[str, Any], now: datetime
) -> Rep:
    """Change a rep at `now`; one who leaves (set inactive, made a manager) hands on the hot
    leads they hold unacknowledged (`reassignment`)."""
    check_url(settings, "webhook_url", changes.get("webhook_url"))
    rejoining = bool(JOINING.intersection(changes))
    reps = await _locked_reps(session) if rejoining else []  # first, in the hand-offs' order
    rep = await session.get(Rep, rep_id, with_for_update=True)
    if rep is None:
        raise NotFound("No such rep")
    before = {name: getattr(rep, name) for name in JOINING}
    held_leads = holds_leads(rep)
    if (url := changes.get("webhook_url")) and url != rep.webhook_url:
        await session.execute(_MOVED, {"origin": origin_of(url), "rep_id": rep_id, "endpoint_id": None})
    for name, value in changes.items():
        setattr(rep, name, value)
    if any(getattr(rep, name) != before[name] for name in JOINING):
        await _join_round_robin(session, rep, reps)
    if held_leads and not holds_leads(rep):
        await hand_on_held(session, rep, reps, settings, now)
    session.add(rep)
    await session.flush()
    await session.refresh(rep)
    return rep


async def rotate_rep_secret(
    session: AsyncSession, settings: NurtureSettings, rep_id: UUID, overlap: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A new signing secret for the rep, and until when the old one also signs (`overlap` from
    `now`) and still proves the acknowledge links made with it (`rep_webhooks.acknowledge_tokens`),
    as a subscription's rotation does (`rotate_secret`)."""
    rep = await session.get(Rep, rep_id, with_for_update=True)
    if rep is None:
        raise NotFound("No such rep")
    secret = new_secret()
    rep.previous_webhook_secret, rep.webhook_secret = rep.webhook_secret, settings.box.seal(secret)
    rep.previous_webhook_secret_until = now + overlap
    session.add(rep)
    return secret, rep.previous_webhook_secret_until


async def create_endpoint(
    session: AsyncSession, settings: NurtureSettings, fields: dict[str, Any]
) -> tuple[WebhookEndpoint, str]:
    check_url(settings, "url", fields["url"])
    secret = new_secret()
    endpoint = WebhookEndpoint(**fields, secret=settings.box.seal(secret))
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def rotate_secret(
    session: AsyncSession, settings: NurtureSettings, endpoint_id: UUID, overlap: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A new secret for the endpoint, and until when the old one also signs (`overlap` from
    `now`), so receivers can switch without missing a message."""
    found = await endpoint(session, endpoint_id, lock=True)
    secret = new_secret()
    found.previous_secret, found.secret = found.secret, settings.box.seal(secret)
    found.previous_secret_until = now + overlap
    session.add(found)
    return secret, found.previous_secret_until


async def list_endpoints(session: AsyncSession, cursor: str | None, limit: int) -> list[WebhookEndpoint]:
    """A page of subscriptions, oldest first (`shared.paging`)."""
    query = keyset(select(WebhookEndpoint), ENDPOINTS_ORDER, cursor, limit)
    return list((await session.exec(query)).all())


async def rep(session: AsyncSession, rep_id: UUID) -> Rep:
    found = await session.get(Rep, rep_id)
    if found is None:
        raise NotFound("No such rep")
    return found


async def endpoint(session: AsyncSession, endpoint_id: UUID, lock: bool = False) -> WebhookEndpoint:
    found = await session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if found is None:
        raise NotFound("No such webhook endpoint")
    return found


# A subscription disabled is sent nothing more: its retries end as a 410 ends them (an attempt
# under way keeps its answer, `webhook_records._NEXT_STATUS`); redelivery sends any of them again.
_FAIL_PENDING = text(
    "UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL"
    " WHERE endpoint_id = :endpoint_id AND status = 'pending'"
)


# A receiver moved: its pending deliveries (sent to its URL as it is at each attempt) now count
# against the new address's circuit, not wait for the old one's to close.
_MOVED = text(
    "UPDATE webhook_deliveries SET origin = :origin WHERE status = 'pending'"
    " AND (rep_id = :rep_id OR endpoint_id = :endpoint_id)"
)


async def update_endpoint(
    session: AsyncSession, settings: NurtureSettings, endpoint_id: UUID, changes: dict[str, Any]
) -> WebhookEndpoint:
    check_url(settings, "url", changes.get("url"))
    found = await endpoint(session, endpoint_id, lock=True)
    if (url := changes.get("url")) and url != found.url:
        await session.execute(_MOVED, {"origin": origin_of(url), "rep_id": None, "endpoint_id": endpoint_id})
    for name, value in changes.items():
        setattr(found, name, value)
    if changes.get("active"):
        found.disabled_reason = None
    if changes.get("active") is False:
        await session.execute(_FAIL_PENDING, {"endpoint_id": endpoint_id})
    session.add(found)
    await session.flush()
    await session.refresh(found)
    return found
