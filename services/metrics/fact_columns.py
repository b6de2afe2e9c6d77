"""What each event sets on its lead's read-model row (`COLUMNS`), and the rule each column is
merged by (`merge`), so events may arrive in any order and a replay from scratch gives the same
rows: a first time keeps the earliest, a current value the one given last (by when it was given,
not when it arrived), counters add up (the inbox makes sure an event is counted once), churns
are kept by the id of their events (`_churn_move`). Pure."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.metrics.models import EXIT_STAGES, FUNNEL_STAGES
from shared.events import (
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    LEAD_DELIVERED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    SLA_BREACHED,
    TOUCH_SENT,
    Envelope,
)

# Churns are dated apart (`churn_outcomes`, `churn_moves`, `_churn_move`): churned_at and
# last_churned_at are computed from them by the database.
EARLIEST = {f"{s}_at" for s in (*FUNNEL_STAGES, *EXIT_STAGES) if s != "churned"} | {
    "hot_at",
    "warm_at",
    "cold_at",
    "assigned_at",
    "delivered_at",
    "acknowledged_at",
    "breached_at",
    "first_touch_at",
    "won_at",
    "captured_at",
    "live_classified_at",
}
LATEST = {"last_won_at", "furthest_stage", "classified_at", "industry_at", "segment_at"}
# {event id: moment}: the earliest moment per id (churns; captures, and those that were history)
KEYED = {"churn_outcomes", "churn_moves", "captures", "history_captures"}
ADDED_BY_KEY = {"currency_revenue", "currency_purchases"}  # {currency: amount}: added per currency
ADDED = {"touch_times", "purchases", "revenue"}  # touch_times: every touch's moment, sorted
FIRST = {"channel", "source_id", "campaign"}  # attribution: only the capture gives them
# A value and the column saying when it was given: the newest (or, for the rep, the earliest
# hand-off) wins; on the same moment, the greater value, so that arrival order never matters.
AS_OF = {
    "stage": ("classified_at", "newest"),
    "temperature": ("classified_at", "newest"),
    "industry": ("industry_at", "newest"),
    "segment": ("segment_at", "newest"),
    "rep_id": ("assigned_at", "earliest"),
}
Columns = Callable[[Envelope], dict[str, Any]]


def captured(event: Envelope) -> dict[str, Any]:
    data = event.data
    utm = data.get("utm") or {}
    at = time_of(data.get("captured_at")) or event.occurred_at
    return {
        "channel": data.get("channel"),
        "source_id": data.get("source_id"),
        "campaign": data.get("campaign") or utm.get("campaign"),
        "captured_at": at,
        "captures": {str(event.id): _utc(at)},
        **_profile(data, at),
    }


def updated(event: Envelope) -> dict[str, Any]:
    return _profile(event.data.get("changes", {}), event.occurred_at)


def _profile(fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Industry and segment (the company size), each with the moment it was given."""
    columns: dict[str, Any] = {}
    for column, name in (("industry", "industry"), ("segment", "company_size")):
        if fields.get(name):
            columns |= {column: fields[name], f"{column}_at": at}
    return columns


def classified(event: Envelope) -> dict[str, Any]:
    data, at = event.data, event.occurred_at
    columns: dict[str, Any] = {
        "temperature": data["temperature"],
        "stage": data["stage"],
        "classified_at": at,
    }
    if data["stage"] == "churned":
        columns |= _churn_move(event)
    elif data["stage"] in (*FUNNEL_STAGES, *EXIT_STAGES):
        columns[f"{data['stage']}_at"] = at
    elif data["stage"] in ("regular_customer", "advocate"):
        columns["customer_at"] = at
    stage = "customer" if data["stage"] in ("regular_customer", "advocate") else data["stage"]
    if stage in FUNNEL_STAGES:
        columns["furthest_stage"] = FUNNEL_STAGES.index(stage)
    if data["temperature"] in ("hot", "warm", "cold"):
        columns[f"{data['temperature']}_at"] = at
    return columns | _history_capture(event)


def _history_capture(event: Envelope) -> dict[str, Any]:
    """A capture scoring classified as history (made long before it was recorded: an imported
    enquiry) starts no clock of speed to lead: a lead that comes back live later is measured from
    the capture that made it live, or, with none (ingest tells a known person's repeat form as an
    activity), from its first classification that is no history (`live_captured_at`, migration
    0029). Matched to its capture by the classification's causation, as a churn move to its
    outcome."""
    data = event.data
    if not data.get("history"):  # live: a lead whose captures were all history revived here at last
        return {"live_classified_at": event.occurred_at}
    if data.get("cause") != LEAD_CAPTURED or event.causation_id is None:
        return {}
    return {"history_captures": {str(event.causation_id): _utc(event.occurred_at)}}


def _churn_move(event: Envelope) -> dict[str, Any]:
    """Scoring moved the lead to churned: that is a churn, dated by its outcome's `occurred_at`
    (the day the customer left) once the outcome is in. Until then (outcome and move come on
    different topics, either first) it is dated by this classification, which is only when the
    churn was recorded (a history may be posted years later). The move, not the outcome, makes
    the churn: scoring refuses one for a lead that was never a customer, and such an outcome
    counts for nothing. A move is matched to its outcome by its causation: scoring's
    classification follows the event that caused it (one that follows none is a churn of its
    own). A classification of a lead already churned (a decay, a later activity, a churn
    reported again) is no new churn. churned_at (the first churn) and last_churned_at (the
    latest: one won back may churn again) are computed from both maps by the database
    (migration 0017), so any order, batching or rebuild gives the same dates."""
    if event.data.get("previous_stage") == "churned":
        return {}
    return {"churn_moves": {str(event.causation_id or event.id): _utc(event.occurred_at)}}


def assigned(event: Envelope) -> dict[str, Any]:
    return {"rep_id": event.data["rep_id"], "assigned_at": time_of(event.data["assigned_at"])}


def delivered(event: Envelope) -> dict[str, Any]:
    """A rep's hand-off webhook reached them: speed to lead's capture → webhook ends here, not at
    the assignment (a receiver down, slow or retried for hours is not fast). The first counts."""
    return {"delivered_at": time_of(event.data["delivered_at"])}


def acknowledged(event: Envelope) -> dict[str, Any]:
    return {"acknowledged_at": time_of(event.data["acknowledged_at"])}


def breached(event: Envelope) -> dict[str, Any]:
    """Not acknowledged in time, or, with no hand-off before it, no rep to give it to at all."""
    return {"breached_at": time_of(event.data["breached_at"])}


def touch_sent(event: Envelope) -> dict[str, Any]:
    at = time_of(event.data.get("sent_at")) or event.occurred_at
    return {"touch_times": [at], "first_touch_at": at}


def outcome(event: Envelope) -> dict[str, Any]:
    data = event.data
    at = time_of(data.get("occurred_at")) or event.occurred_at
    if data.get("outcome") == "churned":  # a churn once scoring moves the lead (`_churn_move`)
        return {"churn_outcomes": {str(event.id): _utc(at)}}
    if data.get("outcome") != "won":
        return {}
    amount = Decimal(str(data.get("amount") or 0))
    currency = data.get("currency") or ""  # none named: the report's own (`finance.in_currency`)
    customer = FUNNEL_STAGES.index("customer")
    return {
        "purchases": 1,
        "revenue": amount,
        "currency_revenue": {currency: amount},
        "currency_purchases": {currency: 1},
        "won_at": at,
        "last_won_at": at,
        "customer_at": at,
        "furthest_stage": customer,
    }


def time_of(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


COLUMNS: dict[str, Columns] = {
    LEAD_CAPTURED: captured,
    LEAD_UPDATED: updated,
    LEAD_CLASSIFIED: classified,
    LEAD_ASSIGNED: assigned,
    LEAD_DELIVERED: delivered,
    LEAD_ACKNOWLEDGED: acknowledged,
    SLA_BREACHED: breached,
    TOUCH_SENT: touch_sent,
    OUTCOME_RECORDED: outcome,
}


def merge(row: dict[str, Any], values: dict[str, Any]) -> None:
    """Fold one event's values into a lead's pending row by the column rules."""
    given = {name: row.get(clock) for name, (clock, _) in AS_OF.items()}  # before this event
    for name, value in values.items():
        if value is None:
            continue
        current = row.get(name)
        if current is None:
            row[name] = value
        elif name in AS_OF:
            clock, wins = AS_OF[name]
            if _replaces((values.get(clock), value), (given[name], current), wins):
                row[name] = value
        elif name in EARLIEST:
            row[name] = min(current, value)
        elif name in LATEST:
            row[name] = max(current, value)
        elif name in KEYED:
            row[name] = earliest_by_key(current, value)
        elif name in ADDED:
            row[name] = current + value
        elif name in ADDED_BY_KEY:
            row[name] = {
                key: current.get(key, 0) + value.get(key, 0) for key in current.keys() | value.keys()
            }
        elif name not in FIRST:
            row[name] = value


def earliest_by_key(held: dict[str, datetime], given: dict[str, datetime]) -> dict[str, datetime]:
    """Both maps, the earliest moment where both have an id (as the database's own function)."""
    merged = dict(held)
    for key, at in given.items():
        merged[key] = min(merged.get(key, at), at)
    return merged


def keyed_json(moments: dict[str, datetime]) -> str:
    """A map of moments as the database keeps it: each moment in UTC (`_utc`), in one form, so
    the same moment is the same text however it came (and as migration 0017 wrote it)."""
    return json.dumps({key: at.isoformat() for key, at in sorted(moments.items())})


def added_json(amounts: dict[str, Any]) -> str:
    """A map of amounts as JSON numbers, to the cent (a float would round the largest)."""
    return "{" + ",".join(f"{json.dumps(key)}:{amount}" for key, amount in sorted(amounts.items())) + "}"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _replaces(ours: tuple[Any, Any], held: tuple[Any, Any], wins: str) -> bool:
    """Whether (moment, value) takes the place of the held one under the column's rule."""
    if held[0] is None or ours[0] is None:
        return held[0] is None
    return bool(ours > held if wins == "newest" else ours < held)
