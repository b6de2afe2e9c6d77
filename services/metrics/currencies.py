"""Money, pure: every amount a report gives rounded to the cent in one way (`money`); with no
exchange rates nothing is converted: a report is reckoned in one currency and each row shows
apart what it left out in the others."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, TypeVar

from services.metrics.overflow import Group
from services.metrics.schemas import CacRow, LtvRow, OtherCurrency

Row = TypeVar("Row", CacRow, LtvRow)


def money(amount: float) -> float:
    """To the cent, half up, as an accountant rounds by hand: round() rounded 300,000.125 down to
    300,000.12, the float's tie to the even cent, while the dashboard showed 300,000.13 (found by a
    review). The float's shortest text is the amount meant."""
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def currency_note(currency: str) -> str:
    return (
        f"every amount is in {currency}; amounts in other currencies are not converted (no exchange"
        " rates): they are left out of every figure and shown apart, per row, in other_currencies."
        f" A win that named no currency counts as {currency}"
    )


def in_currency(entries: Iterable[Any], currency: str) -> tuple[list[Any], dict[str, list[Any]]]:
    """The spend entries in `currency`, and the others by their currency."""
    ours: list[Any] = []
    others: dict[str, list[Any]] = defaultdict(list)
    for entry in entries:
        (ours if entry.currency == currency else others[entry.currency]).append(entry)
    return ours, dict(others)


class ForeignRevenue(NamedTuple):
    """Revenue of customers won on `day` (or in its month or quarter), in `group`, paid in
    `currency`, another than the report's."""

    day: date
    group: Group
    currency: str
    revenue: float


def summed(rows: Iterable[dict[str, OtherCurrency]]) -> dict[str, OtherCurrency]:
    """Costs and revenue of several rows, per currency."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        for currency, other in row.items():
            totals[currency][0] += other.costs
            totals[currency][1] += other.revenue
    return {c: OtherCurrency(costs=money(a), revenue=money(b)) for c, (a, b) in sorted(totals.items())}


def beside(row: Row, others: dict[str, OtherCurrency]) -> Row:
    """The row with what it left out in other currencies, and a warning naming them."""
    if not others:
        return row
    named = ", ".join(f"{code} ({_amounts(other)})" for code, other in others.items())
    warning = f"left out, not converted: {named}"
    return row.model_copy(update={"other_currencies": others, "warnings": [*row.warnings, warning]})


def _amounts(other: OtherCurrency) -> str:
    said = [] if other.customers is None else [f"{other.customers} customers"]
    return ", ".join([*said, f"costs {other.costs:,.2f}", f"revenue {other.revenue:,.2f}"])
