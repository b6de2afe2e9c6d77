"""Spend entries, metrics' one table of input (not read model): their data access, and the
costs the CAC and LTV reports read from them."""

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Date, cast, func, select
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


async def begun_by(session: AsyncSession, now: datetime) -> list[Spend]:
    """The entries with a day begun by `now` (UTC): LTV's CAC to date spreads them over their
    days (`ltv_maths.acquisitions`) as the CAC report does, read whole as `overlapping` reads them."""
    query = select(Spend).where(col(Spend.period_start) <= now.astimezone(UTC).date())
    return list((await session.execute(query)).scalars())


async def report_currency(session: AsyncSession, asked: str | None) -> str:
    """The currency CAC and LTV are reckoned in: the one set (`asked`), else
    the one most spend entries are in (the first by name of those tied), else USD (the one an
    entry is in when it names none)."""
    if asked:
        return asked
    query = (
        select(col(Spend.currency))
        .group_by(col(Spend.currency))
        .order_by(func.count().desc(), col(Spend.currency))
        .limit(1)
    )
    return (await session.execute(query)).scalar() or "USD"


async def acquired_by_month(session: AsyncSession, now: datetime) -> list[tuple[date, str | None, int]]:
    """The customers acquired by `now`, counted per month (UTC, its first day) and channel: a few
    rows, however many customers."""
    month = cast(func.date_trunc("month", func.timezone("UTC", FACTS.c.customer_at)), Date)
    query = (
        select(month, FACTS.c.channel, func.count())
        .where(FACTS.c.customer_at <= now)
        .group_by(month, FACTS.c.channel)
    )
    return [(day, channel, int(count)) for day, channel, count in await session.execute(query)]
