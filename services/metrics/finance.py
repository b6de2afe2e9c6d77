"""The money arithmetic, pure: CAC (000:90-97), and the spend spread over its days that LTV's CAC
(`ltv_maths`) reads too."""

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from services.metrics.currencies import ForeignRevenue, beside, currency_note, in_currency, money, summed
from services.metrics.overflow import OVERFLOW, Group, label_of, named_first
from services.metrics.periods import days_begun_in
from services.metrics.schemas import CacReport, CacRow, OtherCurrency
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


class Shared(Enum):
    """The group of the costs entered without the report's group (a channel or campaign): shared
    by every group, none's own. They read as the costs of a group that won nobody, and the
    customers without a campaign were charged every cost entered without one (found by a review)."""

    COSTS = "shared"


SHARED = Shared.COSTS
Key = tuple[str, Group | Shared]


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


class Won(NamedTuple):
    """Customers acquired, their revenue and their months of cooperation, summed."""

    customers: int = 0
    revenue: float = 0.0
    months: float = 0.0


def _summed(rows: Iterable[Won]) -> Won:
    customers, revenue, months = (sum(column) for column in zip(Won(), *rows, strict=True))
    return Won(int(customers), float(revenue), float(months))


class Acquired(NamedTuple):
    """Customers won on `day` (or in the month or quarter starting then), in `group`: their
    revenue, and their months of cooperation summed (`lifetime.months_of_cooperation`)."""

    day: date
    group: Group
    customers: int
    revenue: float
    months: float


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
        won[key] = _summed([won[key], Won(row.customers, row.revenue, row.months)])
    keys = sorted(set(costs) | set(won) | set(elsewhere), key=_in_order)
    rows = [
        beside(_cac_row(k[0], k[1], costs.get(k), won.get(k, Won()), margin, settings), elsewhere.get(k, {}))
        for k in keys
    ]
    totals = _per_period(costs, won, elsewhere, margin, settings) if by else []
    groups = _per_group(costs, won, elsewhere, margin, settings) if by else []
    return CacReport(
        currency=currency,
        currency_note=currency_note(currency),
        rows=rows,
        totals=totals,
        groups=groups,
        overall=beside(_overall(costs, won, margin, settings), summed(elsewhere.values())),
    )


def _in_order(key: Key) -> tuple[str, bool, tuple[int, str]]:
    """By period; in it by name, then null, then the overflow, then the shared costs."""
    period, group = key
    return period, group is SHARED, named_first(None if isinstance(group, Shared) else group)


def _per_period(
    costs: dict[Key, float],
    won: dict[Key, Won],
    elsewhere: dict[Key, dict[str, OtherCurrency]],
    margin: float,
    settings: Any,
) -> list[CacRow]:
    """Each period's CAC over every group: all its costs, shared ones too, ÷ all its customers
    (000:92), as the rows by group cannot give it."""
    spent: dict[str, float] = defaultdict(float)
    for (period, _), cost in costs.items():
        spent[period] += cost
    rows = []
    for period in sorted({period for period, _ in (*costs, *won, *elsewhere)}):
        customers = _summed(w for (p, _), w in won.items() if p == period)
        row = _cac_row(period, None, spent.get(period), customers, margin, settings)
        rows.append(beside(row, summed(o for (p, _), o in elsewhere.items() if p == period)))
    return rows


def _per_group(
    costs: dict[Key, float],
    won: dict[Key, Won],
    elsewhere: dict[Key, dict[str, OtherCurrency]],
    margin: float,
    settings: Any,
) -> list[CacRow]:
    """Each group over the whole period, as `overall` is everyone's: the dashboard shows these
    figures as the API rounds them, not its own sums of the rows (found by a review)."""
    groups = sorted({group for _, group in (*costs, *won, *elsewhere)}, key=lambda g: _in_order(("", g)))
    return [
        beside(
            _overall(_of(costs, group), _of(won, group), margin, settings, group),
            summed(other for (_, g), other in elsewhere.items() if g == group),
        )
        for group in groups
    ]


def _of(rows: dict[Key, Any], group: Group | Shared) -> dict[Key, Any]:
    return {key: value for key, value in rows.items() if key[1] == group}


def _overall(
    costs: dict[Key, float], won: dict[Key, Won], margin: float, settings: Any, group: Group | Shared = None
) -> CacRow:
    """Every cost over the customers of the periods some spend was entered for: a month with none
    is unknown, not free, and its customers counted at no cost made the total's CAC a tenth of
    what they cost (found by a review). Those left out are counted and named."""
    spent_in = {period for period, _ in costs}
    counted = _summed(w for (period, _), w in won.items() if period in spent_in)
    unknown = sorted({period for (period, _), w in won.items() if period not in spent_in and w.customers})
    left_out = sum(w.customers for (period, _), w in won.items() if period in unknown)
    overall = _cac_row("all", group, sum(costs.values()) if costs else None, counted, margin, settings)
    if not left_out:
        return overall
    named = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
    warning = (
        f"{left_out} customers acquired in periods with no spend entered ({named}) are left out:"
        " what they cost is unknown, not nothing"
    )
    return overall.model_copy(
        update={"customers_left_out": left_out, "warnings": [*overall.warnings, warning]}
    )


def _cac_row(
    period: str,
    group: Group | Shared,
    entered: float | None,
    won: Won,
    margin: float,
    settings: Any,
) -> CacRow:
    """`entered`: the costs entered for the period (and group); None when none were, and then
    the CAC is unknown, not zero. The payback: the CAC over the gross profit a customer brings
    a month, over their own months of cooperation (not the period asked for, which would
    change it)."""
    customers, revenue, months = won
    costs = entered or 0.0
    cac = costs / customers if customers and entered is not None else None
    gross_profit = revenue * margin
    ratio = gross_profit / costs if costs else None
    monthly_profit_per_customer = gross_profit / months if months else 0
    payback = cac / monthly_profit_per_customer if cac is not None and monthly_profit_per_customer else None
    if isinstance(group, Shared):
        return CacRow(
            period=period,
            group=None,
            shared=True,
            costs=money(costs),
            customers=0,
            cac=None,
            revenue=0.0,
            cac_ratio=None,
            payback_months=None,
            warnings=[],
        )
    return CacRow(
        period=period,
        group=label_of(group),
        overflow=group is OVERFLOW,
        costs=money(costs),
        customers=customers,
        cac=money(cac) if cac is not None else None,
        revenue=money(revenue),
        cac_ratio=round(ratio, 3) if ratio is not None else None,
        payback_months=round(payback, 2) if payback is not None else None,
        warnings=_cac_warnings(cac, entered, customers, settings),
    )


def _cac_warnings(cac: float | None, entered: float | None, customers: int, settings: Any) -> list[str]:
    """A CAC outside the configured band, costs without customers, customers without costs."""
    costs = entered or 0.0
    warnings = []
    if cac is not None and settings.cac_high is not None and cac > settings.cac_high:
        warnings.append(f"CAC {cac:.2f} is above the band ({settings.cac_high})")
    if cac is not None and settings.cac_low is not None and cac < settings.cac_low:
        warnings.append(
            f"CAC {cac:.2f} is suspiciously low (below {settings.cac_low}): are all costs entered?"
        )
    if costs and not customers:
        warnings.append("costs but no customers acquired in this period")
    if customers and entered is None:
        warnings.append(
            "no spend entered for this period and group (spend entered without a channel or campaign"
            " is shared: it counts in the period's total, `totals`, not in a group's): the CAC is unknown"
        )
    return warnings
