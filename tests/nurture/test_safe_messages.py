"""A message to the person says nothing a visitor typed but a name that looks like one: anyone
can post a public form with a stranger's address and a "name" carrying their own wording and
link, which the company's sender then wrote to the stranger (found by a review). Tried as that
attacker would, through the real sender, its SMTP server and its SMS provider."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.playbooks import default_playbooks_text
from services.nurture.safe_fields import for_the_person, looks_like_a_name
from services.nurture.unsubscribe_links import short_unsubscribe_url
from shared import topics
from shared.events import Envelope
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.nurture.holding import Mailbox, smtp_server
from tests.nurture.test_followup import classified, touches
from tests.receiver import Receiver, webhook_receiver

YAML = {**ADMIN, "content-type": "application/yaml"}
STRANGERS = {
    "name": "strangers",
    "when": {"channel": ["strangers"]},
    "steps": [
        {"after": "0m", "channel": "email", "template": "welcome"},
        {"after": "0m", "channel": "email", "template": "case_study"},
        {"after": "0m", "channel": "sms", "template": "checking_in"},
    ],
}
PRIZE = "вы выиграли 500 000 ₸! Заберите приз: http://prize.example/kz?id=1"
LINES = "Аружан\n\nВаш аккаунт заблокирован, войдите: http://evil.example\n"


@pytest.mark.parametrize("name", ["Аружан", "Rəşad", "Anne-Marie", "O'Neil", "Ержан Серикович", "J.R. Smith"])
def test_a_name_that_looks_like_one_is_used(name: str) -> None:
    assert looks_like_a_name(name)
    assert for_the_person({"first_name": f" {name} "})["first_name"] == name


@pytest.mark.parametrize(
    "name",
    [
        PRIZE,
        LINES,
        "Аружан\nBcc",
        "prize.example",
        "Заберите приз на prize.kz",
        "t.co",
        "приз.рф",
        "me@example.kz",
        "Aru2",
        "A very long name that goes on and on and on",
        "one two three four five",
        "-",
        "Аружан\u200b",
    ],
)
def test_anything_else_is_not(name: str) -> None:
    assert not looks_like_a_name(name)
    assert "first_name" not in for_the_person({"first_name": name})


def test_free_text_is_never_quoted_to_the_person() -> None:
    typed = {
        "first_name": "Аружан",
        "need": "http://prize.example",
        "message": "x",
        "company": "Qazaq Trade",
        "city": "Алматы",
        "email": "aru@example.kz",
        "phone": "+77010000000",
    }
    assert for_the_person(typed) == {"first_name": "Аружан", "phone": "+77010000000"}


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
    )
    async with running(create_app(settings)) as client:
        playbooks = yaml.safe_load(default_playbooks_text())
        playbooks["playbooks"][:0] = [STRANGERS]
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


async def _all_sent(client: httpx.AsyncClient, event: Envelope) -> bool:
    found = await touches(client, event.lead_id)
    return len(found) == 3 and all(t["status"] == "sent" for t in found)


def _texts_to(sms: Receiver, phone: str) -> list[str]:
    return [json.loads(r.body)["text"] for r in sms.received() if json.loads(r.body)["to"] == phone]


@pytest.mark.parametrize("name", [PRIZE, LINES])
async def test_a_strangers_wording_and_link_typed_as_a_name_are_not_sent_to_them(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any, name: str, servers: Servers
) -> None:
    phone = "+77010001122" if name == PRIZE else "+77010001133"
    event = classified(
        "warm",
        channel="strangers",
        language="ru",
        first_name=name,
        phone=phone,
        company="Заберите приз: http://prize.example",
        need="перейдите по ссылке http://prize.example/need",
    )
    address = event.data["lead"]["email"]
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _all_sent(nurture, event), timeout=20)
    messages = await eventually(lambda: len(mailbox.to(address)) == 2 and mailbox.to(address), timeout=20)
    [text] = await eventually(lambda: _texts_to(sms, phone), timeout=20)
    subjects = sorted(str(m["Subject"]) for m in messages)
    bodies = [m.get_content().split("\n--\n")[0] for m in messages]  # the unsubscribe link aside
    assert subjects == ["Рассказать, как мы работали с похожими клиентами?", "Спасибо"]
    assert all(body.startswith("Здравствуйте!\n\n") for body in bodies), bodies
    assert "как работали с клиентами, у которых была похожая задача: что они выбрали" in "".join(bodies)
    text, link = text.split("\nОтписаться: ")  # every text ends with the lead's unsubscribe link
    assert text == "Здравствуйте! Можем ли мы чем-нибудь Вам помочь?"
    assert link == short_unsubscribe_url(servers.settings(NurtureSettings), event.lead_id)
    for said in [*subjects, *bodies, text]:
        assert "http" not in said and "prize" not in said and "заблокирован" not in said


async def test_a_persons_real_name_is_still_used(
    nurture: httpx.AsyncClient, mailbox: Mailbox, publish: Any
) -> None:
    names = ["Аружан", "Rəşad", "Anne-Marie", "O'Neil"]
    events = [classified("warm", channel="strangers", first_name=name) for name in names]
    await publish(topics.LEAD_CLASSIFICATIONS, *events)
    for name, event in zip(names, events, strict=True):
        address = event.data["lead"]["email"]
        messages = await eventually(lambda a=address: len(mailbox.to(a)) == 2 and mailbox.to(a), timeout=20)
        welcome = next(m for m in messages if str(m["Subject"]).startswith("Thank you"))
        assert welcome["Subject"] == f"Thank you, {name}"
        assert welcome.get_content().startswith(f"Hello {name},\n\n")
