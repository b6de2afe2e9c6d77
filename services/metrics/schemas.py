"""Request and response models of the metrics API."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from shared.events.ingest import Channel
from shared.events.scoring import Stage
from shared.inputs import StorableInput
from shared.times import Day

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RebuildUnderWay(BaseModel):
    done: int = Field(description="Archived events replayed so far.")
    events: int = Field(description="Archived events the rebuild replays.")


class Report(BaseModel):
    rebuilding: RebuildUnderWay | None = Field(
        None,
        description="Set while a rebuild (POST /v1/rebuild) replays metrics' archive: until it is"
        " done these figures are partial.",
    )


class FunnelStage(BaseModel):
    stage: str
    count: int = Field(description="Leads that reached this stage (or a later one).")
    conversion_from_previous: float | None
    drop_off: int | None = Field(description="Leads that reached this stage but not the next.")
    median_days_in_stage: float | None


class FunnelBody(BaseModel):
    total: int
    stages: list[FunnelStage]
    overall_conversion: float | None


OVERFLOW_MARK = Field(
    False,
    description="true on the one group that sums the values past max_groups (labelled '(other)'):"
    " a value really called '(other)' is a group of its own, false.",
)


class FunnelGroup(FunnelBody):
    group: str | None = Field(
        description="The channel, source, campaign or industry; null: the leads without one."
    )
    name: str | None = Field(
        None,
        description="group_by=source: the source's name (the latest its leads carried; null when none"
        " said it); `group` stays its id.",
    )
    overflow: bool = OVERFLOW_MARK


class Funnel(FunnelBody, Report):
    by_stage: dict[str, int] = Field(description="Leads by their current stage.")
    by_temperature: dict[str, int]
    groups: list[FunnelGroup] = Field(
        default_factory=list,
        description="With group_by, one funnel per group, side by side: by name, then null, then the"
        " overflow ('(other)', overflow true).",
    )


# Spread over its days, an entry from year 1 to 9998 put nothing in any period a report asks
# about, and CAC read "costs but no customers" (found by an outside review).
LONGEST_SPEND_DAYS = 3660


class SpendIn(StorableInput):
    model_config = ConfigDict(extra="forbid")

    period_start: Day
    period_end: Day  # checked against period_start by `_ordered`, and refused by its name
    category: Literal["marketing", "sales"]
    amount: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    channel: Channel | None = Field(None, description="A source's channel, as leads carry it.")
    campaign: Label | None = None
    stage: Stage | None = Field(None, description="A lifecycle stage, as classifications name it.")
    note: Annotated[str, StringConstraints(max_length=500)] | None = None

    @field_validator("period_end")
    @classmethod
    def _ordered(cls, end: date, info: ValidationInfo) -> date:
        """Named `period_end`, the field a form marks, not `body`."""
        start = info.data.get("period_start")
        if start is None:  # refused itself
            return end
        if end < start:
            raise ValueError("period_end is before period_start")
        if (end - start).days >= LONGEST_SPEND_DAYS:
            longest = f"a spend entry covers at most {LONGEST_SPEND_DAYS} days (ten years)"
            raise ValueError(f"{longest}: enter a longer one year by year")
        return end


class SpendPublic(BaseModel):
    """An entry as kept: its channel and stage as entered, also those entered before they were
    checked against the known ones (which a correction must then replace)."""

    id: UUID
    period_start: Day
    period_end: Day
    category: str
    amount: Decimal
    currency: str
    channel: str | None
    campaign: str | None
    stage: str | None
    note: str | None
    created_at: datetime


SPEND_DAYS = (
    "Spend entered for the days that start in the period (at midnight in `tz`), each entry spread"
    " evenly over its days: a period ending 23:59:59 holds its last day's spend, one starting at"
    " noon none of its first day's."
)


class OtherCurrency(BaseModel):
    """What a row left out in one other currency: not converted (there are no exchange rates)."""

    costs: float = Field(0.0, description="Spend entered in this currency.")
    revenue: float = Field(0.0, description="Revenue of wins in this currency.")
    customers: int | None = Field(None, description="LTV: customers who bought in this currency.")
    purchases: int | None = Field(None, description="LTV: their purchases in this currency.")


OTHER_CURRENCIES: Any = Field(
    default_factory=dict,
    description="Amounts in currencies other than the report's `currency`, by currency: left out of"
    " every figure of the row, not converted, and named in its warnings.",
)


class CacRow(BaseModel):
    period: str
    group: str | None
    overflow: bool = OVERFLOW_MARK
    shared: bool = Field(
        False,
        description="true on a period's costs entered without a channel (or campaign), `group` null:"
        " shared by every group, none's own, so no customers and no CAC of their own; they count in"
        " the period's total (`totals`) and `overall`. The row of the customers without one is apart.",
    )
    costs: float = Field(description=SPEND_DAYS)
    customers: int = Field(
        description="Customers acquired in the period (to the instant); in `overall`, those of the"
        " periods with spend entered (the others are `customers_left_out`)."
    )
    customers_left_out: int = Field(
        0,
        description="`overall` only: the customers acquired in periods (rows) with no spend entered,"
        " left out of its customers, revenue and CAC: what they cost is unknown, not nothing.",
    )
    cac: float | None
    revenue: float
    cac_ratio: float | None = Field(
        description="Gross profit of the customers acquired ÷ what acquiring them cost."
    )
    payback_months: float | None = Field(
        description="CAC ÷ the gross profit a customer brings a month: their revenue x margin over"
        " their months of cooperation (first purchase to the last or to the last churn), so it does not"
        " change with the period asked for. In the report's currency, as LTV: the revenue in it over the"
        " months of the customers who paid in it; those who paid only in other currencies are left out"
        " of it (not of `customers` or the CAC), and a warning says how many."
    )
    warnings: list[str]
    other_currencies: dict[str, OtherCurrency] = OTHER_CURRENCIES


REPORT_CURRENCY = Field(
    description="The currency of every amount: LEADFLOW_METRICS_CURRENCY, else the one most spend"
    " entries are in (USD with none). A win that named no currency is taken to be in it."
)


class CacReport(Report):
    currency: str = REPORT_CURRENCY
    currency_note: str
    rows: list[CacRow]
    totals: list[CacRow] = Field(
        default_factory=list,
        description="With group_by: each period's CAC over every group, all its costs (the shared ones"
        " too) ÷ all its customers (000:92); `group` null.",
    )
    groups: list[CacRow] = Field(
        default_factory=list,
        description="With group_by: each group over the whole period, as `overall` is everyone's"
        " (`period` 'all'; the shared costs too, `shared` true).",
    )
    overall: CacRow = Field(
        description="All costs ÷ all customers of the periods with spend entered (000:92), shared costs"
        " included; `period` 'all'."
    )


class LtvRow(BaseModel):
    group: str | None
    customers: int
    average_check: float | None = Field(description="S")
    purchases_per_month: float | None = Field(description="C")
    margin: float = Field(description="P")
    months: float | None = Field(description="t: average months of cooperation")
    ltv_revenue: float | None = Field(description="S x C x t")
    ltv_margin: float | None = Field(description="S x C x P x t")
    cac: float | None = Field(
        None,
        description="All spend on this channel ÷ its customers acquired in the months (UTC) with"
        " spend entered for it (group_by=channel); for a segment, all spend ÷ all customers"
        " acquired in the months with spend entered (spend is entered by channel, not by segment).",
    )
    cac_basis: Literal["channel", "all"] | None = Field(
        None, description="Whose spend and customers `cac` is: the row's channel's, or everyone's."
    )
    ltv_minus_cac: float | None = Field(
        None, description="LTV (margin) - CAC: what a customer earns net (001:352)."
    )
    ltv_to_cac: float | None = None
    warnings: list[str] = Field(
        default_factory=list,
        description="group_by=channel: the channel's customers left out of its CAC, acquired in"
        " months with no spend entered for it (what they cost is unknown, not nothing); what was"
        " left out in other currencies.",
    )
    other_currencies: dict[str, OtherCurrency] = OTHER_CURRENCIES


class LtvReport(Report):
    currency: str = REPORT_CURRENCY
    currency_note: str
    rows: list[LtvRow]
    overall: LtvRow
    cac: float | None = Field(
        description="All spend of the days begun ÷ the customers acquired in the months (UTC) with"
        " spend entered."
    )
    ltv_to_cac: float | None
    warnings: list[str] = Field(
        default_factory=list,
        description="The customers left out of `cac`, acquired in months with no spend entered.",
    )


class Percentiles(BaseModel):
    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class SpeedRow(BaseModel):
    group: str | None
    name: str | None = Field(
        None,
        description="By rep: the rep's name as nurture last gave it with a hand-off (null for a rep"
        " handed no lead since metrics migration 0028, and by channel).",
    )
    hand_offs: int = Field(
        0,
        description="Leads handed to a rep (by rep: the rep's hand-offs given in the period, but those"
        " taken from them unacknowledged through no fault of theirs). By rep, every rep named in a"
        " hand-off is listed: one handed nothing in the period has 0 here and null timings, after"
        " the reps handed something (the leads with no rep, group null, last).",
    )
    to_first_webhook_seconds: Percentiles
    to_acknowledgement_seconds: Percentiles = Field(
        description="Capture → acknowledgement, of the leads acknowledged; by rep, each rep's"
        " hand-off → that rep's acknowledgement, of their hand-offs given in the period."
    )
    sla_compliance: float | None = Field(
        description="Of the leads handed to a rep whose SLA is over, the share acknowledged"
        " within it; those still inside their SLA (sla_pending) are left out until it is over."
        " A lead breached before any hand-off (no active rep matched it: nurture told the"
        " managers) is missed, and counts among them though no rep had it. By rep, of the rep's"
        " hand-offs given in the period (an escalated lead is a hand-off of each rep it went to),"
        " each acknowledged within the SLA of that rep's hand-off; one taken from the rep before"
        " they acknowledged it, through no fault of theirs, is neither met nor missed."
    )
    sla_pending: int = Field(
        description="Leads handed to a rep, not acknowledged yet and still inside their SLA (by rep,"
        " the rep's hand-offs)."
    )
    touches_to_conversion: float | None = Field(
        description="Touches sent to a customer before it became one, on average (not those after)."
    )
    sales_cycle_days: Percentiles


class SpeedReport(Report):
    sla_seconds: float
    overall: SpeedRow
    rows: list[SpeedRow]


class Cohort(BaseModel):
    month: str | None = Field(
        description="The month they became customers (in `tz`); null: the whole period."
    )
    customers: int
    bought_again: int = Field(description="Returning customers: those who bought more than once.")
    repeat_rate: float | None = Field(description="bought_again ÷ customers.")
    churned: int = Field(description="Those churned now (the lead's stage is churned; one won back is not).")
    retained: int = Field(description="customers - churned.")
    retention: float | None = Field(description="retained ÷ customers.")


class RetentionReport(Report):
    cohorts: list[Cohort] = Field(description="One row per month of acquisition, oldest first.")
    overall: Cohort
