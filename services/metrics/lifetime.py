"""Customers summed for LTV and CAC where the rows are: PostgreSQL adds up each group's customers,
revenue, purchases and months of cooperation (and all of them at once), so one row per group
comes back however many customers there are. `ltv_maths.ltv_report` does the arithmetic."""

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Date, Float, Numeric, Text, cast, func, literal, select, true, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.currencies import ForeignRevenue
from services.metrics.finance import DAYS_PER_MONTH, Acquired, Bucketing
from services.metrics.funnels import FACTS
from services.metrics.ltv_maths import CustomerTotals
from services.metrics.overflow import MAX_GROUPS, bounded_columns, group_of


def months_of_cooperation() -> Any:
    """A customer's months of cooperation (LTV's t, 001:323-331): from the first purchase to
    the last or to the last churn, whichever came later (one won back after churning cooperates
    again, and may churn again; a churn is dated by its outcome: `fact_columns._churn_move`),
    whole days in months rounded, plus the month of the first; at least one."""
    f = FACTS.c
    end = func.greatest(f.last_churned_at, f.churned_at, f.last_won_at, f.won_at)
    days = func.floor(func.extract("epoch", end - f.won_at) / 86400)
    return func.greatest(1, func.floor(func.coalesce(days / DAYS_PER_MONTH, 0) + 0.5) + 1)


def in_currency(amounts: Any, currency: str) -> Any:
    """A lead's amounts (`currency_revenue` or `currency_purchases`) in `currency`, and those of
    wins that named none (taken to be in it)."""
    named, unnamed = (func.coalesce(cast(amounts.op("->>")(c), Numeric), 0) for c in (currency, ""))
    return named + unnamed


def _paid_in(f: Any) -> Any:
    """Each of a lead's currencies as a row: (currency, amount), to read with `paid.c`."""
    return func.jsonb_each_text(f.currency_revenue).table_valued("currency", "amount").render_derived("paid")


def _paid_otherwise(f: Any, currency: str) -> Any:
    """Whether a lead paid in a currency other than `currency` (or none named): read off the row
    before its currencies are set out one a row, which few leads need."""
    others = f.currency_revenue.op("-")(cast(literal([currency, ""]), ARRAY(Text)))
    return others != cast(literal("{}"), JSONB)


async def customer_totals(
    session: AsyncSession, by: str | None, currency: str
) -> tuple[CustomerTotals, list[CustomerTotals]]:
    """All customers, and each group's (`by`: channel or segment): those who bought in `currency`,
    their revenue and purchases in it."""
    f = FACTS.c
    purchases = in_currency(f.currency_purchases, currency)
    bought = purchases > 0
    group = getattr(f, by) if by else literal(None)
    query = select(
        group.label("g"),
        (func.grouping(group) if by else literal(1)).label("overall"),
        func.count().filter(bought),
        func.coalesce(func.sum(cast(in_currency(f.currency_revenue, currency), Float)), 0.0),
        func.coalesce(func.sum(purchases), 0),
        func.coalesce(func.sum(months_of_cooperation()).filter(bought), 0),
    ).where(f.purchases > 0)
    if by:
        query = query.group_by(func.grouping_sets(tuple_(), tuple_(group)))
    overall = CustomerTotals(None, 0, 0.0, 0, 0.0)
    groups = []
    for g, is_overall, customers, revenue, purchases, total_months in await session.execute(query):
        name = None if is_overall else g
        totals = CustomerTotals(name, int(customers), float(revenue), int(purchases), float(total_months))
        if is_overall:
            overall = totals
        else:
            groups.append(totals)
    if not by and overall.customers:
        groups = [overall]  # ungrouped, the one row is everyone
    return overall, groups


async def bought_in_other_currencies(
    session: AsyncSession, by: str | None, currency: str
) -> list[tuple[str | None, bool, str, int, int, float]]:
    """Per group (and overall: True), each currency other than `currency`: its customers,
    purchases and revenue. Only the leads who paid in one are read out, a row per currency."""
    f = FACTS.c
    paid = _paid_in(f)
    group = getattr(f, by) if by else literal(None)
    query = (
        select(
            group.label("g"),
            (func.grouping(group) if by else literal(1)).label("overall"),
            paid.c.currency,
            func.count(),
            func.sum(cast(f.currency_purchases.op("->>")(paid.c.currency), Numeric)),
            func.sum(cast(paid.c.amount, Float)),
        )
        .select_from(FACTS.join(paid, true()))
        .where(f.purchases > 0, _paid_otherwise(f, currency), paid.c.currency.not_in([currency, ""]))
    )
    if by:
        query = query.group_by(func.grouping_sets(tuple_(paid.c.currency), tuple_(group, paid.c.currency)))
    else:
        query = query.group_by(paid.c.currency)
    return [
        (None if overall else g, bool(overall), code, int(customers), int(purchases), float(revenue))
        for g, overall, code, customers, purchases, revenue in await session.execute(query)
    ]


async def customers_acquired(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    period: Bucketing,
    by: str | None,
    max_groups: int = MAX_GROUPS,
    keep: Collection[str] = (),
    *,
    zone: str = "UTC",
    currency: str = "USD",
) -> tuple[list[Acquired], list[ForeignRevenue]]:
    """Customers won in [start, end), their revenue and months of cooperation, one row per
    month or quarter (and channel or campaign): however many customers, a few rows come
    back. Campaigns come with leads, any number of them: the `max_groups` with the most
    customers, and those in `keep` (the campaigns spend was entered for), are shown, the rest
    summed as the overflow. Months and quarters are those of `zone` (an IANA name). Revenue in
    `currency`, and the months of cooperation of the customers who paid in it (the payback's);
    the revenue in other currencies apart, per row and currency."""
    f = FACTS.c
    in_period = (f.customer_at >= start, f.customer_at < end)
    day = cast(func.date_trunc(period, func.timezone(zone, f.customer_at)), Date)
    groups: list[Any] = [(getattr(f, by) if by else literal(None)).label("key")]
    if by == "campaign":
        largest = (
            select(f.campaign)
            .where(*in_period, f.campaign.is_not(None))
            .group_by(f.campaign)
            .order_by(func.count().desc(), f.campaign)
            .limit(max_groups)
        )
        shown = f.campaign.in_(largest) | f.campaign.in_(list(keep))
        groups = bounded_columns(f.campaign, shown)
    revenue = func.coalesce(func.sum(cast(in_currency(f.currency_revenue, currency), Float)), 0.0)
    paid = in_currency(f.currency_purchases, currency) > 0  # the payback's customers, as LTV's
    months = func.coalesce(func.sum(months_of_cooperation()).filter(paid), 0).label("months")
    paying = func.count().filter(paid).label("paying")
    customers = func.count().label("customers")
    query = (
        select(day.label("day"), *groups, customers, revenue.label("revenue"), months, paying)
        .where(*in_period)
        .group_by(day, *groups)
    )
    acquired = [
        Acquired(
            row.day, group_of(row), int(row.customers), float(row.revenue), float(row.months), int(row.paying)
        )
        for row in await session.execute(query)
    ]
    each = _paid_in(f)
    foreign = (
        select(
            day.label("day"), *groups, each.c.currency, func.sum(cast(each.c.amount, Float)).label("amount")
        )
        .select_from(FACTS.join(each, true()))
        .where(*in_period, _paid_otherwise(f, currency), each.c.currency.not_in([currency, ""]))
        .group_by(day, *groups, each.c.currency)
    )
    others = [
        ForeignRevenue(row.day, group_of(row), row.currency, float(row.amount))
        for row in await session.execute(foreign)
    ]
    return acquired, others
