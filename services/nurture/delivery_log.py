"""What an admin reads of the webhook deliveries: an endpoint's deliveries, newest first, a page
at a time, each with its latest attempts (a delivery sent again and again keeps every attempt;
the answer shows the last `ATTEMPTS_SHOWN`); and the last hour's failures, with the leads of the
last day that were told to nobody (`unmatched`), which metrics' health asks for."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import DeliveryAttempt, Rep, WebhookDelivery, WebhookEndpoint
from services.nurture.resealing import unopened_signing_secrets
from services.nurture.schemas import DeliveryHealth
from services.nurture.subscriptions import origin_of
from services.nurture.unmatched import told_nobody
from shared.paging import keyset
from shared.sealing import SecretBox

DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
ATTEMPTS = DeliveryAttempt.__table__  # type: ignore[attr-defined]
ORDER = (DELIVERIES.c.created_at, DELIVERIES.c.id)  # a page's order (newest first): unique
ATTEMPTS_SHOWN = 20
# Due now, with a fresh retry schedule; the same webhook-id.
_REDELIVER = update(DELIVERIES).values(
    status="pending", attempts=0, next_attempt_at=func.now(), lease_until=None
)


class NoSuchDelivery(LookupError):
    pass


def to_endpoint(endpoint_id: UUID) -> Any:
    return DELIVERIES.c.endpoint_id == endpoint_id


def to_rep(rep_id: UUID) -> Any:
    """A rep's: hot leads, escalations, call tasks and managers' notices."""
    return DELIVERIES.c.rep_id == rep_id


async def deliveries(
    session: AsyncSession, to: Any, status: str | None, cursor: str | None, limit: int
) -> list[WebhookDelivery]:
    """The deliveries `to` an endpoint or a rep (`to_endpoint`, `to_rep`), newest first."""
    query = select(WebhookDelivery).where(to)
    if status is not None:
        query = query.where(DELIVERIES.c.status == status)
    query = keyset(query, ORDER, cursor, limit, newest_first=True)
    return list((await session.execute(query)).scalars())


async def latest_attempts(
    session: AsyncSession, delivery_ids: list[UUID]
) -> dict[UUID, list[DeliveryAttempt]]:
    """The last `ATTEMPTS_SHOWN` attempts of each delivery, oldest first."""
    newest = func.row_number().over(partition_by=ATTEMPTS.c.delivery_id, order_by=ATTEMPTS.c.id.desc())
    ranked = (
        select(ATTEMPTS.c.id, newest.label("n")).where(ATTEMPTS.c.delivery_id.in_(delivery_ids)).subquery()
    )
    shown = select(ranked.c.id).where(ranked.c.n <= ATTEMPTS_SHOWN)
    query = select(DeliveryAttempt).where(ATTEMPTS.c.id.in_(shown)).order_by(ATTEMPTS.c.id)
    found: dict[UUID, list[DeliveryAttempt]] = {}
    for attempt in (await session.execute(query)).scalars():
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


async def redeliver(session: AsyncSession, delivery_id: UUID) -> None:
    """Make the delivery due again. Locked as it is read: one its lead's erasure was deleting
    was found, waited for, then updated in no row, and the redelivery was still accepted."""
    found = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if found is None:
        raise NoSuchDelivery("No such delivery")
    receiver = await _receiver_url(session, found) or found.url
    await session.execute(_REDELIVER.values(origin=origin_of(receiver)).where(DELIVERIES.c.id == delivery_id))


async def _receiver_url(session: AsyncSession, delivery: WebhookDelivery) -> str | None:
    """Where the delivery goes now (sends follow a moved receiver): its circuit is that
    address's, not the one it was first queued for."""
    if delivery.endpoint_id is not None:
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        return endpoint.url if endpoint is not None else None
    rep = await session.get(Rep, delivery.rep_id) if delivery.rep_id is not None else None
    return rep.webhook_url if rep is not None else None


async def redeliver_range(
    session: AsyncSession, to: Any, url: str, since: datetime, until: datetime | None, status: str
) -> int:
    """Every delivery `to` an endpoint or a rep created in [since, until) with `status` ("any":
    all) made due again, to its current address `url`; how many."""
    again = _REDELIVER.values(origin=origin_of(url))
    query = again.where(to, DELIVERIES.c.created_at >= since)
    if until is not None:
        query = query.where(DELIVERIES.c.created_at < until)
    if status != "any":
        query = query.where(DELIVERIES.c.status == status)
    result = await session.execute(query)
    return int(result.rowcount)  # type: ignore[attr-defined]


_FAILURES = text(
    "SELECT count(*) FILTER (WHERE status_code IS NULL OR status_code >= 300) AS failed, count(*) AS attempts"
    " FROM delivery_attempts WHERE attempted_at > now() - interval '1 hour'"
)


async def delivery_health(session: AsyncSession, now: datetime, box: SecretBox) -> DeliveryHealth:
    row = (await session.execute(_FAILURES)).one()
    ratio = round(row.failed / row.attempts, 4) if row.attempts else 0.0
    nobody = await told_nobody(session, now - timedelta(days=1))
    return DeliveryHealth(
        attempts=row.attempts,
        failed=row.failed,
        failure_ratio=ratio,
        leads_told_nobody=nobody,
        unopened_secrets=await unopened_signing_secrets(session, box),
    )
