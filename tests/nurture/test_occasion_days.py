"""Which greetings fall on a customer's day (pure): their own zone, the occasion's hour, a
Feb 29 in other years, an occasion for some languages only."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from services.nurture.models import FollowedLead, Touch
from services.nurture.occasions import greetings_due
from services.nurture.playbooks import Playbooks, default_playbooks_text, parse_playbooks
from services.nurture.touch_claims import Claimed, _judge


def rules(*occasions: dict[str, Any]) -> Playbooks:
    document = yaml.safe_load(default_playbooks_text())
    document["occasions"] = list(occasions)
    return parse_playbooks(document)


def due(playbooks: Playbooks, now: str, **lead: Any) -> list[tuple[str, str]]:
    lead = {"stage": "customer", "timezone": "Asia/Baku", **lead}
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    return [
        (g.occasion.name, g.due_at.astimezone(UTC).isoformat())
        for g in greetings_due(playbooks, lead, moment)
    ]


NAURYZ = {"name": "nauryz", "day": "03-22", "template": "thanks", "languages": ["kk", "ru"]}
NOVRUZ = {"name": "novruz", "day": "03-20", "template": "thanks", "languages": ["az"], "at": "12:00"}


def test_a_holiday_for_some_languages_greets_only_leads_writing_in_them() -> None:
    playbooks = rules(NAURYZ, NOVRUZ)
    assert due(playbooks, "2027-03-22T03:00", language="kk") == [("nauryz", "2027-03-22T06:00:00+00:00")]
    assert due(playbooks, "2027-03-22T03:00", language="az") == []
    assert due(playbooks, "2027-03-20T03:00", language="az") == [("novruz", "2027-03-20T08:00:00+00:00")]


def test_past_its_hour_a_greeting_is_due_at_once_and_the_day_is_the_leads_own() -> None:
    playbooks = rules({"name": "birthday", "day": "birthday", "template": "thanks"})
    assert due(playbooks, "2027-05-01T15:00", birthday="1990-05-01") == [
        ("birthday", "2027-05-01T15:00:00+00:00")
    ]
    assert due(playbooks, "2027-05-01T21:00", birthday="1990-05-01") == [], "May 2 in Baku"
    assert due(playbooks, "2027-05-01T21:00", birthday="1990-05-01", timezone="America/New_York") == [
        ("birthday", "2027-05-01T21:00:00+00:00")
    ]


def test_a_holiday_dated_feb_29_comes_on_feb_28_in_other_years() -> None:
    playbooks = rules({"name": "leap_day", "day": "02-29", "template": "thanks"})
    assert [name for name, _ in due(playbooks, "2027-02-28T08:00")] == ["leap_day"]
    assert due(playbooks, "2028-02-28T08:00") == []
    assert [name for name, _ in due(playbooks, "2028-02-29T08:00")] == ["leap_day"]


def test_a_lead_without_a_birthday_or_not_a_customer_has_no_birthday_greeting() -> None:
    playbooks = rules({"name": "birthday", "day": "birthday", "template": "thanks"})
    assert due(playbooks, "2027-05-01T08:00") == []
    assert due(playbooks, "2027-05-01T08:00", birthday="1990-05-01", stage="churned") == []


def test_a_greeting_the_weekly_cap_would_put_off_to_another_day_is_cancelled() -> None:
    """Thanks, feedback and New Year already went this week: the birthday greeting would go
    days late, and is dropped; a plain touch waits, as before. Judged in the lead's zone."""
    playbooks = rules({"name": "birthday", "day": "birthday", "template": "thanks"})
    now = datetime(2027, 1, 2, 6, 0, tzinfo=UTC)  # 10:00 in Baku, the greeting's hour
    lead = FollowedLead(
        lead_id=uuid.uuid4(), context={"stage": "customer", "timezone": "Asia/Baku", "consent": True}
    )
    sent = [now - timedelta(days=days) for days in (1, 3, 5)]  # the cap, 3 in 7 days, reached

    def judged(playbook: str) -> Any:
        touch = Touch.model_construct(
            id=uuid.uuid4(),
            lead_id=lead.lead_id,
            playbook=playbook,
            channel="email",
            template="thanks",
            due_at=now,
        )
        claim = Claimed(touch, lapsed=False)
        return _judge(claim, touch, lead, lead.context, now, playbooks, playbooks.templates, sent)

    greeting, plain = judged("occasions"), judged("customer")
    assert (greeting.status, greeting.detail.startswith("a greeting that missed its day")) == (
        "cancelled",
        True,
    )
    assert plain.status == "scheduled" and plain.due_at > now + timedelta(days=1)  # it waits


def test_a_greeting_reached_only_the_next_day_is_cancelled() -> None:
    """Queued for 10:00 on the birthday, then sending paused (or nurture down, or a provider's
    Retry-After) until the next morning: it went a day late (found by a review)."""
    playbooks = rules({"name": "birthday", "day": "birthday", "template": "thanks"})
    due_at = datetime(2027, 3, 10, 6, 0, tzinfo=UTC)  # 10:00 in Baku
    lead = FollowedLead(
        lead_id=uuid.uuid4(), context={"stage": "customer", "timezone": "Asia/Baku", "consent": True}
    )
    touch = Touch.model_construct(
        id=uuid.uuid4(),
        lead_id=lead.lead_id,
        playbook="occasions",
        channel="email",
        template="thanks",
        due_at=due_at,
    )

    def judged(now: datetime) -> Any:
        claim = Claimed(touch, lapsed=False)
        return _judge(claim, touch, lead, lead.context, now, playbooks, playbooks.templates, [])

    late = judged(due_at + timedelta(hours=23))  # 09:00 the next day in Baku
    assert (late.status, late.detail.startswith("a greeting that missed its day")) == ("cancelled", True)
    assert judged(due_at + timedelta(hours=8)).channel == "email"  # 18:00 the same day: it goes
