"""LTV's arithmetic, pure: S x C x P x t (001:323-331), and LTV - CAC per segment and channel
(001:352) against the CAC to date."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from services.metrics.currencies import beside, currency_note, in_currency, money
from services.metrics.finance import bucket_of, spread
from services.metrics.overflow import Group
from services.metrics.schemas import LtvReport, LtvRow, OtherCurrency


@dataclass(frozen=True)
class CustomerTotals:
    """A group's customers, summed (by `lifetime.customer_totals`, in PostgreSQL): how many,
    their revenue and purchases, and their months of cooperation (each: from the first
    purchase to the last or to the last churn, counting the month of the first)."""

    group: str | None
    customers: int
    revenue: float
    purchases: int
    months: float


class Acquisition(NamedTuple):
    """What acquiring customers cost, to date: the spend of the days begun, over the customers
    acquired in the months that have spend entered; `left_out`, those acquired in a month with
    none, whose cost is unknown, not nothing."""

    spent: float
    customers: int
    left_out: int = 0

    @property
    def cac(self) -> float | None:
        return self.spent / self.customers if self.customers and self.spent else None

    def warnings(self) -> list[str]:
        if not self.left_out:
            return []
        return [
            f"{self.left_out} customers acquired in months (UTC) with no spend entered are left out"
            " of the CAC: what they cost is unknown, not nothing"
        ]


def acquisitions(
    entries: Sequence[Any], acquired: Iterable[tuple[date, str | None, int]], until: date, by: str | None
) -> dict[Group, Acquisition]:
    """LTV's CAC, all (`by` None) or per channel: the spend of the days before `until`, spread as
    the CAC report spreads it, over the customers (`acquired`: a month's first day, a channel,
    how many) of the months (UTC) that have spend entered, as the CAC report's total counts them.
    Every customer since the first was counted, spend or none, and LTV's CAC read a tenth of
    what the customers of the months with spend cost (found by a review)."""
    costs = spread(entries, date.min, until, "month", by)
    spent: dict[Group, float] = defaultdict(float)
    for (_, group), amount in costs.items():
        spent[group] += amount
    counted: dict[Group, int] = defaultdict(int)
    left_out: dict[Group, int] = defaultdict(int)
    for month, channel, customers in acquired:
        group = channel if by else None
        tally = counted if (bucket_of(month, "month"), group) in costs else left_out
        tally[group] += customers
    groups = set(spent) | set(counted) | set(left_out)
    return {g: Acquisition(spent.get(g, 0.0), counted.get(g, 0), left_out.get(g, 0)) for g in groups}


def cac_to_date(
    entries: Sequence[Any],
    acquired: Sequence[tuple[date, str | None, int]],
    now: datetime,
    by_channel: bool,
    currency: str = "USD",
) -> tuple[Acquisition, dict[Group, Acquisition] | None]:
    """Everyone's `Acquisition` by `now`, and (`by_channel`) each channel's: the spend in
    `currency` alone."""
    until = now.astimezone(UTC).date() + timedelta(days=1)
    ours, _ = in_currency(entries, currency)
    everyone = acquisitions(ours, acquired, until, None).get(None, Acquisition(0.0, 0))
    return everyone, acquisitions(ours, acquired, until, "channel") if by_channel else None


Elsewhere = dict[tuple[bool, Group], dict[str, OtherCurrency]]  # (overall?, group) -> currency -> ...


def other_currencies(
    entries: Sequence[Any],
    bought: Iterable[tuple[str | None, bool, str, int, int, float]],
    now: datetime,
    by: str | None,
    currency: str,
) -> Elsewhere:
    """What LTV left out in other currencies, overall and per group: the spend of the days begun
    (per channel when `by` is channel: spend has no segment), and the customers, purchases and
    revenue of `lifetime.bought_in_other_currencies`."""
    until = now.astimezone(UTC).date() + timedelta(days=1)
    found: dict[tuple[bool, Group], dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for code, spent in in_currency(entries, currency)[1].items():
        for (_, channel), amount in spread(spent, date.min, until, "month", "channel").items():
            keys = [(True, None), (False, channel)] if by == "channel" else [(True, None)]
            for key in keys:
                found[key][code]["costs"] = found[key][code].get("costs", 0.0) + amount
    for group, overall, code, customers, purchases, revenue in bought:
        found[(overall, group)][code] |= {"customers": customers, "purchases": purchases, "revenue": revenue}
    return {
        key: {
            code: OtherCurrency(
                costs=money(amounts.get("costs", 0.0)),
                revenue=money(amounts.get("revenue", 0.0)),
                customers=amounts.get("customers", 0),
                purchases=amounts.get("purchases", 0),
            )
            for code, amounts in sorted(by_currency.items())
        }
        for key, by_currency in found.items()
    }


def ltv_report(
    groups: Sequence[CustomerTotals],
    overall: CustomerTotals,
    margin: float,
    everyone: Acquisition,
    per_channel: dict[Group, Acquisition] | None = None,
    currency: str = "USD",
    elsewhere: Elsewhere | None = None,
) -> LtvReport:
    """`per_channel`: each channel's `Acquisition`, for LTV against CAC per row; without it (rows
    by segment: spend is entered by channel), each row against the overall CAC (001:352: LTV -
    CAC per segment and channel). `elsewhere`: what each row left out in other currencies."""
    cac = everyone.cac
    elsewhere = elsewhere or {}
    rows = []
    named = {totals.group for totals in groups} | {
        None if g is None else str(g) for overall, g in elsewhere if not overall
    }
    for group in sorted(named, key=lambda g: g or ""):
        totals = next((t for t in groups if t.group == group), CustomerTotals(group, 0, 0.0, 0, 0.0))
        row = _ltv_row(totals, margin)
        if per_channel is not None:
            channel = per_channel.get(totals.group, Acquisition(0.0, 0))
            row = row.model_copy(update={"warnings": channel.warnings()})
            if channel.cac:
                row = _against_cac(row, channel.cac, "channel")
        elif cac:
            row = _against_cac(row, cac, "all")
        rows.append(beside(row, elsewhere.get((False, group), {})))
    whole = _ltv_row(overall, margin)
    ratio = whole.ltv_margin / cac if cac and whole.ltv_margin is not None else None
    if cac:  # the overall row read `cac: null` beside the report's own (found by a review)
        whole = _against_cac(whole, cac, "all")
    return LtvReport(
        currency=currency,
        currency_note=currency_note(currency),
        rows=rows,
        overall=beside(whole, elsewhere.get((True, None), {})),
        cac=money(cac) if cac else None,
        ltv_to_cac=round(ratio, 3) if ratio else None,
        warnings=everyone.warnings(),
    )


def _against_cac(row: LtvRow, cac: float, basis: str) -> LtvRow:
    if row.ltv_margin is None:
        return row.model_copy(update={"cac": money(cac), "cac_basis": basis})
    return row.model_copy(
        update={
            "cac": money(cac),
            "cac_basis": basis,
            "ltv_minus_cac": money(row.ltv_margin - cac),
            "ltv_to_cac": round(row.ltv_margin / cac, 3),
        }
    )


def _ltv_row(totals: CustomerTotals, margin: float) -> LtvRow:
    """S = revenue ÷ purchases; t = average months of cooperation; C = purchases ÷
    customer-months."""
    if not totals.customers or not totals.purchases:
        return LtvRow(
            group=totals.group,
            customers=totals.customers,
            average_check=None,
            purchases_per_month=None,
            margin=margin,
            months=None,
            ltv_revenue=None,
            ltv_margin=None,
        )
    average_check = float(totals.revenue) / totals.purchases
    per_month = totals.purchases / float(totals.months)
    t = float(totals.months) / totals.customers
    ltv = average_check * per_month * t
    return LtvRow(
        group=totals.group,
        customers=totals.customers,
        average_check=money(average_check),
        purchases_per_month=round(per_month, 4),
        margin=margin,
        months=round(t, 2),
        ltv_revenue=money(ltv),
        ltv_margin=money(ltv * margin),
    )
