"""Spend entries, metrics' one table of input (not read model): their data access, and the
costs the CAC and LTV reports read from them."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, literal, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.funnels import FACTS
from services.metrics.models import Spend
from services.metrics.schemas import SpendIn
from shared import paging

ORDER = (col(Spend.period_start), col(Spend.id))  # a page's order: unique


class NoSuchEntry(LookupError):
    """No spend entry has that id."""


async def add(session: AsyncSession, data: SpendIn) -> Spend:
    entry = Spend(**data.model_dump())
    session.add(entry)
    return await _as_stored(session, entry)


async def _as_stored(session: AsyncSession, entry: Spend) -> Spend:
    """The entry as the database keeps it (its amount to the cent), as a later read shows it."""
    await session.flush()
    await session.refresh(entry)
    return entry


async def correct(session: AsyncSession, spend_id: UUID, data: SpendIn) -> Spend:
    """The entry replaced by `data` as a whole."""
    entry = await session.get(Spend, spend_id, with_for_update=True)
    if entry is None:
        raise NoSuchEntry(spend_id)
    for name, value in data.model_dump().items():
        setattr(entry, name, value)
    session.add(entry)
    return await _as_stored(session, entry)


async def delete(session: AsyncSession, spend_id: UUID) -> None:
    entry = await session.get(Spend, spend_id)
    if entry is None:
        raise NoSuchEntry(spend_id)
    await session.delete(entry)


async def page(session: AsyncSession, cursor: Any, limit: int) -> list[Spend]:
    """Up to `limit` + 1 entries by period start after `cursor` (paging.page trims the extra)."""
    query = paging.keyset(select(Spend), ORDER, cursor, limit)
    return list((await session.execute(query)).scalars())


def page_key(entry: Spend) -> tuple[date, UUID]:
    return entry.period_start, entry.id


async def overlapping(session: AsyncSession, first: date, last: date) -> list[Spend]:
    """The entries whose period meets the days [first, last): people enter them by hand, a
    few per channel or campaign a month, so they are read whole."""
    query = select(Spend).where(col(Spend.period_end) >= first, col(Spend.period_start) < last)
    return list((await session.execute(query)).scalars())


def _spent_by(day: date) -> Any:
    """Each entry's share of its days begun by the end of `day`, spread evenly over its days as
    the CAC report spreads it: a year's sponsorship entered in January counted whole in March
    made LTV's CAC five times the CAC report's (found by a review)."""
    days = col(Spend.period_end) - col(Spend.period_start) + 1
    begun = func.least(func.greatest(literal(day + timedelta(days=1)) - col(Spend.period_start), 0), days)
    return func.coalesce(func.sum(col(Spend.amount) * begun / days), 0)


async def all_time(session: AsyncSession, now: datetime) -> tuple[float, int]:
    """Every cost of the days begun by `now` (UTC), and every customer acquired by then: the
    all-time CAC beside LTV."""
    spent = (await session.execute(select(_spent_by(now.astimezone(UTC).date())))).scalar_one()
    acquired = (await session.execute(select(func.count()).where(FACTS.c.customer_at <= now))).scalar_one()
    return float(spent), int(acquired)


async def by_channel(session: AsyncSession, now: datetime) -> dict[str | None, tuple[float, int]]:
    """Each channel's costs of the days begun by `now` and customers acquired by then: its CAC,
    beside its LTV."""
    spend = await session.execute(
        select(col(Spend.channel), _spent_by(now.astimezone(UTC).date())).group_by(col(Spend.channel))
    )
    won = await session.execute(
        select(FACTS.c.channel, func.count()).where(FACTS.c.customer_at <= now).group_by(FACTS.c.channel)
    )
    customers = {channel: int(count) for channel, count in won}
    return {channel: (float(total), customers.get(channel, 0)) for channel, total in spend}
