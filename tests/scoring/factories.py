"""Profiles built the way the service builds them: by folding events in."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.scoring.profile import Profile, fold
from services.scoring.rules import Rules, default_rules_text, parse_rules
from shared.events import ACTIVITY_RECORDED, LEAD_CAPTURED, LEAD_UPDATED, OUTCOME_RECORDED, Envelope

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
RULES: Rules = parse_rules(default_rules_text())
LEAD = uuid.UUID(int=1)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def event(kind: str, at: datetime, **data: Any) -> Envelope:
    return Envelope(
        type=kind, lead_id=LEAD, correlation_id=uuid.uuid4(), producer="ingest", occurred_at=at, data=data
    )


def captured(days_ago: float = 0, channel: str = "web_form", **attributes: Any) -> Envelope:
    at = ago(days_ago)
    return event(LEAD_CAPTURED, at, channel=channel, captured_at=at.isoformat(), **attributes)


def activity(kind: str, days_ago: float = 0, at: datetime | None = None, **properties: Any) -> Envelope:
    """An activity `days_ago` before NOW, or `at` a given moment (end-to-end tests use the clock)."""
    at = at or ago(days_ago)
    data = {"activity_id": str(uuid.uuid4()), "activity_type": kind, "occurred_at": at.isoformat()}
    return event(ACTIVITY_RECORDED, at, **data, properties=properties)


def outcome(kind: str, days_ago: float = 0, **details: Any) -> Envelope:
    at = ago(days_ago)
    data = {"outcome_id": str(uuid.uuid4()), "outcome": kind, "occurred_at": at.isoformat(), **details}
    return event(OUTCOME_RECORDED, at, **data)


def updated(days_ago: float = 0, **changes: Any) -> Envelope:
    return event(LEAD_UPDATED, ago(days_ago), changes=changes)


def profile_of(*events: Envelope) -> Profile:
    profile = Profile()
    for one in events:
        fold(profile, one)
    return profile


def lead(days_ago: float = 0, channel: str = "web_form", *more: Envelope, **attributes: Any) -> Profile:
    """A captured lead with these attributes, and any further events."""
    attributes = {"email": "aru@qazaq.kz", **attributes}
    return profile_of(captured(days_ago, channel, **attributes), *more)
