"""A month of leads as the services would report them: captures, profile updates, stage and
temperature changes, hand-offs (one escalated) and their webhooks' deliveries (one never
arrived, one retried), touches and purchases, at fixed moments."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import topics
from shared.events import (
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    LEAD_DELIVERED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    TOUCH_SENT,
    Envelope,
    LeadAcknowledged,
    LeadAssigned,
    LeadCaptured,
    LeadClassified,
    LeadDelivered,
    LeadUpdated,
    OutcomeRecorded,
    TouchChanged,
)

START = datetime(2030, 5, 1, 9, tzinfo=UTC)
REP_A, REP_B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
SOURCE = uuid.UUID(int=0x5)


@dataclass
class Plan:
    """One lead's month; every moment is in hours after its capture."""

    channel: str
    industry: str | None = None
    size: str | None = None
    path: list[tuple[float, str, str]] = field(default_factory=list)  # (hours, stage, temperature)
    updates: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    assigned: list[tuple[float, uuid.UUID]] = field(default_factory=list)
    delivered: list[tuple[float, uuid.UUID]] = field(default_factory=list)  # the hand-off webhooks' arrivals
    acknowledged: float | None = None
    touches: list[float] = field(default_factory=list)
    outcomes: list[tuple[float, str, float | None]] = field(default_factory=list)  # (hours, outcome, amount)
    # Churns as sales report them (hours the customer left, hours it was recorded): the outcome,
    # and scoring's move to churned that follows it, at the recording. A churned outcome in
    # `outcomes` is one scoring refused: no move follows it.
    churns: list[tuple[float, float]] = field(default_factory=list)


PLANS = [
    Plan(
        "web_form",
        "retail",
        "11-50",
        path=[(0.01, "lead", "cold"), (24, "mql", "warm"), (72, "sql", "hot"), (240, "customer", "hot")],
        updates=[(120, {"industry": "wholesale", "company_size": "51-200"})],
        assigned=[(72.001, REP_A), (72.3, REP_B)],  # not acknowledged in time: escalated
        delivered=[(72.2, REP_A), (72.3001, REP_B)],  # A's receiver took it on a retry
        acknowledged=72.4,
        touches=[24, 48, 240.5, 400],  # and after the purchase: thanks, feedback
        outcomes=[(240, "won", 1000.0), (960, "won", 500.0)],
    ),
    Plan(
        "ad",
        "manufacturing",
        "200+",
        path=[(0.01, "lead", "cold"), (30, "mql", "warm"), (300, "lost", "cold")],
        touches=[1, 50, 200],
        outcomes=[(300, "lost", None)],
    ),
    Plan(
        "ad",
        "retail",
        "1-10",
        path=[(0.01, "lead", "hot"), (2, "sql", "hot"), (100, "customer", "hot")],
        assigned=[(0.002, REP_A)],
        delivered=[(0.0021, REP_A)],
        acknowledged=0.05,
        touches=[100.5],  # only the thanks for the purchase
        outcomes=[(100, "won", 300.0)],
    ),
    Plan("web_form", path=[(0.01, "lead", "cold")], outcomes=[(30, "churned", None)]),  # never a customer
    Plan(
        "referral",
        "services",
        "11-50",
        path=[(0.01, "lead", "warm"), (5, "mql", "warm"), (20, "sql", "hot"), (40, "opportunity", "hot")],
        assigned=[(20.001, REP_B)],  # its webhook never arrived
        touches=[6],
    ),
    Plan(
        "web_form",
        "retail",
        "51-200",
        path=[(0.01, "lead", "hot"), (10, "customer", "hot"), (400, "regular_customer", "warm")],
        assigned=[(0.001, REP_B)],
        delivered=[(0.15, REP_B)],
        acknowledged=0.2,
        outcomes=[(10, "won", 200.0), (300, "won", 250.0), (600, "won", 150.0)],
    ),
    Plan("ad", path=[(0.01, "lead", "cold"), (1, "disqualified", "cold")]),
    Plan(
        "web_form",
        "logistics",
        path=[(0.01, "lead", "warm")],
        updates=[(10, {"industry": "transport"}), (50, {"industry": "warehousing", "company_size": "1-10"})],
    ),
    Plan(
        "ad",
        "retail",
        "1-10",
        # A customer from before (their history posted after the capture), who had left; won
        # back, and left again.
        path=[
            (0.01, "lead", "cold"),
            (1, "customer", "warm"),
            (2, "regular_customer", "warm"),
            (200, "customer", "hot"),
        ],
        outcomes=[(-2000, "won", 50.0), (-600, "won", 50.0), (200, "won", 50.0)],
        churns=[(-100, 3), (300, 400)],
    ),
]
LEADS = len(PLANS)

SPEND = [
    {
        "period_start": "2030-05-01",
        "period_end": "2030-05-31",
        "category": "marketing",
        "amount": "1500",
        "channel": "ad",
    },
    {
        "period_start": "2030-05-01",
        "period_end": "2030-05-31",
        "category": "marketing",
        "amount": "800",
        "channel": "web_form",
    },
    {"period_start": "2030-05-01", "period_end": "2030-06-30", "category": "sales", "amount": "1200"},
]
MAY = {"from": "2030-05-01", "to": "2030-05-31"}
VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "funnel": ("/v1/funnel", {**MAY, "medians": "true"}),
    "funnel by channel": ("/v1/funnel", {**MAY, "group_by": "channel", "medians": "true"}),
    "funnel by industry": ("/v1/funnel", {**MAY, "group_by": "industry"}),
    "cac by channel": ("/v1/cac", {"from": "2030-05-01", "to": "2030-08-31", "group_by": "channel"}),
    "ltv by channel": ("/v1/ltv", {"group_by": "channel"}),
    "ltv by segment": ("/v1/ltv", {"group_by": "segment"}),
    "speed by rep": ("/v1/speed-to-lead", {**MAY, "group_by": "rep"}),
    "speed by channel": ("/v1/speed-to-lead", {**MAY, "group_by": "channel"}),
}


def topic_of(event: Envelope) -> str:
    """Where the service that publishes `event` puts it."""
    if event.type == LEAD_CLASSIFIED:
        return topics.LEAD_CLASSIFICATIONS
    if event.type in (LEAD_ASSIGNED, LEAD_DELIVERED, LEAD_ACKNOWLEDGED, TOUCH_SENT):
        return topics.TOUCH_EVENTS
    return topics.LEAD_EVENTS


def month_of_leads(start: datetime = START) -> list[Envelope]:
    """Every event of every plan, a lead captured every other day from `start`, in time order."""
    events: list[Envelope] = []
    for index, plan in enumerate(PLANS):
        events += events_of(plan, start + timedelta(days=2 * index))
    return sorted(events, key=lambda e: e.occurred_at)


def events_of(plan: Plan, captured_at: datetime) -> list[Envelope]:
    lead, correlation = uuid.uuid4(), uuid.uuid4()

    def at(hours: float) -> datetime:
        return captured_at + timedelta(hours=hours)

    def event(kind: str, producer: str, hours: float, payload: Any) -> Envelope:
        made = Envelope.of(kind, lead, correlation, producer, payload)
        return made.model_copy(update={"occurred_at": at(hours)})

    attributes = {"industry": plan.industry, "company_size": plan.size, "utm": {"campaign": "may"}}
    captured = LeadCaptured(source_id=SOURCE, channel=plan.channel, captured_at=captured_at, **attributes)
    events = [event(LEAD_CAPTURED, "ingest", 0, captured)]
    events += [
        event(LEAD_UPDATED, "ingest", h, LeadUpdated(source_id=SOURCE, channel=plan.channel, changes=changes))
        for h, changes in plan.updates
    ]
    events += [
        event(
            LEAD_CLASSIFIED, "scoring", h, LeadClassified(score=50, temperature=t, stage=s, rules_version=1)
        )
        for h, s, t in plan.path
    ]
    events += [
        event(LEAD_ASSIGNED, "nurture", h, LeadAssigned(rep_id=rep, temperature="hot", assigned_at=at(h)))
        for h, rep in plan.assigned
    ]
    events += [
        event(LEAD_DELIVERED, "nurture", h, LeadDelivered(rep_id=rep, delivered_at=at(h), attempts=2))
        for h, rep in plan.delivered
    ]
    if plan.acknowledged is not None:
        rep, first = plan.assigned[-1][1], plan.assigned[0][0]
        seconds = (plan.acknowledged - first) * 3600
        acknowledged = LeadAcknowledged(
            rep_id=rep, acknowledged_at=at(plan.acknowledged), seconds_to_acknowledge=seconds
        )
        events.append(event(LEAD_ACKNOWLEDGED, "nurture", plan.acknowledged, acknowledged))
    events += [event(TOUCH_SENT, "nurture", h, _touch(at(h))) for h in plan.touches]
    events += [
        event(
            OUTCOME_RECORDED,
            "ingest",
            max(h, 0.5),  # posted after the capture, even when it happened before (a CRM's history)
            OutcomeRecorded(outcome_id=uuid.uuid4(), outcome=o, occurred_at=at(h), amount=a),
        )
        for h, o, a in plan.outcomes
    ]
    for left, recorded in plan.churns:
        churn = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="churned", occurred_at=at(left))
        outcome = event(OUTCOME_RECORDED, "ingest", recorded, churn)
        previous = max(p for p in plan.path if p[0] < recorded)[1]
        move = LeadClassified(
            score=5, temperature="cold", stage="churned", previous_stage=previous, rules_version=1
        )
        classified = outcome.follow_up(LEAD_CLASSIFIED, "scoring", move)
        events += [outcome, classified.model_copy(update={"occurred_at": at(recorded)})]
    return events


def _touch(sent_at: datetime) -> TouchChanged:
    return TouchChanged(
        touch_id=uuid.uuid4(),
        playbook="warm",
        step=0,
        channel="email",
        template="welcome",
        due_at=sent_at,
        sent_at=sent_at,
    )
