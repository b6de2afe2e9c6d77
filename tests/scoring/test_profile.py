"""Folding events into a profile (pure): custom fields merge key by key."""

import uuid
from datetime import UTC, datetime

from services.scoring.profile import Profile, fold
from shared.events import LEAD_CAPTURED, LEAD_UPDATED, Envelope


def event(type: str, **data: object) -> Envelope:
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    return Envelope(
        type=type,
        lead_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        producer="ingest",
        occurred_at=at,
        data=data,
    )


def test_an_update_carrying_some_custom_fields_keeps_the_others() -> None:
    profile = Profile()
    fold(profile, event(LEAD_CAPTURED, channel="web_form", custom={"plan": "pro", "seats": 5}))
    fold(profile, event(LEAD_UPDATED, changes={"custom": {"seats": 12, "promo": "AUTUMN"}, "city": "Almaty"}))
    assert profile.attributes["custom"] == {"plan": "pro", "seats": 12, "promo": "AUTUMN"}
    assert profile.attributes["city"] == "Almaty"
