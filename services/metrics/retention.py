"""Retention and returning customers (DOMAIN.md "retention, new vs returning", 003:104,
004:312-315): the customers acquired in a period, by the month they became customers, how many
bought more than once (returning) and how many are churned now. One row per month comes back,
however many customers: the database counts them."""

from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Date, cast, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.models import LeadFact
from services.metrics.schemas import Cohort, RetentionReport

FACTS = LeadFact.__table__  # type: ignore[attr-defined]


class Counted(NamedTuple):
    month: date | None
    customers: int
    bought_again: int
    churned: int


async def cohorts(session: AsyncSession, start: datetime, end: datetime, zone: str) -> list[Counted]:
    """Each month's customers acquired in [start, end), the months those of `zone`."""
    f = FACTS.c
    month = cast(func.date_trunc("month", func.timezone(zone, f.customer_at)), Date).label("month")
    query = (
        select(
            month,
            func.count().label("customers"),
            func.count().filter(f.purchases > 1).label("bought_again"),
            func.count().filter(f.stage == "churned").label("churned"),
        )
        .where(f.customer_at >= start, f.customer_at < end)
        .group_by(month)
        .order_by(month)
    )
    return [Counted(r.month, r.customers, r.bought_again, r.churned) for r in await session.execute(query)]


def retention_report(counted: list[Counted]) -> RetentionReport:
    """The cohorts, and the whole period as one."""
    whole = Counted(
        None,
        sum(c.customers for c in counted),
        sum(c.bought_again for c in counted),
        sum(c.churned for c in counted),
    )
    return RetentionReport(cohorts=[_cohort(c) for c in counted], overall=_cohort(whole))


def _cohort(counted: Counted) -> Cohort:
    retained = counted.customers - counted.churned
    return Cohort(
        month=counted.month.strftime("%Y-%m") if counted.month else None,
        customers=counted.customers,
        bought_again=counted.bought_again,
        repeat_rate=_share(counted.bought_again, counted.customers),
        churned=counted.churned,
        retained=retained,
        retention=_share(retained, counted.customers),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
