"""Folding events into a profile (pure): custom fields merge key by key; consent and the
source's legal basis for marketing reach `lead.classified`."""

import uuid
from datetime import UTC, datetime

from services.scoring.profile import Profile, fold, lead_context
from shared.events import CONSENT_CHANGED, LEAD_CAPTURED, LEAD_UPDATED, Envelope


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


def test_consent_and_the_sources_legal_basis_reach_the_classified_lead() -> None:
    profile = Profile()
    fold(
        profile,
        event(LEAD_CAPTURED, channel="store_visit", consent=None, marketing_basis="existing customers"),
    )
    fold(profile, event(CONSENT_CHANGED, granted=False, purpose="marketing", channel="sms"))
    context = lead_context(profile)
    assert context["marketing_basis"] == "existing customers"
    assert context["consent_channels"] == {"sms": False} and not profile.unsubscribed
    fold(profile, event(CONSENT_CHANGED, granted=True, purpose="marketing"))
    assert lead_context(profile)["consent"] is True
    fold(profile, event(CONSENT_CHANGED, granted=False, purpose="analytics"))
    assert lead_context(profile)["consent"] is True, "other purposes leave marketing consent alone"
    fold(profile, event(CONSENT_CHANGED, granted=False, purpose="marketing"))
    assert lead_context(profile)["consent"] is False and profile.unsubscribed
