"""Whether a classification answers new interest or a record of the past. Pure, no I/O.

An input is history when it happened well before ingest recorded it: an import's row dated by
its enquiry date, a CRM's outcome or activity posted with an `occurred_at` weeks back. What it
makes of a lead is kept and counted by its dates (the funnel), but it is no new request to call
back within 15 minutes (DOMAIN.md "Follow-up", 004:172): a classification it causes hands the
lead to no rep (`shared.events.for_a_rep`). A pass of time (decay, a rescore) is no interest of
its own, nor is an input recorded now that shows no interest (a profile update, a consent, a page
view, a rep's note): the lead's classifications stay history until the person (a capture, a
sign of interest) or sales (an outcome) acts anew."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.scoring.profile import NOT_REACHED
from services.scoring.rules import Rules
from services.scoring.temperature import signs_of_interest
from shared.events import ACTIVITY_RECORDED, LEAD_CAPTURED, OUTCOME_RECORDED, Envelope

NEW_BY_ITSELF = frozenset({LEAD_CAPTURED, OUTCOME_RECORDED})  # the person enquiring, sales acting


def stays_history(event: Envelope, was_history: bool, rules: Rules) -> bool:
    """Whether the lead's classifications are history after `event`: it happened more than the
    rules' `stages.history_after_minutes` before it was recorded, or the lead's were and the
    input, recorded now, is no new interest."""
    if is_history(event, rules.stages.history_after_minutes):
        return True
    return was_history and not _new_interest(event, rules)


def _new_interest(event: Envelope, rules: Rules) -> bool:
    if event.type in NEW_BY_ITSELF:
        return True
    if event.type != ACTIVITY_RECORDED:
        return False
    kind, properties = event.data.get("activity_type"), event.data.get("properties") or {}
    if kind == "call_logged" and str(properties.get("result", "")).lower() in NOT_REACHED:
        return False  # a call nobody answered (`profile.UNANSWERED_CALL`)
    return kind in signs_of_interest(rules)


def happened_at(event: Envelope) -> datetime:
    """When the input happened, as it dates itself: a capture's `captured_at`, an activity's,
    outcome's or consent's `occurred_at`; else (an update) when ingest recorded it."""
    data = event.data
    told = data.get("captured_at") if event.type == LEAD_CAPTURED else data.get("occurred_at")
    return _moment(told) or event.occurred_at


def is_history(event: Envelope, after_minutes: int) -> bool:
    """Whether the input happened more than `after_minutes` (the rules' `stages.
    history_after_minutes`: a sync's lag, a chatbot's queue, clocks a little apart are not
    history) before ingest recorded it."""
    return _utc(event.occurred_at) - _utc(happened_at(event)) > timedelta(minutes=after_minutes)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
