""" "Our manager will call you within 15 minutes" is texted only when someone will: an active rep
holds the lead, and the lead's call window is open (found by a review: it went when no rep
covered the lead's region, and at 18:35 to a lead whose call was set for 10:00 the next day).
The lead's hour is chosen by its time zone, as the follow-up tests do."""

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.call_promises import NO_REP, broken_promise, promises_a_call
from services.nurture.config import NurtureSettings
from services.nurture.playbooks import default_playbooks_text, parse_playbooks
from services.nurture.unsubscribe_links import short_unsubscribe_url
from shared import topics
from shared.events import Envelope
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.nurture.test_followup import classified, touches, zone_where_it_is
from tests.receiver import Receiver, webhook_receiver

YAML = {**ADMIN, "content-type": "application/yaml"}
# The hot playbook's steps, the promise due at once rather than 5 minutes on.
PROMISE = {
    "name": "promise",
    "when": {"channel": ["promise"]},
    "steps": [
        {"after": "0m", "channel": "call_task", "template": "call_now"},
        {"after": "0m", "channel": "sms", "template": "we_call_you", "within": "30m"},
    ],
}
RULES = parse_playbooks(default_playbooks_text())
ALMATY = {"timezone": "Etc/GMT-5"}  # UTC+5, as Asia/Almaty


def test_the_default_promise_of_a_call_is_marked_in_every_language() -> None:
    assert promises_a_call(RULES.templates["we_call_you"])
    assert not promises_a_call(RULES.templates["checking_in"])


def test_a_promise_of_a_call_is_broken_by_no_rep_a_rep_off_duty_or_a_closed_call_window() -> None:
    asked_at_half_past_six = datetime(2026, 12, 7, 13, 35, tzinfo=UTC)  # 18:35 in Almaty
    morning = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)  # 10:30
    assert broken_promise(ALMATY, morning, RULES, morning) is None
    assert broken_promise(ALMATY, None, RULES, morning) == NO_REP
    tomorrow = datetime(2026, 12, 8, 4, tzinfo=UTC)
    off = broken_promise(ALMATY, tomorrow, RULES, morning)
    assert off == "promises a call, and the rep holding the lead is off duty until 2026-12-08 04:00 UTC"
    closed = broken_promise(ALMATY, asked_at_half_past_six, RULES, asked_at_half_past_six)
    assert closed == "promises a call, and the lead's call window (10:00-18:00) is closed now"
    own_window = {**ALMATY, "call_window": "18:00-20:00"}
    assert broken_promise(own_window, asked_at_half_past_six, RULES, asked_at_half_past_six) is None


@pytest.fixture(scope="module")
def sms() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def nurture(servers: Servers, sms: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        sms_url=sms.url,
        touch_poll_seconds=0.05,
        touch_lease_seconds=7,
        webhook_timeout_seconds=3,
    )
    async with running(create_app(settings)) as client:
        playbooks = yaml.safe_load(default_playbooks_text())
        playbooks["playbooks"][:0] = [PROMISE]
        assert (await client.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
        yield client
        await client.put("/v1/playbooks", content=default_playbooks_text(), headers=YAML)


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(topic: str, *events: Envelope) -> None:
        await publisher.publish([(topic, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


async def _no_active_reps(client: httpx.AsyncClient) -> None:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))


async def _add_rep(client: httpx.AsyncClient, url: str, **fields: Any) -> None:
    body = {"name": "Caller", "webhook_url": url, **fields}
    assert (await client.post("/v1/reps", json=body, headers=ADMIN)).status_code == 201


async def _promise(client: httpx.AsyncClient, event: Envelope) -> dict[str, Any] | None:
    found = [t for t in await touches(client, event.lead_id) if t["template"] == "we_call_you"]
    return found[0] if found and found[0]["status"] in ("sent", "cancelled", "failed") else None


def _texts_to(sms: Receiver, phone: str) -> list[str]:
    bodies = [json.loads(r.body) for r in sms.received()]
    return [b["text"] for b in bodies if b["to"] == phone]


def _hot(phone: str, hour: int) -> Envelope:
    return classified(
        "hot", lead_id=uuid.uuid4(), channel="promise", phone=phone, timezone=zone_where_it_is(hour)
    )


async def test_no_call_is_promised_when_no_active_rep_holds_the_lead(
    nurture: httpx.AsyncClient, sms: Receiver, publish: Any
) -> None:
    await _no_active_reps(nurture)  # no rep covers the lead: the managers are told, nobody calls
    event = _hot("+77015550301", 12)
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    promise = await eventually(lambda: _promise(nurture, event), timeout=20)
    assert (promise["status"], promise["detail"]) == ("cancelled", NO_REP)
    assert _texts_to(sms, "+77015550301") == []


async def test_no_call_is_promised_outside_the_leads_call_window(
    nurture: httpx.AsyncClient, sms: Receiver, publish: Any, servers: Servers
) -> None:
    await _no_active_reps(nurture)
    with webhook_receiver() as rep:
        await _add_rep(nurture, rep.url)
        evening = _hot("+77015550302", 19)  # after the 10:00-18:00 window, before quiet hours
        day = _hot("+77015550303", 12)
        await publish(topics.LEAD_CLASSIFICATIONS, evening, day)
        late = await eventually(lambda: _promise(nurture, evening), timeout=20)
        kept = await eventually(lambda: _promise(nurture, day), timeout=20)
    assert late["status"] == "cancelled"
    assert late["detail"] == "promises a call, and the lead's call window (10:00-18:00) is closed now"
    assert _texts_to(sms, "+77015550302") == []
    assert kept["status"] == "sent"
    link = short_unsubscribe_url(servers.settings(NurtureSettings), day.lead_id)  # every text ends with it
    assert _texts_to(sms, "+77015550303") == [
        f"Thank you, Аружан! Our manager will call you within 15 minutes.\nUnsubscribe: {link}"
    ]


async def test_no_call_is_promised_while_the_rep_holding_the_lead_is_off_duty(
    nurture: httpx.AsyncClient, sms: Receiver, publish: Any
) -> None:
    """The only rep works 09:00-18:00 where it is 03:00 now: they hold the lead (back first),
    but nobody calls within 15 minutes, so nobody says so."""
    await _no_active_reps(nurture)
    with webhook_receiver() as rep:
        hours = {"timezone": zone_where_it_is(3), "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
        await _add_rep(nurture, rep.url, working_hours=hours | {"start": "09:00", "end": "18:00"})
        event = _hot("+77015550304", 12)
        await publish(topics.LEAD_CLASSIFICATIONS, event)
        promise = await eventually(lambda: _promise(nurture, event), timeout=20)
    assert promise["status"] == "cancelled"
    assert promise["detail"].startswith("promises a call, and the rep holding the lead is off duty until ")
    assert _texts_to(sms, "+77015550304") == []
