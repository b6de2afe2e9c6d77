"""An SMS or messenger text to the person names the company first (carriers require it) and ends
with a way to stop: the lead's signed unsubscribe link, the page emails link to. A person who
gave only a phone could never unsubscribe (a review). Through the real touch sender, real SMS
and messenger providers on localhost, and nurture's own unsubscribe page."""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.unsubscribe_links import short_unsubscribe_url
from tests.conftest import ADMIN, Servers, eventually, running
from tests.nurture.test_email_sending import outcomes, relay, sender
from tests.nurture.test_followup import zone_where_it_is
from tests.receiver import Receiver, webhook_receiver

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
LATER = 3600.0  # a step still to come when the person unsubscribes


async def phone_only_lead(
    servers: Servers, language: str | None, steps: list[tuple[str, float]]
) -> tuple[uuid.UUID, str, list[str]]:
    """A lead awake now (noon where they are) who consented and gave a phone and nothing else,
    with a step for each (channel, seconds from now): a `checking_in` text, or a call task."""
    lead, ids = uuid.uuid4(), [uuid.uuid4() for _ in steps]
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO nurture.followed_leads (lead_id, context, playbook, playbook_version) VALUES ($1,"
            " jsonb_strip_nulls(jsonb_build_object('phone', $2::text, 'consent', true,"
            " 'timezone', $3::text, 'language', $4::text)), 'mql', 1)",
            lead,
            phone,
            zone_where_it_is(12),
            language,
        )
        await connection.executemany(
            "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
            " channel, template, status, due_at) VALUES ($1, $2, $3, 'mql', 1, $4, $5, CASE $5 WHEN"
            " 'call_task' THEN 'follow_up_call' ELSE 'checking_in' END, 'scheduled',"
            " now() + make_interval(secs => $6))",
            [(i, lead, uuid.uuid4(), n, c, s) for n, (i, (c, s)) in enumerate(zip(ids, steps, strict=True))],
        )
    finally:
        await connection.close()
    return lead, phone, [str(i) for i in ids]


def texts_to(provider: Receiver, phone: str) -> list[str]:
    sent = [json.loads(r.body) for r in provider.received()]
    return [body["text"] for body in sent if body["to"] == phone]


async def status(servers: Servers, touch: str) -> str:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        found = await connection.fetchval("SELECT status FROM nurture.touches WHERE id = $1::uuid", touch)
    finally:
        await connection.close()
    return str(found)


@asynccontextmanager
async def nurture(
    servers: Servers, sms: Receiver, messenger: Receiver, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, NurtureSettings]]:
    """Nurture as it runs: its touch sender and its unsubscribe page."""
    values = servers.settings(
        NurtureSettings,
        sms_url=sms.url,
        messenger_url=messenger.url,
        touch_poll_seconds=0.05,
        touch_lease_seconds=30,
        webhook_timeout_seconds=3,
        **settings,
    )
    async with running(create_app(values)) as client:
        yield client, values


async def test_a_phone_only_person_is_told_who_writes_and_can_stop_every_text(servers: Servers) -> None:
    with webhook_receiver() as sms, webhook_receiver() as messenger:
        async with nurture(servers, sms, messenger, sender_name="Acme") as (client, settings):
            lead, phone, [texted, messaged, later] = await phone_only_lead(
                servers, "ru", [("sms", 0), ("messenger", 0), ("sms", LATER)]
            )
            [text] = await eventually(lambda: texts_to(sms, phone), timeout=20)
            [message] = await eventually(lambda: texts_to(messenger, phone), timeout=20)
            link = short_unsubscribe_url(settings, lead)
            said = "Acme: Здравствуйте! Можем ли мы чем-нибудь Вам помочь?\nОтписаться: " + link
            assert text == said and message == said
            path = link.split("8003", 1)[1]
            assert len(path) == len("/v1/u/") + 44, "an SMS in Cyrillic holds 70 characters"
            cut, altered = path[:-1], path[:-1] + ("A" if path[-1] != "A" else "B")
            for wrong in (cut, altered):
                assert (await client.get(wrong, headers=BROWSER)).status_code == 403
                assert (await client.post(wrong, headers=BROWSER)).status_code == 403
            assert (await client.get("/v1/u/short")).json()["errors"][0]["field"] == "code"
            page = await client.get(path, headers=BROWSER)  # a phone's browser opening the link
            assert page.status_code == 200 and page.headers["content-language"] == "ru"
            assert 'method="post"' in page.text and "Отписаться" in page.text
            assert await status(servers, later) == "scheduled", "opening it changes nothing"
            confirmed = await client.post(path, headers=BROWSER)
            assert confirmed.status_code == 200 and "Вы отписались" in confirmed.text
            assert await status(servers, later) == "cancelled"
            assert [await status(servers, t) for t in (texted, messaged)] == ["sent", "sent"]


async def test_a_call_task_to_the_rep_takes_neither_the_name_nor_the_link(servers: Servers) -> None:
    with webhook_receiver() as sms, webhook_receiver() as messenger, webhook_receiver() as rep:
        async with nurture(servers, sms, messenger, sender_name="Acme") as (client, _):
            connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
            try:
                await connection.execute("UPDATE nurture.reps SET active = false")
            finally:
                await connection.close()
            added = await client.post(
                "/v1/reps", json={"name": "Caller", "webhook_url": rep.url}, headers=ADMIN
            )
            assert added.status_code == 201
            lead, phone, _ = await phone_only_lead(servers, "en", [("call_task", 0)])
            [task] = await eventually(lambda: tasks_for(rep, lead), timeout=20)
    assert task == f"Follow up ({phone}): check the decision timeline."


def tasks_for(receiver: Receiver, lead: uuid.UUID) -> list[str]:
    sent = [json.loads(r.body) for r in receiver.received()]
    return [
        b["data"]["task"]
        for b in sent
        if b["type"] == "touch.call_task" and b["data"]["lead_id"] == str(lead)
    ]


async def test_with_no_sender_name_a_text_is_not_prefixed_but_still_ends_with_the_link(
    servers: Servers,
) -> None:
    with relay() as box, webhook_receiver() as provider:
        async with sender(servers, box, sms_url=provider.url):
            lead, phone, [touch] = await phone_only_lead(servers, None, [("sms", 0)])
            await eventually(lambda: outcomes(servers, [touch]), timeout=20)
        values = servers.settings(NurtureSettings)
    [text] = texts_to(provider, phone)
    link = short_unsubscribe_url(values, lead)
    assert text == f"Hello, is there anything we can help you with?\nUnsubscribe: {link}"


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_sender_name_is_none(servers: Servers, name: str) -> None:
    assert servers.settings(NurtureSettings, sender_name=name).sender_name is None


@pytest.mark.parametrize("name", ["Acme\nWin a prize: http://x.example", "A" * 41])
def test_a_sender_name_on_two_lines_or_too_long_is_refused(servers: Servers, name: str) -> None:
    with pytest.raises(ValidationError, match="sender_name"):
        servers.settings(NurtureSettings, sender_name=name)
