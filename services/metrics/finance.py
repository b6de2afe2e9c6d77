"""The money arithmetic, pure: CAC (000:90-97), and the spend spread over its days that LTV's CAC
(`ltv_maths`) reads too."""

import calendar
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from services.metrics.cac_rows import (
    SHARED,
    Key,
    Won,
    cac_row,
    in_order,
    overall_row,
    per_group,
    per_period,
    summed_won,
)
from services.metrics.currencies import ForeignRevenue, beside, currency_note, in_currency, money, summed
from services.metrics.overflow import Group
from services.metrics.periods import days_begun_in
from services.metrics.schemas import CacReport, OtherCurrency
from shared.times import UTC_ZONE

Bucketing = Literal["month", "quarter"]
DAYS_PER_MONTH = 365.25 / 12


def bucket_of(moment: date, period: Bucketing) -> str:
    if period == "quarter":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    return f"{moment.year}-{moment.month:02d}"


def _last_day_of_bucket(moment: date, period: Bucketing) -> date:
    month = (moment.month - 1) // 3 * 3 + 3 if period == "quarter" else moment.month
    return date(moment.year, month, calendar.monthrange(moment.year, month)[1])


def spread(
    entries: Sequence[Any], start: date, end: date, period: Bucketing, by: str | None
) -> dict[tuple[str, Group], float]:
    """Each spend entry's amount, spread evenly over its days, summed per bucket (and group);
    only the days from `start` up to `end` (exclusive) count. Work grows with the buckets,
    not the days, and day numbers (ordinals) never overflow at the ends of the calendar."""
    costs: dict[tuple[str, Group], float] = defaultdict(float)
    for entry in entries:
        first, last = entry.period_start.toordinal(), entry.period_end.toordinal()
        per_day = float(entry.amount) / (last - first + 1)
        group = getattr(entry, by) if by else None
        day, stop = max(first, start.toordinal()), min(last + 1, end.toordinal())
        while day < stop:
            moment = date.fromordinal(day)
            following = min(_last_day_of_bucket(moment, period).toordinal() + 1, stop)
            costs[(bucket_of(moment, period), group)] += per_day * (following - day)
            day = following
    return costs


def _costs(
    entries: Sequence[Any], days: tuple[date, date], period: Bucketing, by: str | None
) -> dict[Key, float]:
    """`spread`, the costs entered without the group `by` as the shared ones."""
    spent = spread(entries, *days, period, by)
    return {
        (bucket, SHARED if by and group is None else group): cost for (bucket, group), cost in spent.items()
    }


def _other_currencies(
    others: dict[str, list[Any]],
    revenue: Sequence[ForeignRevenue],
    days: tuple[date, date],
    period: Bucketing,
    by: str | None,
) -> dict[Key, dict[str, OtherCurrency]]:
    """Per bucket (and group), what was spent and earned in each other currency."""
    amounts: dict[Key, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for currency, entries in others.items():
        for key, cost in _costs(entries, days, period, by).items():
            amounts[key][currency][0] += cost
    for row in revenue:
        amounts[(bucket_of(row.day, period), row.group if by else None)][row.currency][1] += row.revenue
    return {
        key: {
            c: OtherCurrency(costs=money(cost), revenue=money(earned))
            for c, (cost, earned) in sorted(by_currency.items())
        }
        for key, by_currency in amounts.items()
    }


class Acquired(NamedTuple):
    """Customers won on `day` (or in the month or quarter starting then), in `group`: their
    revenue in the report's currency, those of them who paid in it (`paying`) and those's months
    of cooperation summed (`lifetime.months_of_cooperation`)."""

    day: date
    group: Group
    customers: int
    revenue: float
    months: float
    paying: int


def cac_report(
    spend: Sequence[Any],
    acquired: Sequence[Acquired],
    start: datetime,
    end: datetime,
    by: str | None,
    period: Bucketing,
    margin: float,
    settings: Any,
    *,
    zone: ZoneInfo = UTC_ZONE,
    currency: str = "USD",
    foreign: Sequence[ForeignRevenue] = (),
) -> CacReport:
    """Costs of the days that start in [start, end) in `zone` (`days_begun_in`), beside the
    customers acquired in it; in `currency` alone (`acquired`'s revenue is theirs in it), the
    spend and the revenue (`foreign`) in other currencies beside each row, unconverted."""
    days = days_begun_in(start, end, zone)
    ours, others = in_currency(spend, currency)
    costs = _costs(ours, days, period, by)
    elsewhere = _other_currencies(others, foreign, days, period, by)
    won: dict[Key, Won] = defaultdict(Won)
    for row in acquired:
        key = (bucket_of(row.day, period), row.group if by else None)
        won[key] = summed_won([won[key], Won(row.customers, row.revenue, row.months, row.paying)])
    keys = sorted(set(costs) | set(won) | set(elsewhere), key=in_order)
    rows = [
        beside(
            cac_row(k[0], k[1], costs.get(k), won.get(k, Won()), margin, settings, currency),
            elsewhere.get(k, {}),
        )
        for k in keys
    ]
    totals = per_period(costs, won, elsewhere, margin, settings, currency) if by else []
    groups = per_group(costs, won, elsewhere, margin, settings, currency) if by else []
    return CacReport(
        currency=currency,
        currency_note=currency_note(currency),
        rows=rows,
        totals=totals,
        groups=groups,
        overall=beside(overall_row(costs, won, margin, settings, currency), summed(elsewhere.values())),
    )
