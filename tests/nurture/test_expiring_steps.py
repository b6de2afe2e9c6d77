"""A step said only while true ("our manager will call you within 15 minutes") is dropped when
the lead's quiet hours would put it off past its `within`: it went at 09:00, hours after the
rep had the lead (found by an outside review). Pure."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.nurture.models import FollowedLead, Touch
from services.nurture.playbooks import default_playbooks_text, parse_playbooks
from services.nurture.touch_claims import EXPIRED, Claimed, _judge
from shared.http import InvalidInput

PLAYBOOKS = parse_playbooks(default_playbooks_text())  # quiet hours 21:00-09:00
LEAD = FollowedLead(
    lead_id=uuid.uuid4(),
    context={"timezone": "Asia/Almaty", "consent": True, "phone": "+77010000000", "temperature": "hot"},
)


def almaty(hour: int) -> datetime:
    return datetime(2027, 1, 12, hour, tzinfo=UTC) - timedelta(hours=5)


def judged(at: datetime, expires_at: datetime | None) -> Any:
    touch = Touch.model_construct(
        id=uuid.uuid4(),
        lead_id=LEAD.lead_id,
        playbook="hot",
        playbook_version=1,
        channel="sms",
        template="we_call_you",
        due_at=at,
        expires_at=expires_at,
    )
    return _judge(
        Claimed(touch, lapsed=False), touch, LEAD, LEAD.context, at, PLAYBOOKS, PLAYBOOKS.templates, []
    )


def test_the_hot_leads_promise_of_a_call_is_dropped_rather_than_sent_in_the_morning() -> None:
    [_, promise] = next(p for p in PLAYBOOKS.playbooks if p.name == "hot").steps
    assert promise.template == "we_call_you" and promise.expiry == timedelta(minutes=30)
    night = almaty(23)
    dropped = judged(night, night + promise.expiry)
    assert (dropped.status, dropped.detail) == ("cancelled", EXPIRED)
    waits = judged(night, None)  # a step that does not expire waits for the morning, as before
    assert waits.status == "scheduled" and waits.due_at == almaty(9) + timedelta(days=1)
    assert judged(almaty(12), almaty(12) + promise.expiry).channel == "sms"  # by day it goes


@pytest.mark.parametrize("within", ["soon", "-5m", "400d"])
def test_a_within_that_is_no_delay_is_refused(within: str) -> None:
    document = default_playbooks_text().replace(
        "template: we_call_you, within: 30m", f"template: we_call_you, within: {within}"
    )
    with pytest.raises(InvalidInput) as refused:
        parse_playbooks(document)
    assert [field for field, _ in refused.value.errors] == ["playbooks.2.steps.1.within"]
