"""Folding events into a profile (pure): custom fields merge key by key; consent and the
source's legal basis for marketing reach `lead.classified`."""

import uuid
from datetime import UTC, datetime, timedelta

from services.scoring.model import evaluate
from services.scoring.profile import Profile, fold, lead_context
from services.scoring.rules import default_rules_text, parse_rules
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


def test_what_an_imported_lead_said_counts_from_when_they_enquired_not_from_the_import() -> None:
    """An expo contact who asked for a call "срочно" three weeks ago, imported today, was hot
    today (found by a marketer's review): its timeframe and message were dated by the event."""
    imported_at = datetime(2026, 12, 2, 9, tzinfo=UTC)  # the event's own `occurred_at`
    enquired_at = imported_at - timedelta(days=21)
    profile = Profile()
    fold(
        profile,
        event(
            LEAD_CAPTURED,
            channel="event",
            timeframe="срочно",
            message="Перезвоните, нужен расчёт",
            captured_at=enquired_at.isoformat(),
        ),
    )
    assert profile.timeframe_at == profile.said_at == profile.captured_at == enquired_at
    rules = parse_rules(default_rules_text())
    assert evaluate(profile, rules, imported_at).temperature == "warm"  # hot for 14 days, then cooled
    assert evaluate(profile, rules, enquired_at + timedelta(days=1)).temperature == "hot"
