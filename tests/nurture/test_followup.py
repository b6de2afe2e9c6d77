"""Follow-up through real servers: playbook emails to an SMTP server (aiosmtpd), SMS to an HTTP
provider, quiet hours and the weekly cap, unsubscribe, stage changes, consent and erasure, and
call tasks to the rep. Several senders sharing the touches: test_two_processes."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.orm import configure_mappers

from services.nurture import followup, touch_claims
from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.consent import HEARD
from services.nurture.playbooks import default_playbooks_text, parse_playbooks
from shared import topics
from shared.db import driver_connection
from shared.events import CONSENT_CHANGED, LEAD_ERASED, Envelope, utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, ANONYMOUS, VIEWER, Servers, eventually, running
from tests.helpers import events_of, every_page, lead_classified
from tests.nurture.holding import Mailbox, smtp_server
from tests.receiver import Receiver, webhook_receiver

YAML = {**ADMIN, "content-type": "application/yaml"}
TEST_PLAYBOOKS = [
    {
        "name": "burst",
        "when": {"channel": ["burst"]},
        "steps": [{"after": "0m", "channel": "email", "template": "content"} for _ in range(5)],
    },
    {
        "name": "texting",
        "when": {"channel": ["texting"]},
        "steps": [{"after": "0m", "channel": "sms", "template": "checking_in"}],
    },
    {
        "name": "emailing",
        "when": {"channel": ["emailing"]},
        "steps": [{"after": "0m", "channel": "email", "template": "content"}],
    },
    {
        "name": "a_call_and_emails",
        "when": {"channel": ["a_call_and_emails"]},
        "steps": [
            {"after": "0m", "channel": "call_task", "template": "follow_up_call"},
            *({"after": "0m", "channel": "email", "template": "content"} for _ in range(3)),
            {"after": "0m", "channel": "call_task", "template": "follow_up_call"},
        ],
    },
    {
        "name": "tomorrow",
        "when": {"channel": ["tomorrow"]},
        "steps": [
            {"after": "1d", "channel": "email", "template": "content"},
            {"after": "1d", "channel": "sms", "template": "checking_in"},
        ],
    },
]


def module_playbooks() -> dict[str, Any]:
    """The defaults, with this module's own playbooks first."""
    playbooks = yaml.safe_load(default_playbooks_text())
    playbooks["playbooks"] = TEST_PLAYBOOKS + playbooks["playbooks"]
    return dict(playbooks)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def sms() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def nurture(servers: Servers, mailbox: Mailbox, sms: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        smtp_port=mailbox.port,
        sms_url=sms.url,
        touch_poll_seconds=0.05,
        touch_lease_seconds=7,
        webhook_timeout_seconds=3,
        touch_retry_seconds=0.5,
    )
    async with running(create_app(settings)) as client:
        assert (await client.put("/v1/playbooks", json=module_playbooks(), headers=ADMIN)).status_code == 201
        yield client
        await client.put("/v1/playbooks", content=default_playbooks_text(), headers=YAML)


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(topic: str, *events: Envelope) -> None:
        await publisher.publish([(topic, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


def zone_where_it_is(hour: int) -> str:
    """An IANA zone whose local hour is `hour` now (Etc/GMT-5 is UTC+5)."""
    offset = (hour - datetime.now(UTC).hour + 36) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def classified(temperature: str = "warm", lead_id: uuid.UUID | None = None, **lead: Any) -> Envelope:
    event = lead_classified(temperature)
    if lead_id is not None:
        event = event.model_copy(update={"lead_id": lead_id})
    person = f"{uuid.uuid4().hex[:10]}@example.kz"
    event.data["lead"] = {
        "email": person,
        "first_name": "Аружан",
        "timezone": zone_where_it_is(12),
        "consent": True,  # the form's box, ticked
        **lead,
    }
    return event


async def touches(client: httpx.AsyncClient, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/leads/{lead_id}/touches", headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json())


async def statuses(client: httpx.AsyncClient, lead_id: uuid.UUID) -> list[str]:
    return [t["status"] for t in await touches(client, lead_id)]


async def test_a_cut_or_altered_unsubscribe_link_opened_in_a_browser_is_a_page_not_json(
    nurture: httpx.AsyncClient,
) -> None:
    """A person who opened an altered link was shown raw problem+json (found by an outside
    review); a script still gets problem+json."""
    path = f"/v1/unsubscribe?lead_id={uuid.uuid4()}&token=not-the-token"
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8", "accept-language": "ru-KZ,ru;q=0.9"}
    for answer in (await nurture.get(path, headers=browser), await nurture.post(path, headers=browser)):
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-language"] == "ru"
        assert "<h1>Ссылка недействительна</h1>" in answer.text
    script = await nurture.get(path)
    assert script.status_code == 403
    assert script.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    ["lead_id=f609b4fe-f233-49ac-90aa-016db", "lead_id=f609b4fe-f233-49ac-90aa-016db4a1c2d3", "lead_id="],
)
async def test_an_unsubscribe_link_cut_in_the_lead_or_before_the_token_is_a_page_too(
    nurture: httpx.AsyncClient, query: str
) -> None:
    """Cut in the lead's id, or before its token (mail clients wrap long links): raw JSON was
    shown (found by an outside review); a script gets a 422 naming lead_id, or a 403."""
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8", "accept-language": "az"}
    for answer in (
        await nurture.get(f"/v1/unsubscribe?{query}", headers=browser),
        await nurture.post(f"/v1/unsubscribe?{query}", headers=browser),
    ):
        assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-language"] == "az"
    script = await nurture.get(f"/v1/unsubscribe?{query}")
    assert script.headers["content-type"] == "application/problem+json"
    if "016db4a1c2d3" in query:  # a whole id without its token
        assert script.status_code == 403
    else:
        assert script.status_code == 422 and script.json()["errors"][0]["field"] == "lead_id"


async def test_a_warm_lead_gets_its_playbook_email_and_the_unsubscribe_link_works(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    event = classified("warm", company="Qazaq Trade")
    address = event.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    [message] = await eventually(lambda: mailbox.to(address), timeout=20)
    assert message["Subject"] == "Thank you, Аружан"
    assert message["Message-ID"].strip("<>").split("@")[0] in {
        t["id"] for t in await touches(nurture, event.lead_id)
    }
    body = message.get_payload(decode=True).decode()
    assert "Qazaq Trade" not in body, "what a visitor typed is not quoted to the person (safe_fields)"
    link = message["List-Unsubscribe"].strip("<>")
    assert link in body
    await eventually(lambda: _has(nurture, event.lead_id, "warm", "sent"), timeout=20)
    planned = await touches(nurture, event.lead_id)
    assert [t["playbook"] for t in planned] == ["warm"] * 8  # about 8 touches over a few weeks (002:441)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = link.split("8003", 1)[1]
    assert (await nurture.get(path.replace("token=", "token=x"))).status_code == 403
    assert (await nurture.post(path.replace("token=", "token=x"))).status_code == 403
    page = await nurture.get(path)  # what a mail scanner opening the link does
    assert page.status_code == 200 and 'method="post"' in page.text
    assert sorted(set(await statuses(nurture, event.lead_id))) == ["scheduled", "sent"], (
        "opening it changes nothing"
    )
    one_click = await nurture.post(path, data={"List-Unsubscribe": "One-Click"})  # RFC 8058
    assert one_click.status_code == 200 and "unsubscribed" in one_click.text
    assert sorted(set(await statuses(nurture, event.lead_id))) == ["cancelled", "sent"]
    out = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: any(e.type == "touch.cancelled" for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    assert {"touch.scheduled", "touch.sent", "touch.cancelled"} <= {e.type for e in out}


async def test_a_stage_change_cancels_what_no_longer_fits_and_starts_the_new_playbook(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    warm = classified("warm")
    await publish(topics.LEAD_CLASSIFICATIONS, warm)
    await eventually(lambda: _has(nurture, warm.lead_id, "warm", "sent"), timeout=20)
    hot = classified("hot", lead_id=warm.lead_id)
    await publish(topics.LEAD_CLASSIFICATIONS, hot)
    await eventually(lambda: _has(nurture, warm.lead_id, "hot", "scheduled", "sent"), timeout=20)
    timeline = await touches(nurture, warm.lead_id)
    left_warm = [t for t in timeline if t["playbook"] == "warm" and t["status"] != "sent"]
    assert left_warm and all(t["status"] == "cancelled" for t in left_warm)
    assert all(t["detail"] == "moved to playbook hot" for t in left_warm)


async def test_a_lead_warming_minutes_after_its_welcome_is_not_welcomed_twice(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    """Cold (`welcome` at 0m), then warm minutes later (`welcome` at 0m too): the person got
    the same "thank you for your interest" twice, and the copy took one of the week's three
    messages (found by a review from the side of the people written to). The warm playbook's
    welcome is cancelled as already sent; its later steps still come."""
    cold = classified("cold")
    address = cold.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, cold)
    await eventually(lambda: _has(nurture, cold.lead_id, "cold", "sent"), timeout=20)
    warm = classified("warm", lead_id=cold.lead_id, email=address)
    await publish(topics.LEAD_CLASSIFICATIONS, warm)

    async def warm_welcome_settled() -> dict[str, Any] | None:
        found = [t for t in await touches(nurture, cold.lead_id) if t["playbook"] == "warm"]
        return found[0] if found and found[0]["status"] in {"sent", "cancelled", "failed"} else None

    welcome = await eventually(warm_welcome_settled, timeout=20)
    assert (welcome["template"], welcome["status"]) == ("welcome", "cancelled")
    assert welcome["detail"] == "the lead was already sent this template; not sent twice"
    assert [m["Subject"] for m in mailbox.to(address)] == ["Thank you, Аружан"]
    later = [t for t in await touches(nurture, cold.lead_id) if t["playbook"] == "warm"][1:]
    assert [t["template"] for t in later] == [
        "checking_in",
        "case_study",
        "follow_up_call",
        "offer",
        "when_to_call",
        "still_deciding",
        "follow_up_call",
    ]
    assert {t["status"] for t in later} == {"scheduled"}


async def test_a_lead_the_rep_called_is_not_welcomed_when_it_cools_to_warm(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    """A lead the rep was calling (SQL: a call task at once) that cools to warm weeks later got
    "thank you for your interest" then (found by a review from the side of the people written
    to): the warm playbook's welcome is a `greeting`, for a lead nobody has contacted yet."""
    async with _only_rep(nurture) as rep:
        called = classified("warm", call_window="11:00-14:00", phone="+77017778800")
        called.data["stage"] = "sql"
        await publish(topics.LEAD_CLASSIFICATIONS, called)
        await eventually(lambda: _task_for(rep, called.lead_id), timeout=20)
        await eventually(lambda: _has(nurture, called.lead_id, "sql", "sent"), timeout=20)
    address = called.data["lead"]["email"]
    cooled = classified("warm", lead_id=called.lead_id, email=address)
    await publish(topics.LEAD_CLASSIFICATIONS, cooled)

    async def warm_welcome() -> dict[str, Any] | None:
        found = [t for t in await touches(nurture, called.lead_id) if t["playbook"] == "warm"]
        return found[0] if found and found[0]["status"] in {"sent", "cancelled", "failed"} else None

    welcome = await eventually(warm_welcome, timeout=20)
    assert (welcome["template"], welcome["status"]) == ("welcome", "cancelled")
    assert welcome["detail"] == "a greeting, and the lead was already written to or called; not sent"
    assert mailbox.to(address) == []
    warm = [t for t in await touches(nurture, called.lead_id) if t["playbook"] == "warm"]
    assert [t["status"] for t in warm[1:]] == ["scheduled"] * 7


@pytest.mark.parametrize("temperature", ["hot", "warm", "cold"])
def test_a_disqualified_lead_is_in_no_playbook_whatever_its_temperature(temperature: str) -> None:
    """Spam, an inquiry only, a competitor's probe: no call task, no SMS, no nurture emails."""
    playbooks = parse_playbooks(default_playbooks_text())
    assert playbooks.select(temperature, "disqualified", "web_form") is None
    assert playbooks.select(temperature, "lead", "web_form").name == temperature  # type: ignore[union-attr]


def test_a_playbook_naming_the_disqualified_stage_takes_it() -> None:
    document = yaml.safe_load(default_playbooks_text())
    document["playbooks"].append(
        {
            "name": "inquiry",
            "when": {"stage": ["disqualified"]},
            "steps": [{"after": "0m", "channel": "email", "template": "content"}],
        }
    )
    assert parse_playbooks(document).select("hot", "disqualified", None).name == "inquiry"  # type: ignore[union-attr]


async def _has(client: httpx.AsyncClient, lead_id: uuid.UUID, playbook: str, *status: str) -> bool:
    return any(t["playbook"] == playbook and t["status"] in status for t in await touches(client, lead_id))


async def test_an_sms_waits_for_the_morning_and_goes_by_day(
    nurture: httpx.AsyncClient, sms: Receiver, publish: Any
) -> None:
    night = classified("warm", channel="texting", phone="+77011112233", timezone=zone_where_it_is(2))
    day = classified("warm", channel="texting", phone="+77014445566", timezone=zone_where_it_is(12))
    await publish(topics.LEAD_CLASSIFICATIONS, night, day)
    await eventually(lambda: any(b'"+77014445566"' in r.body for r in sms.received()), timeout=20)
    [request] = [r for r in sms.received() if b'"+77014445566"' in r.body]
    assert request.headers["idempotency-key"] == (await touches(nurture, day.lead_id))[0]["id"]

    async def waiting() -> dict[str, Any] | None:
        [touch] = await touches(nurture, night.lead_id)
        return touch if touch["detail"] == "waiting for the lead's hours or weekly cap" else None

    moved = await eventually(waiting, timeout=20)
    local = datetime.fromisoformat(moved["due_at"]).astimezone(_zone(night))
    assert (local.hour, local.minute) == (9, 0) and moved["status"] == "scheduled"
    assert not any(b'"+77011112233"' in r.body for r in sms.received())


async def test_an_email_step_going_by_sms_waits_out_the_night_and_says_it_went_by_sms(
    nurture: httpx.AsyncClient, sms: Receiver, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """README "Respect": a text waits out the lead's quiet hours, also one that is an email
    step sent by the channel the lead prefers; the timeline and `touch.sent` name that channel,
    and its consent is the one asked for."""
    texting = {"channel": "emailing", "preferred_channel": "sms"}
    night = classified("warm", **texting, phone="+77012223344", timezone=zone_where_it_is(2))
    day = classified("warm", **texting, phone="+77015556677", timezone=zone_where_it_is(12))
    refused = classified("warm", **texting, phone="+77018889900", consent_channels={"sms": False})
    await publish(topics.LEAD_CLASSIFICATIONS, night, day, refused)
    moved = await eventually(lambda: _only_touch(nurture, night.lead_id, "scheduled", "waiting"), timeout=20)
    local = datetime.fromisoformat(moved["due_at"]).astimezone(_zone(night))
    assert (local.hour, local.minute) == (9, 0)
    assert not any(b'"+77012223344"' in r.body for r in sms.received())
    assert mailbox.to(night.data["lead"]["email"]) == []
    await eventually(lambda: any(b'"+77015556677"' in r.body for r in sms.received()), timeout=20)
    sent = await eventually(lambda: _only_touch(nurture, day.lead_id, "sent"), timeout=20)
    assert (sent["channel"], sent["step_channel"]) == ("sms", "email")
    out = await events_of(
        servers.bootstrap,
        str(day.lead_id),
        until=lambda es: any(e.type == "touch.sent" for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [announced] = [e.data for e in out if e.type == "touch.sent"]
    assert (announced["channel"], announced["step_channel"]) == ("sms", "email")
    cancelled = await eventually(lambda: _only_touch(nurture, refused.lead_id, "cancelled"), timeout=20)
    assert cancelled["detail"].startswith("no consent to sms marketing")


async def _only_touch(
    client: httpx.AsyncClient, lead_id: uuid.UUID, status: str, detail: str = ""
) -> dict[str, Any] | None:
    found = await touches(client, lead_id)
    if len(found) == 1 and found[0]["status"] == status and (found[0]["detail"] or "").startswith(detail):
        return found[0]
    return None


def _zone(event: Envelope) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(event.data["lead"]["timezone"])


async def test_the_weekly_cap_holds_back_the_fourth_touch(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    event = classified("warm", channel="burst")
    await publish(topics.LEAD_CLASSIFICATIONS, event)

    async def settled() -> list[dict[str, Any]] | None:
        timeline = await touches(nurture, event.lead_id)
        states = sorted(t["status"] for t in timeline)
        return timeline if states == ["scheduled", "scheduled", "sent", "sent", "sent"] else None

    timeline = await eventually(settled, timeout=20)
    assert len(mailbox.to(event.data["lead"]["email"])) == 3
    for touch in (t for t in timeline if t["status"] == "scheduled"):
        assert datetime.fromisoformat(touch["due_at"]) > utcnow() + timedelta(days=6)


async def test_withdrawn_consent_and_erasure_stop_everything(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    withdrawn, erased = classified("cold"), classified("cold")
    await publish(topics.LEAD_CLASSIFICATIONS, withdrawn, erased)
    for event in (withdrawn, erased):
        await eventually(lambda e=event: _has(nurture, e.lead_id, "cold", "scheduled"), timeout=20)
    consent = withdrawn.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    gone = erased.follow_up(LEAD_ERASED, "ingest", _payload(erased_at=utcnow().isoformat()))
    await publish(topics.LEAD_EVENTS, consent, gone)
    await eventually(lambda: _only(nurture, withdrawn.lead_id, {"cancelled", "sent"}), timeout=20)
    await eventually(lambda: _none(nurture, erased.lead_id), timeout=20)


async def test_a_consent_given_again_starts_the_follow_up_over(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    """Withdrawn, then given again (POST /v1/consent): the person stayed unsubscribed for good
    (found by an outside review). Their playbook starts over, and the welcome comes again."""
    event = classified("warm")
    address = event.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: len(mailbox.to(address)) == 1, timeout=20)
    withdrawn = event.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, withdrawn)
    await eventually(lambda: _only(nurture, event.lead_id, {"cancelled", "sent"}), timeout=20)
    given = event.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=True, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, given)
    await eventually(lambda: len(mailbox.to(address)) == 2, timeout=20)
    assert "scheduled" in await statuses(nurture, event.lead_id)


async def test_a_consent_given_again_through_a_web_pages_key_does_not_undo_an_unsubscribe(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """A `capture` key sits in a web page: anyone could send it with the address of a person
    who unsubscribed, and their emails started again (found by a review). The operator's own
    system records the person's wish with a `history` key, which does."""
    event = classified("warm")
    address = event.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: len(mailbox.to(address)) == 1, timeout=20)
    withdrawn = event.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, withdrawn)
    await eventually(lambda: _only(nurture, event.lead_id, {"cancelled", "sent"}), timeout=20)
    by_a_page = _payload(granted=True, purpose="marketing", key_scope="capture")
    page_grant = event.follow_up(CONSENT_CHANGED, "ingest", by_a_page)
    await publish(topics.LEAD_EVENTS, page_grant)
    await applied(servers, page_grant)
    assert set(await statuses(nurture, event.lead_id)) == {"cancelled", "sent"}
    assert len(mailbox.to(address)) == 1
    by_the_operator = _payload(granted=True, purpose="marketing", key_scope="history")
    await publish(topics.LEAD_EVENTS, event.follow_up(CONSENT_CHANGED, "ingest", by_the_operator))
    await eventually(lambda: len(mailbox.to(address)) == 2, timeout=20)


async def applied(servers: Servers, event: Envelope) -> None:
    """Until nurture's consumer has applied the event (its inbox holds its id)."""
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT count(*) FROM nurture.processed_events WHERE event_id = $1"
        await eventually(lambda: _fetched(connection, query, event.id), timeout=30)
    finally:
        await connection.close()


async def _fetched(connection: asyncpg.Connection, query: str, *args: Any) -> bool:
    return bool(await connection.fetchval(query, *args))


async def test_a_touch_whose_sender_died_mid_send_is_not_emailed_twice_but_texted_again(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any, servers: Servers
) -> None:
    """A worker died between sending and recording (its claim lapsed while 'sending'): the
    email may have left and cannot be recalled, so it fails as in doubt; the SMS goes again
    under the same Idempotency-Key, which the provider uses to drop a repeat."""
    event = classified("warm", channel="tomorrow", phone="+77017778899")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _count(nurture, event.lead_id, "scheduled", 2), timeout=20)
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:  # what a worker killed mid-send leaves behind
        await connection.execute(
            "UPDATE nurture.touches SET status = 'sending', attempts = 1, due_at = now(),"
            " lease_until = now() - interval '1 second' WHERE lead_id = $1",
            event.lead_id,
        )
    finally:
        await connection.close()

    async def settled() -> dict[str, dict[str, Any]] | None:
        timeline = {t["channel"]: t for t in await touches(nurture, event.lead_id)}
        done = all(t["status"] in ("sent", "failed") for t in timeline.values())
        return timeline if done else None

    timeline = await eventually(settled, timeout=20)
    assert timeline["email"]["status"] == "failed"
    assert timeline["email"]["detail"].startswith("in doubt: ")
    assert mailbox.to(event.data["lead"]["email"]) == []
    assert timeline["sms"]["status"] == "sent"
    [text_message] = [r for r in sms.received() if b'"+77017778899"' in r.body]
    assert text_message.headers["idempotency-key"] == timeline["sms"]["id"]


async def _count(client: httpx.AsyncClient, lead_id: uuid.UUID, status: str, count: int) -> bool:
    return (await statuses(client, lead_id)).count(status) == count


def _payload(**data: Any) -> Any:
    from pydantic import BaseModel, ConfigDict

    class Raw(BaseModel):
        model_config = ConfigDict(extra="allow")

    return Raw(**data, occurred_at=utcnow().isoformat())


async def _only(client: httpx.AsyncClient, lead_id: uuid.UUID, allowed: set[str]) -> bool:
    found = set(await statuses(client, lead_id))
    return bool(found) and found <= allowed and "cancelled" in found


async def _none(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return await touches(client, lead_id) == []


async def test_a_call_task_goes_to_the_reps_webhook_and_messages_use_the_preferred_channel(
    nurture: httpx.AsyncClient, sms: Receiver, mailbox: Mailbox, publish: Any
) -> None:
    async with _only_rep(nurture) as rep:
        # SQL playbook: a call task at once, in the lead's call window (it is noon where they are).
        event = classified("warm", lead_id=uuid.uuid4(), call_window="11:00-14:00", phone="+77017778899")
        event.data["stage"] = "sql"
        await publish(topics.LEAD_CLASSIFICATIONS, event)
        task = await eventually(lambda: _task_for(rep, event.lead_id), timeout=20)
    assert task["data"]["task"].startswith("Call Аружан") and task["data"]["lead"]["phone"] == "+77017778899"
    texting = classified("warm", channel="burst", preferred_channel="sms", phone="+77019990000")
    await publish(topics.LEAD_CLASSIFICATIONS, texting)
    await eventually(lambda: any(b'"+77019990000"' in r.body for r in sms.received()), timeout=20)
    assert mailbox.to(texting.data["lead"]["email"]) == []  # the email steps went by SMS


async def test_a_call_task_is_no_message_the_weekly_cap_holds_back(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    """The cap is for messages: after three emails in a week the rep's call task waited for
    the fourth day after, while the person waited for the call, and a call task counted as
    one of the three (found by a review)."""
    async with _only_rep(nurture) as rep:
        event = classified("warm", channel="a_call_and_emails", phone="+77017770001")
        await publish(topics.LEAD_CLASSIFICATIONS, event)
        await eventually(lambda: _count(nurture, event.lead_id, "sent", 5), timeout=20)
        # A call task is "sent" once its webhook is queued: delivered a moment later, and only
        # while the receiver still listens (the check after it closed was a race: 0 == 2).
        await eventually(lambda: _tasks_for(rep, event.lead_id) >= 2, timeout=20)
    assert len(mailbox.to(event.data["lead"]["email"])) == 3
    assert _tasks_for(rep, event.lead_id) == 2


def _tasks_for(receiver: Receiver, lead_id: uuid.UUID) -> int:
    bodies = [json.loads(request.body) for request in receiver.received()]
    return sum(b["type"] == "touch.call_task" and b["data"]["lead_id"] == str(lead_id) for b in bodies)


async def test_call_tasks_of_leads_no_rep_holds_are_shared_among_the_reps(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """Every call task of warm leads (held by no rep) went to the same rep (found by an outside
    review): the round robin chose without counting. Each lead now has one rep for its calls."""
    first_a_call = module_playbooks()
    warm = next(p for p in first_a_call["playbooks"] if p["name"] == "warm")
    warm["steps"][0] = {"after": "0m", "channel": "call_task", "template": "follow_up_call"}
    assert (await nurture.put("/v1/playbooks", json=first_a_call, headers=ADMIN)).status_code == 201
    try:
        async with _only_rep(nurture) as first, _another_rep(nurture) as second:
            leads = [classified("warm") for _ in range(20)]
            for event in leads:
                await publish(topics.LEAD_CLASSIFICATIONS, event)

            async def shared() -> tuple[int, int] | None:
                given = [sum(_task_for(r, e.lead_id) is not None for e in leads) for r in (first, second)]
                return (given[0], given[1]) if sum(given) == len(leads) else None

            given = await eventually(shared, timeout=30)
    finally:
        restored = await nurture.put("/v1/playbooks", json=module_playbooks(), headers=ADMIN)
        assert restored.status_code == 201
    assert min(given) > 0, given


@asynccontextmanager
async def _another_rep(client: httpx.AsyncClient) -> AsyncIterator[Receiver]:
    with webhook_receiver() as receiver:
        body = {"name": "Second caller", "webhook_url": receiver.url}
        assert (await client.post("/v1/reps", json=body, headers=ADMIN)).status_code == 201
        yield receiver


def _task_for(receiver: Receiver, lead_id: uuid.UUID) -> dict[str, Any] | None:
    for request in receiver.received():
        body = json.loads(request.body)
        if body["type"] == "touch.call_task" and body["data"]["lead_id"] == str(lead_id):
            return dict(body)
    return None


@asynccontextmanager
async def _only_rep(client: httpx.AsyncClient) -> AsyncIterator[Receiver]:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
    with webhook_receiver() as receiver:
        body = {"name": "Caller", "webhook_url": receiver.url}
        assert (await client.post("/v1/reps", json=body, headers=ADMIN)).status_code == 201
        yield receiver


async def test_invalid_playbooks_are_refused_with_the_reason(nurture: httpx.AsyncClient) -> None:
    broken = (
        default_playbooks_text()
        .replace("weekly_cap: 3", "weekly_cap: 0")
        .replace("template: content}", "template: no_such_template}", 1)
    )
    refused = await nurture.put("/v1/playbooks", content=broken, headers=YAML)
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert "weekly_cap" in fields
    not_yaml = await nurture.put("/v1/playbooks", content="playbooks: [", headers=YAML)
    assert not_yaml.status_code == 422 and not_yaml.json()["errors"][0]["field"].startswith("line")


async def test_a_kazakh_lead_gets_a_kazakh_email_intact(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    event = classified("warm", company="Qazaq Trade", language="kk")
    address = event.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    [message] = await eventually(lambda: mailbox.to(address), timeout=20)
    raw = next(r for r in mailbox.received if address.encode() in r)
    subject_line = next(line for line in raw.split(b"\n") if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line.lower(), "RFC 2047, not raw bytes"
    assert message["Subject"] == "Рақмет, Аружан"
    assert message["Content-Language"] == "kk"
    assert message.get_content_charset() == "utf-8"
    body = message.get_content()
    assert body.startswith("Сәлеметсіз бе, Аружан!\n\n")
    assert "Сізге не ұсына алатынымызды" in body, "the company the visitor typed is not quoted"
    assert f"Жазылымнан бас тарту: {message['List-Unsubscribe'].strip('<>')}" in body


async def test_a_lead_that_says_no_language_is_written_to_in_its_sources(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    event = classified("warm", source_language="ru")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    [message] = await eventually(lambda: mailbox.to(event.data["lead"]["email"]), timeout=20)
    assert message["Subject"] == "Спасибо, Аружан"
    assert message.get_content().startswith("Здравствуйте, Аружан!")


async def test_the_unsubscribe_page_speaks_azerbaijani(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    event = classified("warm", language="az")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    [message] = await eventually(lambda: mailbox.to(event.data["lead"]["email"]), timeout=20)
    assert message["Subject"] == "Təşəkkür edirik, Аружан"
    path = message["List-Unsubscribe"].strip("<>").split("8003", 1)[1]
    page = await nurture.get(path)
    assert page.status_code == 200 and page.headers["content-language"] == "az"
    assert '<html lang="az">' in page.text
    assert "Bizdən mesaj almağı dayandırmaq istəyirsiniz?" in page.text
    assert "Abunəlikdən çıxın</button>" in page.text
    done = await nurture.post(path)
    assert done.status_code == 200 and "Siz abunəlikdən çıxdınız." in done.text


async def test_the_timeline_is_read_with_the_viewer_token_and_never_without_one(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """A read of lead data, as DESIGN.md has it: the viewer token or the admin token."""
    event = classified("cold")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    whole = await eventually(lambda: touches_when(nurture, event.lead_id, at_least=1), timeout=20)
    url = f"/v1/leads/{event.lead_id}/touches"
    as_viewer = await nurture.get(url, headers=VIEWER)
    assert as_viewer.status_code == 200, as_viewer.text
    assert [t["id"] for t in as_viewer.json()] == [t["id"] for t in whole]
    assert (await nurture.get(url, headers=ANONYMOUS)).status_code == 401


async def test_the_timeline_comes_a_page_at_a_time_in_due_order(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    event = classified("cold")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    whole = await eventually(lambda: touches_when(nurture, event.lead_id, at_least=3), timeout=20)
    url = f"/v1/leads/{event.lead_id}/touches"
    seen, pages = await every_page(nurture, url, limit=2)
    assert [t["id"] for t in seen] == [t["id"] for t in whole]
    assert [t["due_at"] for t in seen] == sorted(t["due_at"] for t in seen)
    assert pages == -(-len(seen) // 2)


async def touches_when(client: httpx.AsyncClient, lead_id: uuid.UUID, at_least: int) -> list[dict[str, Any]]:
    found = await touches(client, lead_id)
    return found if len(found) >= at_least else []


async def test_a_consent_withdrawn_while_the_sender_had_the_email_is_seen_before_it_goes(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """The sender has taken the email (its claim committed) while a transaction holds the
    lead: it waits for nobody and puts the email back for a second; the transaction withdraws
    the person's email consent; the email is not sent. (The sender used to send what it had
    claimed as it found the lead at the claim.)"""
    event = classified("warm", channel="tomorrow", phone="+77015550101")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _count(nurture, event.lead_id, "scheduled", 2), timeout=20)
    db = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:  # consent.changed being applied, as it begins
        held = "SELECT FROM followed_leads WHERE lead_id = :id FOR SHARE"
        await session.execute(text(held), {"id": event.lead_id})
        await due_now(servers, event.lead_id, "email")
        await eventually(lambda: _email_detail(nurture, event.lead_id, touch_claims.BUSY), timeout=20)
        change = {"granted": False, "purpose": "marketing", "channel": "email"}
        await followup.record_consent(session, event.lead_id, change)

    no_consent = touch_claims.NO_CONSENT.format(channel="email")
    await eventually(lambda: _email_detail(nurture, event.lead_id, no_consent), timeout=20)
    assert mailbox.to(event.data["lead"]["email"]) == []


async def test_a_consent_withdrawn_as_the_lead_is_first_classified_is_kept(
    nurture: httpx.AsyncClient, servers: Servers
) -> None:
    """The lead's row, inserted by a consent withdrawal committing while its first
    classification was being followed, was not locked by it (it did not exist yet) and was then
    overwritten with the classification's copy: the person was texted again (found by a review)."""
    event = classified("warm", channel="tomorrow", phone="+77015550102")
    db = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    following: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    configure_mappers()  # as a process's first ORM read would: follow builds touches bare

    async def follow() -> None:
        async with db.transaction() as session:
            following.set_result(await (await driver_connection(session)).fetchval("SELECT pg_backend_pid()"))
            await followup.follow(session, [event], followup.PlaybookBook())

    async with db.transaction() as session:
        change = {"granted": False, "purpose": "marketing", "channel": "sms"}
        await followup.record_consent(session, event.lead_id, change)
        task = asyncio.create_task(follow())
        await eventually(lambda: _waits_on_a_lock(servers, following), timeout=20)
    await task
    context = await _context(servers, event.lead_id)
    assert (context.get("consent_channels"), context.get(HEARD)) == ({"sms": False}, {"sms": False}), context


async def _waits_on_a_lock(servers: Servers, backend: asyncio.Future[int]) -> bool:
    if not backend.done():
        return False
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
        return bool(await connection.fetchval(query, backend.result()))
    finally:
        await connection.close()


async def _context(servers: Servers, lead_id: uuid.UUID) -> dict[str, Any]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT context FROM nurture.followed_leads WHERE lead_id = $1"
        return dict(json.loads(await connection.fetchval(query, lead_id)))
    finally:
        await connection.close()


async def _email_detail(client: httpx.AsyncClient, lead_id: uuid.UUID, detail: str) -> bool:
    return any(t["channel"] == "email" and t["detail"] == detail for t in await touches(client, lead_id))


async def due_now(servers: Servers, lead_id: uuid.UUID, channel: str) -> None:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "UPDATE nurture.touches SET due_at = now() WHERE lead_id = $1 AND channel = $2"
        await connection.execute(query, lead_id, channel)
    finally:
        await connection.close()


async def test_a_touch_keeps_the_texts_of_the_playbooks_it_was_scheduled_under(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """A new version without a template (removed or renamed) leaves the touches scheduled with
    it their text; a touch whose version has it not is cancelled saying so, not failed three
    times with a `touch.failed`."""
    playbooks = yaml.safe_load(default_playbooks_text())
    playbooks["playbooks"] = TEST_PLAYBOOKS + playbooks["playbooks"]
    older = {
        **playbooks,
        "templates": {**playbooks["templates"], "promo_a": {"subject": "Promo A", "body": "A, {first_name}"}},
    }
    step = {"after": "1d", "channel": "email", "template": "promo_a"}
    older["playbooks"] = [
        {"name": "promo", "when": {"channel": ["promo"]}, "steps": [step]},
        *playbooks["playbooks"],
    ]
    assert (await nurture.put("/v1/playbooks", json=older, headers=ADMIN)).status_code == 201
    kept, lost = classified("warm", channel="promo"), classified("warm", channel="promo")
    await publish(topics.LEAD_CLASSIFICATIONS, kept, lost)
    for event in (kept, lost):
        await eventually(lambda e=event: _only_touch(nurture, e.lead_id, "scheduled"), timeout=20)
    assert (await nurture.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:  # the step's day has come; and a touch naming a version that never was
        await connection.execute(
            "UPDATE nurture.touches SET due_at = now(),"
            " playbook_version = CASE WHEN lead_id = $2 THEN 0 ELSE playbook_version END"
            " WHERE lead_id IN ($1, $2)",
            kept.lead_id,
            lost.lead_id,
        )
    finally:
        await connection.close()
    [message] = await eventually(lambda: mailbox.to(kept.data["lead"]["email"]), timeout=20)
    assert message["Subject"] == "Promo A" and "A, Аружан" in message.get_payload(decode=True).decode()
    await eventually(lambda: _only_touch(nurture, kept.lead_id, "sent"), timeout=20)
    cancelled = await eventually(lambda: _only_touch(nurture, lost.lead_id, "cancelled"), timeout=20)
    assert cancelled["detail"] == "no template 'promo_a' in playbooks version 0, which it was scheduled under"
    assert mailbox.to(lost.data["lead"]["email"]) == []


async def test_the_hot_leads_promise_of_a_call_expires_half_an_hour_after_it_is_due(
    nurture: httpx.AsyncClient, publish: Any, servers: Servers
) -> None:
    """Due 5 minutes after scoring classified the lead, true for 30 minutes from then."""
    event = classified("hot", phone="+77015550199")
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _count(nurture, event.lead_id, "scheduled", 1), timeout=20)
    rows = await _touch_rows(servers, event.lead_id)
    assert {r["template"]: r["expires_at"] for r in rows} == {
        "call_now": None,
        "we_call_you": event.occurred_at + timedelta(minutes=35),
    }


async def test_a_promise_of_a_call_heard_an_hour_late_is_not_made(
    nurture: httpx.AsyncClient, publish: Any, servers: Servers
) -> None:
    """Nurture's consumer was behind (a restart, a backlog): the person asked 40 minutes ago,
    and "our manager will call you within 15 minutes" was scheduled 5 minutes on, true for 30
    minutes from then (found by a review). The rep's call task is made all the same."""
    event = classified("hot", phone="+77015550198").model_copy(
        update={"occurred_at": utcnow() - timedelta(minutes=40)}
    )
    await publish(topics.LEAD_CLASSIFICATIONS, event)

    async def both_made() -> dict[str, Any] | None:  # in one transaction: each as it was made
        rows = {r["template"]: r for r in await _touch_rows(servers, event.lead_id)}
        return rows if len(rows) == 2 else None

    rows = await eventually(both_made, timeout=20)
    assert (rows["we_call_you"]["status"], rows["we_call_you"]["detail"]) == (
        "cancelled",
        touch_claims.EXPIRED,
    )
    assert rows["call_now"]["status"] in ("scheduled", "sending", "sent"), (
        "the call task is made all the same"
    )


async def _touch_rows(servers: Servers, lead_id: uuid.UUID) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT template, status, detail, due_at, expires_at FROM nurture.touches WHERE lead_id = $1"
        return list(await connection.fetch(query + " ORDER BY step", lead_id))
    finally:
        await connection.close()


async def test_an_unsubscribe_outlives_the_erasure_of_the_person(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """Unsubscribed, erased, then sent again by a CRM: a new lead with the same address was
    emailed the welcome (found by an outside review). Only a keyed hash of the address is kept,
    and a new consent lifts it."""
    first = classified("warm")
    address = first.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, first)
    await eventually(lambda: len(mailbox.to(address)) == 1, timeout=20)
    unsubscribed = first.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, unsubscribed)
    await eventually(lambda: _only(nurture, first.lead_id, {"cancelled", "sent"}), timeout=20)
    gone = first.follow_up(LEAD_ERASED, "ingest", _payload(erased_at=utcnow().isoformat()))
    await publish(topics.LEAD_EVENTS, gone)
    await eventually(lambda: _none(nurture, first.lead_id), timeout=20)

    again = classified("warm", email=address.upper())  # the CRM's copy, written its own way
    await publish(topics.LEAD_CLASSIFICATIONS, again)
    suppressed = "the person unsubscribed by this address before (kept after their erasure)"
    await eventually(lambda: _email_detail(nurture, again.lead_id, suppressed), timeout=20)
    assert len(mailbox.to(address)) == 1
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        kept = await connection.fetch("SELECT digest FROM nurture.suppressed_addresses")
    finally:
        await connection.close()
    assert kept and all(address.encode() not in bytes(row["digest"]) for row in kept)

    by_a_page = _payload(granted=True, purpose="marketing", key_scope="capture")
    page_grant = again.follow_up(CONSENT_CHANGED, "ingest", by_a_page)
    await publish(topics.LEAD_EVENTS, page_grant)
    await applied(servers, page_grant)  # a web page's key lifts nothing (anyone may send it)
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        still = await connection.fetch("SELECT digest FROM nurture.suppressed_addresses")
    finally:
        await connection.close()
    assert {bytes(row["digest"]) for row in kept} <= {bytes(row["digest"]) for row in still}
    given = again.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=True, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, given)
    await eventually(lambda: len(mailbox.to(address)) + len(mailbox.to(address.upper())) == 2, timeout=20)


async def test_a_consent_given_again_before_the_first_classification_lifts_the_suppression(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """Unsubscribed, erased, then created again by the CRM, which posts the person's new
    opt-in at once: the consent came before scoring's classification, when nurture did not know
    the address yet, so the suppression stayed and every email was cancelled (found by a
    review). A web page's key, as ever, lifts nothing."""
    first = classified("warm")
    address = first.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, first)
    await eventually(lambda: len(mailbox.to(address)) == 1, timeout=20)
    withdrawn = first.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, withdrawn)
    await eventually(lambda: _only(nurture, first.lead_id, {"cancelled", "sent"}), timeout=20)
    gone = first.follow_up(LEAD_ERASED, "ingest", _payload(erased_at=utcnow().isoformat()))
    await publish(topics.LEAD_EVENTS, gone)
    await eventually(lambda: _none(nurture, first.lead_id), timeout=20)

    suppressed = "the person unsubscribed by this address before (kept after their erasure)"
    by_a_page = await _granted_then_classified(servers, publish, address, "capture")
    await eventually(lambda: _email_detail(nurture, by_a_page.lead_id, suppressed), timeout=20)
    by_the_crm = await _granted_then_classified(servers, publish, address, "history")
    await eventually(lambda: _email_sent(nurture, by_the_crm.lead_id), timeout=20)
    assert len(mailbox.to(address)) == 2  # the first lead's welcome, then the CRM's lead's


async def test_an_unsubscribe_heard_before_the_first_classification_outlives_the_erasure(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any, servers: Servers
) -> None:
    """A CRM posts a lead and its stored unsubscribe at once: the withdrawal reached nurture
    before scoring's classification, when nurture knew no address of the person, so none was
    kept; erased, then sent again, the person was emailed the welcome (found by a review)."""
    first = classified("warm")
    address = first.data["lead"]["email"]
    withdrawn = first.follow_up(CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing"))
    await publish(topics.LEAD_EVENTS, withdrawn)
    await applied(servers, withdrawn)  # before nurture has any classification of the lead
    await publish(topics.LEAD_CLASSIFICATIONS, first)
    await applied(servers, first)
    assert await touches(nurture, first.lead_id) == []  # unsubscribed: nothing queued
    gone = first.follow_up(LEAD_ERASED, "ingest", _payload(erased_at=utcnow().isoformat()))
    await publish(topics.LEAD_EVENTS, gone)
    await applied(servers, gone)

    again = classified("warm", email=address)
    await publish(topics.LEAD_CLASSIFICATIONS, again)
    suppressed = "the person unsubscribed by this address before (kept after their erasure)"
    await eventually(lambda: _email_detail(nurture, again.lead_id, suppressed), timeout=20)
    assert mailbox.to(address) == []


async def _granted_then_classified(servers: Servers, publish: Any, address: str, scope: str) -> Envelope:
    again = classified("warm", email=address)
    grant = _payload(granted=True, purpose="marketing", key_scope=scope)
    given = again.follow_up(CONSENT_CHANGED, "ingest", grant)
    await publish(topics.LEAD_EVENTS, given)
    await applied(servers, given)  # before nurture has any classification of the lead
    await publish(topics.LEAD_CLASSIFICATIONS, again)
    return again


async def _email_sent(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return any(t["channel"] == "email" and t["status"] == "sent" for t in await touches(client, lead_id))
