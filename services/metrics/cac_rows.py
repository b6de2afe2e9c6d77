"""A CAC report's rows, pure: a period's and group's, each period's over every group, each
group's over the whole period, everyone's (000:92); the costs entered without the report's group
shared by every group."""

from collections import defaultdict
from collections.abc import Iterable
from enum import Enum
from typing import Any, NamedTuple

from services.metrics.currencies import beside, money, summed
from services.metrics.overflow import OVERFLOW, Group, label_of, named_first
from services.metrics.schemas import CacRow, OtherCurrency


class Shared(Enum):
    """The group of the costs entered without the report's group (a channel or campaign): shared
    by every group, none's own. They read as the costs of a group that won nobody, and the
    customers without a campaign were charged every cost entered without one (found by a review)."""

    COSTS = "shared"


SHARED = Shared.COSTS
Key = tuple[str, Group | Shared]


class Won(NamedTuple):
    """Customers acquired, their revenue in the report's currency, and the months of cooperation
    of those of them who paid in it (`paying`), summed."""

    customers: int = 0
    revenue: float = 0.0
    months: float = 0.0
    paying: int = 0


def summed_won(rows: Iterable[Won]) -> Won:
    customers, revenue, months, paying = (sum(column) for column in zip(Won(), *rows, strict=True))
    return Won(int(customers), float(revenue), float(months), int(paying))


def in_order(key: Key) -> tuple[str, bool, tuple[int, str]]:
    """By period; in it by name, then null, then the overflow, then the shared costs."""
    period, group = key
    return period, group is SHARED, named_first(None if isinstance(group, Shared) else group)


def per_period(
    costs: dict[Key, float],
    won: dict[Key, Won],
    elsewhere: dict[Key, dict[str, OtherCurrency]],
    margin: float,
    settings: Any,
    currency: str,
) -> list[CacRow]:
    """Each period's CAC over every group: all its costs, shared ones too, ÷ all its customers
    (000:92), as the rows by group cannot give it."""
    spent: dict[str, float] = defaultdict(float)
    for (period, _), cost in costs.items():
        spent[period] += cost
    rows = []
    for period in sorted({period for period, _ in (*costs, *won, *elsewhere)}):
        customers = summed_won(w for (p, _), w in won.items() if p == period)
        row = cac_row(period, None, spent.get(period), customers, margin, settings, currency)
        rows.append(beside(row, summed(o for (p, _), o in elsewhere.items() if p == period)))
    return rows


def per_group(
    costs: dict[Key, float],
    won: dict[Key, Won],
    elsewhere: dict[Key, dict[str, OtherCurrency]],
    margin: float,
    settings: Any,
    currency: str,
) -> list[CacRow]:
    """Each group over the whole period, as `overall` is everyone's: the dashboard shows these
    figures as the API rounds them, not its own sums of the rows (found by a review)."""
    groups = sorted({group for _, group in (*costs, *won, *elsewhere)}, key=lambda g: in_order(("", g)))
    return [
        beside(
            overall_row(_of(costs, group), _of(won, group), margin, settings, currency, group),
            summed(other for (_, g), other in elsewhere.items() if g == group),
        )
        for group in groups
    ]


def _of(rows: dict[Key, Any], group: Group | Shared) -> dict[Key, Any]:
    return {key: value for key, value in rows.items() if key[1] == group}


def overall_row(
    costs: dict[Key, float],
    won: dict[Key, Won],
    margin: float,
    settings: Any,
    currency: str,
    group: Group | Shared = None,
) -> CacRow:
    """Every cost over the customers of the periods some spend was entered for: a month with none
    is unknown, not free, and its customers counted at no cost made the total's CAC a tenth of
    what they cost (found by a review). Those left out are counted and named."""
    spent_in = {period for period, _ in costs}
    counted = summed_won(w for (period, _), w in won.items() if period in spent_in)
    unknown = sorted({period for (period, _), w in won.items() if period not in spent_in and w.customers})
    left_out = sum(w.customers for (period, _), w in won.items() if period in unknown)
    entered = sum(costs.values()) if costs else None
    overall = cac_row("all", group, entered, counted, margin, settings, currency)
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


def cac_row(
    period: str,
    group: Group | Shared,
    entered: float | None,
    won: Won,
    margin: float,
    settings: Any,
    currency: str,
) -> CacRow:
    """`entered`: the costs entered for the period (and group); None when none were, and then
    the CAC is unknown, not zero. The payback: the CAC over the gross profit a customer brings
    a month, over their own months of cooperation (not the period asked for, which would
    change it), in `currency`: the revenue in it over the months of the customers who paid in
    it, as LTV reckons it; one who paid only in another currency brought none of its profit
    and is no month of it (their months made the payback longer than any customer's)."""
    customers, revenue, months, _ = won
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
        warnings=[*_cac_warnings(cac, entered, customers, settings), *_payback_warnings(won, currency)],
    )


def _payback_warnings(won: Won, currency: str) -> list[str]:
    """Whose monthly profit the payback is reckoned on, when some customers paid in other
    currencies only."""
    if won.paying >= won.customers:
        return []
    elsewhere = won.customers - won.paying
    return [
        f"payback_months counts the {won.paying} customer{'s' * (won.paying != 1)} who paid in {currency}:"
        f" {elsewhere} paid only in other currencies, not converted, and are left out of it (not of the CAC)"
    ]


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
