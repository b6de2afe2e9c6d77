"""The money and speed arithmetic, pure: spend spread over its days, CAC warnings outside the
band, LTV against each channel's CAC, percentiles read off a histogram."""

import math
import random
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from services.metrics.finance import Acquired, cac_report
from services.metrics.ltv_maths import Acquisition, CustomerTotals, acquisitions, ltv_report
from services.metrics.periods import days_begun_in
from services.metrics.speed_maths import GROWTH, QUANTILES, bucket_middle, nearest_rank

BANDS = SimpleNamespace(cac_low=50.0, cac_high=400.0)


def spend(start: date, end: date, amount: str, channel: str = "ad") -> SimpleNamespace:
    return SimpleNamespace(
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency="USD",
        channel=channel,
        campaign=None,
    )


def customer(at: datetime, channel: str = "ad", revenue: float = 100.0) -> Acquired:
    return Acquired(at.date(), channel, 1, revenue, months=1.0, paying=1)


def test_spend_is_spread_over_its_days_and_cac_warns_outside_the_band() -> None:
    costs = [spend(date(2031, 3, 16), date(2031, 4, 14), "3000.00")]  # 30 days: half in March, half in April
    march, april = datetime(2031, 3, 20, tzinfo=UTC), datetime(2031, 4, 10, tzinfo=UTC)
    won = [customer(march), customer(march), customer(april)]
    report = cac_report(
        costs,
        won,
        datetime(2031, 3, 1, tzinfo=UTC),
        datetime(2031, 5, 1, tzinfo=UTC),
        None,
        "month",
        0.5,
        BANDS,
    )
    by_month = {row.period: row for row in report.rows}
    assert (by_month["2031-03"].costs, by_month["2031-03"].cac) == (1600.0, 800.0)  # 16 of 30 days
    assert (by_month["2031-04"].costs, by_month["2031-04"].cac) == (1400.0, 1400.0)
    assert any("above the band" in w for w in by_month["2031-03"].warnings)
    cheap = cac_report(
        [spend(date(2031, 3, 1), date(2031, 3, 31), "90.00")],  # CAC 45, below 50
        won[:2],
        datetime(2031, 3, 1, tzinfo=UTC),
        datetime(2031, 4, 1, tzinfo=UTC),
        None,
        "quarter",
        0.5,
        BANDS,
    )
    assert cheap.rows[0].period == "2031-Q1" and any("suspiciously low" in w for w in cheap.rows[0].warnings)


def test_ltv_minus_cac_per_segment_is_against_the_overall_cac() -> None:
    """001:352: LTV - CAC per segment and channel. Spend is entered by channel, not by segment,
    so a segment's LTV is set against what a customer cost overall (300 ÷ 2), and says so."""
    retail = CustomerTotals("retail", customers=1, revenue=720.0, purchases=36, months=36.0)
    wholesale = CustomerTotals("wholesale", customers=1, revenue=240.0, purchases=12, months=12.0)
    everyone = CustomerTotals(None, customers=2, revenue=960.0, purchases=48, months=48.0)
    report = ltv_report([wholesale, retail], everyone, 0.5, Acquisition(300.0, 2), None)
    assert [(r.group, r.cac, r.cac_basis, r.ltv_minus_cac) for r in report.rows] == [
        ("retail", 150.0, "all", 210.0),
        ("wholesale", 150.0, "all", -30.0),
    ]
    assert report.rows[0].ltv_to_cac == 2.4


def test_ltv_minus_cac_per_channel() -> None:
    """One buyer of 36 purchases worth 720 over 36 months (the first to the last, counted)."""
    buyer = CustomerTotals("ad", customers=1, revenue=720.0, purchases=36, months=36.0)
    everyone = CustomerTotals(None, customers=1, revenue=720.0, purchases=36, months=36.0)
    report = ltv_report([buyer], everyone, 0.5, Acquisition(200.0, 1), {"ad": Acquisition(200.0, 1)})
    [row] = report.rows
    assert (row.ltv_revenue, row.ltv_margin, row.cac, row.ltv_minus_cac, row.ltv_to_cac) == (
        720.0,
        360.0,
        200.0,
        160.0,
        1.8,
    )
    assert row.cac_basis == "channel"


def test_a_histograms_nearest_rank_is_the_bucket_of_the_sorted_values_nearest_rank() -> None:
    rng = random.Random(9)
    for _ in range(200):
        values = [rng.randint(-5, 40) for _ in range(rng.randint(1, 60))]
        histogram = Counter(values)
        ordered = sorted(values)
        expected = [ordered[max(math.ceil(q * len(values)), 1) - 1] for q in QUANTILES]
        assert nearest_rank(histogram) == expected, values


def test_a_buckets_middle_is_within_one_percent_of_every_value_in_it() -> None:
    for value in (0.001, 0.05, 0.7, 1.0, 2.0, 119.9, 120.0, 900.0, 86_400.0, 3.2e7):
        bucket = math.ceil(math.log(value) / math.log(GROWTH))  # as speed_bucket() files it
        assert bucket_middle(bucket) == pytest.approx(value, rel=0.01)


def test_customers_of_a_group_with_no_spend_entered_have_no_cac_not_a_cac_of_zero() -> None:
    """The month's costs were entered without a channel: the web form's customers cost
    something, but how much is unknown, and 0.00 would read as free."""
    costs = [spend(date(2031, 3, 1), date(2031, 3, 31), "300.00", channel=None)]  # type: ignore[arg-type]
    won = [customer(datetime(2031, 3, 20, tzinfo=UTC), channel="web_form")]
    report = cac_report(
        costs,
        won,
        datetime(2031, 3, 1, tzinfo=UTC),
        datetime(2031, 4, 1, tzinfo=UTC),
        "channel",
        "month",
        0.5,
        BANDS,
    )
    rows = {row.group: row for row in report.rows}
    assert (rows["web_form"].cac, rows["web_form"].payback_months) == (None, None)
    assert any("no spend entered" in w for w in rows["web_form"].warnings)
    assert rows[None].costs == 300.0 and report.overall.cac == 300.0


def test_ltvs_cac_leaves_out_the_customers_of_a_month_between_spends_with_none_entered() -> None:
    """Spend entered for January 2024, then none until March 2026: July 2025's five customers cost
    something unknown, not nothing, though spend was entered before and after them."""
    costs = [
        spend(date(2024, 1, 1), date(2024, 1, 31), "310.00"),
        spend(date(2026, 3, 1), date(2026, 3, 31), "620.00"),
    ]
    won = [(date(2024, 1, 1), "ad", 2), (date(2025, 7, 1), "ad", 5), (date(2026, 3, 1), "ad", 1)]
    [(group, ad)] = acquisitions(costs, won, date(2026, 6, 15), "channel").items()
    assert (group, ad, ad.cac) == ("ad", Acquisition(930.0, 3, 5), 310.0)
    assert "5 customers" in ad.warnings()[0]


def test_the_ltv_report_says_its_amounts_are_summed_as_entered() -> None:
    """Outcomes and spend may carry different currencies: the report says it does not convert."""
    report = ltv_report([], CustomerTotals(None, 0, 0.0, 0, 0.0), 0.5, Acquisition(0.0, 0), None)
    assert "currency" in report.currency_note


def test_a_days_spend_counts_in_the_period_that_holds_its_midnight() -> None:
    """Customers count to the instant and spend by whole days: a period ending 23:59:59 left its
    last day's spend out (found by an outside review). Two periods that meet count each day once."""
    march = [spend(date(2031, 3, 1), date(2031, 3, 31), "3100.00")]  # 100 a day
    won = [customer(datetime(2031, 3, 31, 20, tzinfo=UTC))]

    def costs(start: datetime, end: datetime, zone: str = "UTC") -> float:
        report = cac_report(march, won, start, end, None, "month", 0.5, BANDS, zone=ZoneInfo(zone))
        return report.overall.costs

    first, last_second = datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert costs(first, last_second) == 3100.0
    assert costs(first, datetime(2031, 4, 1, tzinfo=UTC)) == 3100.0
    noon = datetime(2031, 3, 15, 12, tzinfo=UTC)
    assert (costs(first, noon), costs(noon, last_second)) == (1500.0, 1600.0)  # 15 March once
    almaty_last_second = datetime(2031, 3, 31, 23, 59, 59, tzinfo=ZoneInfo("Asia/Almaty"))
    assert (
        costs(datetime(2031, 3, 1, tzinfo=ZoneInfo("Asia/Almaty")), almaty_last_second, "Asia/Almaty")
        == 3100.0
    )


def test_the_days_a_period_holds_at_a_clock_change_and_at_the_ends_of_the_calendar() -> None:
    """Santiago's clocks go from 00:00 to 01:00 on 8 September 2024: that day starts at 04:00 UTC.
    The first instant a datetime holds is no error (in New York it falls before year 1 begins)."""
    santiago, new_york = ZoneInfo("America/Santiago"), ZoneInfo("America/New_York")
    start, end = datetime(2024, 9, 8, 4, tzinfo=UTC), datetime(2024, 9, 9, 3, tzinfo=UTC)
    assert days_begun_in(start, end, santiago) == (date(2024, 9, 8), date(2024, 9, 9))
    first, third = datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 3, tzinfo=UTC)
    assert days_begun_in(first, third, ZoneInfo("UTC")) == (date(1, 1, 1), date(1, 1, 3))
    assert days_begun_in(first, third, new_york) == (date(1, 1, 1), date(1, 1, 3))
    assert days_begun_in(first, third, ZoneInfo("Asia/Almaty")) == (date(1, 1, 2), date(1, 1, 4))


def test_money_is_rounded_half_up_to_the_cent() -> None:
    """November in Almaty, by hand: 1,200,000.50 ÷ 4 = 300,000.125, which round() gave as
    300,000.12 (the float's tie goes to the even cent) while the dashboard showed 300,000.13."""
    november = [spend(date(2026, 11, 1), date(2026, 11, 30), "1200000.50")]
    won = [customer(datetime(2026, 11, 10, tzinfo=UTC)) for _ in range(4)]
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    report = cac_report(november, won, start, end, "channel", "month", 0.5, BANDS)
    assert (report.overall.cac, report.rows[0].cac) == (300000.13, 300000.13)
    assert (report.totals[0].cac, report.groups[0].cac) == (300000.13, 300000.13)


def test_the_ltv_overall_row_carries_the_cac_it_is_set_against() -> None:
    """The overall row read `cac: null` beside the report's `cac` of 215,012.56."""
    everyone = CustomerTotals(None, customers=2, revenue=960.0, purchases=48, months=48.0)
    report = ltv_report([everyone], everyone, 0.5, Acquisition(300.0, 2), None)
    assert (report.cac, report.overall.cac, report.overall.cac_basis) == (150.0, 150.0, "all")
    assert report.overall.ltv_minus_cac == report.overall.ltv_margin - 150.0  # type: ignore[operator]
