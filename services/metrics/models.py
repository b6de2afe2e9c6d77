"""Tables of the metrics schema: one read-model row per lead, and spend entries."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ARRAY, Column, Computed, DateTime, Integer, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

FUNNEL_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
EXIT_STAGES = ("disqualified", "parked", "lost", "churned")


def _churn(latest: str) -> str:
    return f"churn_moment(churn_moves, churn_outcomes, {latest})"


class LeadFact(SQLModel, table=True):
    """What the metrics need to know about one lead, whatever order its events arrive in:
    when it first reached each stage and temperature, where it came from, how fast a rep
    had it, what it bought."""

    __tablename__ = "lead_facts"

    lead_id: UUID = Field(primary_key=True)
    channel: str | None = Field(default=None, index=True)
    source_id: UUID | None = None
    campaign: str | None = None
    industry: str | None = None
    industry_at: datetime | None = None  # when the industry was given (the latest wins)
    segment: str | None = None
    segment_at: datetime | None = None
    captured_at: datetime | None = Field(default=None, index=True)  # the first capture: the funnel's
    # Speed to lead's clock (migration 0029): each capture's moment by its event's id, those scoring
    # classified as history (an enquiry recorded long after it was made) by the same id, and the
    # earliest capture not history, computed by the database; when every one is, the first
    # classification that is none (its revival: `fact_columns._history_capture`), else the first.
    captures: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    history_captures: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    live_classified_at: datetime | None = None
    live_captured_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True),
            Computed("live_capture(captures, history_captures, captured_at, live_classified_at)"),
            index=True,
        ),
    )
    temperature: str | None = None
    stage: str | None = None
    classified_at: datetime | None = None
    lead_at: datetime | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    opportunity_at: datetime | None = None
    customer_at: datetime | None = None
    disqualified_at: datetime | None = None
    parked_at: datetime | None = None
    lost_at: datetime | None = None
    # Churns (`fact_columns._churn_move`): each churn outcome's date, by its event's id, and
    # scoring's moves to churned, by the id of the outcome that caused them and dated by the
    # classification; a move is a churn, dated by its outcome once that is in (migration 0017).
    churn_outcomes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    churn_moves: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    churned_at: datetime | None = Field(  # the first churn
        default=None, sa_column=Column(DateTime(timezone=True), Computed(_churn("false")))
    )
    last_churned_at: datetime | None = Field(  # the latest (one won back may churn again)
        default=None, sa_column=Column(DateTime(timezone=True), Computed(_churn("true")))
    )
    furthest_stage: int | None = None  # index in FUNNEL_STAGES of the furthest stage reached
    hot_at: datetime | None = None  # first time hot (and warm, cold)
    warm_at: datetime | None = None
    cold_at: datetime | None = None
    rep_id: UUID | None = None
    assigned_at: datetime | None = None
    delivered_at: datetime | None = None  # nurture's first `lead.delivered`: the hand-off reached the rep
    acknowledged_at: datetime | None = None
    breached_at: datetime | None = None  # nurture's first `sla.breached`: before any hand-off, no rep matched
    first_touch_at: datetime | None = None
    # Every touch's moment, sorted; touches_sent counts those before customer_at (all of them
    # until the lead is a customer), computed by the database (migration 0011).
    touch_times: list[datetime] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(DateTime(timezone=True)), nullable=False, server_default="{}"),
    )
    touches_sent: int | None = Field(
        default=None, sa_column=Column(Integer, Computed("touches_before(touch_times, customer_at)"))
    )
    purchases: int = 0
    revenue: Decimal = Field(default=Decimal(0), sa_type=Numeric(30, 2))  # every win summed (0013)
    # The same by the won outcome's currency ('' when it named none): currency -> amount, and
    # currency -> purchases, each added up by key (migration 0027)
    currency_revenue: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    currency_purchases: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    won_at: datetime | None = None  # the first purchase
    last_won_at: datetime | None = None


class Spend(SQLModel, table=True):
    """Money spent in a period: marketing or sales, per channel, campaign or stage (000:90)."""

    __tablename__ = "spend"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    period_start: date
    period_end: date
    channel: str | None = None
    campaign: str | None = None
    stage: str | None = None
    category: str  # marketing | sales
    amount: Decimal = Field(sa_type=Numeric(14, 2))
    currency: str
    note: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ProposalFact(SQLModel, table=True):
    """One commercial proposal (nurture's `proposal.*` events, merged in any order): stale or
    still open is judged when read, against the clock (migration 0015)."""

    __tablename__ = "proposal_facts"

    outcome_id: UUID = Field(primary_key=True)  # the `proposal_sent` outcome's
    lead_id: UUID
    rep_id: UUID | None = None
    sent_at: datetime | None = None
    stale_at: datetime | None = None
    answered_at: datetime | None = None  # the earliest answer
    replaced_at: datetime | None = None  # a newer proposal took its place, unanswered
