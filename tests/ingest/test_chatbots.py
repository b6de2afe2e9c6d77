"""Chatbots: a real Telegram Bot API Update sample, and the generic message shape."""

import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, opened_events_of, refused_fields
from tests.shared.test_no_personal_data_in_logs import every_log_line


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest with no limit per client address: every post of this module comes from one, more
    than a minute's share of it (the limits have tests of their own, test_abuse)."""
    async with running(create_app(servers.settings(IngestSettings, rate_limit_per_ip_other=""))) as client:
        yield client


def telegram_update(update_id: int, chat_id: int, **message: object) -> dict[str, object]:
    """An Update as Telegram's Bot API sends it to a webhook (fields as documented)."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 10_000,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Айгүл", "language_code": "kk"},
            "chat": {"id": chat_id, "first_name": "Айгүл", "type": "private"},
            "date": 1_795_000_000,
            **message,
        },
    }


async def telegram_secret(ingest: httpx.AsyncClient, source: dict[str, object]) -> dict[str, str]:
    """The header Telegram sends, with the secret made for it (not the source's key)."""
    made = await ingest.post(f"/v1/sources/{source['id']}/telegram-secret", headers=ADMIN)
    assert made.status_code == 200, made.text
    return {"X-Telegram-Bot-Api-Secret-Token": made.json()["telegram_secret"]}


async def test_telegram_text_waits_for_the_contact_then_becomes_activities(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)

    hello = telegram_update(update_id, chat_id, text="Сәлем! Жеткізу қанша тұрады?")
    first = await ingest.post(url, json=hello, headers=secret)
    assert first.status_code == 202 and first.json()["lead_id"] is None

    phone = f"7701{random.randint(10**6, 10**7 - 1)}"
    contact = telegram_update(
        update_id + 1,
        chat_id,
        contact={"phone_number": phone, "first_name": "Айгүл", "last_name": "Нұрланқызы", "user_id": chat_id},
    )
    shared = await ingest.post(url, json=contact, headers=secret)
    lead_id = shared.json()["lead_id"]
    assert lead_id is not None

    later = await ingest.post(
        url, json=telegram_update(update_id + 2, chat_id, text="Рахмет"), headers=secret
    )
    assert later.json()["lead_id"] == lead_id
    retried = await ingest.post(
        url, json=telegram_update(update_id + 2, chat_id, text="Рахмет"), headers=secret
    )
    assert retried.headers["idempotent-replayed"] == "true"

    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["phone"] == f"+{phone}"
    assert lead["attributes"]["last_name"] == "Нұрланқызы"
    texts = [h["properties"]["text"] for h in lead["history"] if h["type"] == "chat_message"]
    assert texts == ["Сәлем! Жеткізу қанша тұрады?", "Рахмет"]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 3)
    assert [e.type for e in events] == ["lead.captured", "activity.recorded", "activity.recorded"]


async def test_telegram_without_the_secret_token_is_refused(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="chatbot")
    update = telegram_update(1, 42, text="hi")
    url = f"/v1/chatbots/{source['id']}/telegram"
    assert (await ingest.post(url, json=update)).status_code == 401
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert (await ingest.post(url, json=update, headers=wrong)).status_code == 401
    the_key = {"X-Telegram-Bot-Api-Secret-Token": str(source["key"])}
    assert (await ingest.post(url, json=update, headers=the_key)).status_code == 401, "not the source key"
    old = await telegram_secret(ingest, source)
    new = await telegram_secret(ingest, source)
    assert (await ingest.post(url, json=update, headers=old)).status_code == 401, "replaced at once"
    assert (await ingest.post(url, json=update, headers=new)).status_code == 202


async def test_a_wrong_telegram_secret_is_told_as_telegram_s_secret_not_as_a_source_key(
    ingest: httpx.AsyncClient,
) -> None:
    """The secret is not the source key (a key sent for it is refused): a 401 saying "Source key
    missing, unknown or disabled" sent whoever set the webhook to look at the key."""
    source = await create_source(ingest, channel="chatbot")
    await telegram_secret(ingest, source)
    url, update = f"/v1/chatbots/{source['id']}/telegram", telegram_update(1, 42, text="hi")
    for sent in ("", "wrong", str(source["key"])):
        answer = await ingest.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": sent})
        assert answer.status_code == 401, answer.text
        assert answer.json()["title"] == "Telegram secret token missing or wrong"


async def test_a_chatbot_message_sent_with_another_source_s_key_is_told_so(ingest: httpx.AsyncClient) -> None:
    """A valid key of another source was told its key was "missing, unknown or disabled", when the
    path's source id was the mistake. Its holder learns only that the key is not that source's;
    an unknown key is told as before, nothing saying whose an id is."""
    source, other = [await create_source(ingest, channel="live_chat") for _ in range(2)]
    url, body = f"/v1/chatbots/{source['id']}/messages", {"conversation_id": "c-1", "text": "Salam"}
    told = await ingest.post(url, json=body, headers={"X-Source-Key": other["key"]})
    assert told.status_code == 401, told.text
    assert told.json()["title"] == "This source key is another source's: the path names a source it is not"
    unknown = await ingest.post(url, json=body, headers={"X-Source-Key": "lfk_" + uuid.uuid4().hex})
    assert (unknown.status_code, unknown.json()["title"]) == (401, "Source key missing, unknown or disabled")


async def test_a_contact_card_of_someone_else_makes_no_lead(ingest: httpx.AsyncClient) -> None:
    """Telegram lets anyone share anyone's card: only the sender's own makes or changes a lead."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    victim = f"7701{random.randint(10**6, 10**7 - 1)}"
    for card in ({"user_id": chat_id + 1}, {}):  # another user's card; a card with no user at all
        update_id += 1
        update = telegram_update(
            update_id, chat_id, contact={"phone_number": victim, "first_name": "X", **card}
        )
        answer = await ingest.post(url, json=update, headers=secret)
        assert (answer.status_code, answer.content) == (200, b""), "acknowledged, nothing recorded"
    looked_up = await ingest.post(
        "/v1/activities", json={"type": "page_view", "phone": victim}, headers={"X-Source-Key": source["key"]}
    )
    lead = (await ingest.get(f"/v1/leads/{looked_up.json()['lead_id']}", headers=ADMIN)).json()
    assert [h["type"] for h in lead["history"]] == ["page_view"], "the card made no lead before this"


def not_a_message(kind: str, update_id: int, chat_id: int) -> dict[str, object]:
    """An Update that carries no new message: an edit, or a button press under an old one."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Айгүл"}
    old = {"message_id": 1, "date": 1_795_000_000, "chat": {"id": chat_id, "type": "private"}, "text": "x"}
    if kind == "edited_message":
        return {"update_id": update_id, kind: {**old, "from": person, "edit_date": 1_795_000_100}}
    return {"update_id": update_id, kind: {"id": str(update_id), "from": person, "message": old, "data": "x"}}


@pytest.mark.parametrize("kind", ["edited_message", "callback_query"])
async def test_telegram_updates_that_are_not_messages_are_acknowledged_and_not_recorded(
    ingest: httpx.AsyncClient, kind: str
) -> None:
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    response = await ingest.post(url, json=not_a_message(kind, update_id, chat_id), headers=secret)
    assert (response.status_code, response.content) == (200, b"")
    # Had it been kept as a message waiting for the contact, the contact would bring it along.
    phone = f"7701{random.randint(10**6, 10**7 - 1)}"
    contact = telegram_update(update_id + 1, chat_id, contact={"phone_number": phone, "user_id": chat_id})
    shared = await ingest.post(url, json=contact, headers=secret)
    assert shared.status_code == 202, shared.text
    lead = (await ingest.get(f"/v1/leads/{shared.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["phone"] == f"+{phone}"
    assert [h for h in lead["history"] if h["type"] == "chat_message"] == []


async def test_generic_chatbot_intent_becomes_that_activity(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    source = await create_source(ingest, channel="live_chat")
    url, headers = f"/v1/chatbots/{source['id']}/messages", {"X-Source-Key": source["key"]}
    conversation = uuid.uuid4().hex
    email = f"chat-{conversation[:8]}@example.az"
    body = {
        "conversation_id": conversation,
        "contact": {"email": email},
        "text": "Call me",
        "intent": "callback_request",
    }
    response = await ingest.post(url, json=body, headers=headers)
    assert response.status_code == 202, response.text
    lead_id = response.json()["lead_id"]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert events[1].data["activity_type"] == "callback_request"
    assert events[1].data["properties"]["text"] == "Call me"
    empty = await ingest.post(url, json={"conversation_id": conversation}, headers=headers)
    assert empty.status_code == 422
    other_source = await create_source(ingest, channel="live_chat")
    wrong = await ingest.post(url, json=body, headers={"X-Source-Key": other_source["key"]})
    assert wrong.status_code == 401


async def test_a_platforms_own_conversation_ids_are_taken_as_they_come(ingest: httpx.AsyncClient) -> None:
    """A WhatsApp chat's id (`77010000000@c.us`) or a Viber one in base64 was refused (422):
    a bridge had to invent ids of its own and keep them. Spaces and other punctuation still are."""
    source = await create_source(ingest, channel="live_chat")
    url, headers = f"/v1/chatbots/{source['id']}/messages", {"X-Source-Key": source["key"]}
    tail = uuid.uuid4().hex[:8]
    for conversation, message in (
        (f"7701{int(tail, 16) % 10**7:07d}@c.us", f"false_7701@c.us_3EB0{tail}"),
        (f"01234{tail}A+/==", f"viber:{tail}"),
        (f"instagram:1784{int(tail, 16)}", f"mid.{tail}=="),
    ):
        body = {"conversation_id": conversation, "message_id": message, "text": "Сәлеметсіз бе"}
        answer = await ingest.post(url, json=body, headers=headers)
        assert answer.status_code == 202, (conversation, answer.text)
    for refused in ("two words", "semi;colon", "x" * 129, ""):
        answer = await ingest.post(url, json={"conversation_id": refused, "text": "hi"}, headers=headers)
        assert answer.status_code == 422, refused
        assert [e["field"] for e in answer.json()["errors"]] == ["conversation_id"]


NAME = "Aruzhan Nurlanqyzy"
UNTAKEABLE = {
    "date-before-year-1": ({"date": -99999999999999}, "message.date"),
    "date-after-9998": ({"date": 99999999999999}, "message.date"),
    "long-first-name": ({"contact": {"first_name": NAME * 12}}, "message.contact.first_name"),
    "long-phone": ({"contact": {"phone_number": "7" * 41}}, "message.contact.phone_number"),
    "date-before-telegram-began": ({"date": -1}, "message.date"),
    "date-too-large-for-an-integer": ({"date": 1e308}, "message.date"),
    "date-not-a-number": ({"date": float("nan")}, "message.date"),
    "nul-in-text": ({"text": "Сәлем\u0000"}, "message.text"),
    "nul-in-vcard": ({"contact": {"vcard": "BEGIN:VCARD\u0000"}}, "message.contact.vcard"),
}


@pytest.mark.parametrize(("change", "field"), UNTAKEABLE.values(), ids=UNTAKEABLE)
async def test_a_telegram_update_ingest_cannot_take_is_acknowledged_dropped_and_logged_by_field(
    ingest: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    """Telegram sends again any update not answered 2xx, and reads no answer's body: one that
    can never be taken is answered 200, recorded nowhere, and logged by field, without the
    person's name or phone."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    phone = f"7701{random.randint(10**6, 10**7 - 1)}"
    contact = {"phone_number": phone, "first_name": NAME, "user_id": chat_id, **change.get("contact", {})}
    update = telegram_update(update_id, chat_id, text="Сәлем", contact=contact)
    update["message"].update({k: v for k, v in change.items() if k != "contact"})  # type: ignore[union-attr]
    as_sent = json.dumps(update).encode()  # NaN as JavaScript writes it, which httpx would refuse
    with every_log_line() as written:
        answer = await ingest.post(
            url, content=as_sent, headers={**secret, "content-type": "application/json"}
        )
    assert (answer.status_code, answer.content) == (200, b""), answer.text
    logged = written.getvalue()
    assert f"telegram update {update_id} of source {source['id']} dropped: {field}:" in logged
    for personal in (*NAME.split(), phone, contact["phone_number"]):
        assert personal not in logged
    looked_up = await ingest.post(
        "/v1/activities", json={"type": "page_view", "phone": phone}, headers={"X-Source-Key": source["key"]}
    )
    lead = (await ingest.get(f"/v1/leads/{looked_up.json()['lead_id']}", headers=ADMIN)).json()
    assert [h["type"] for h in lead["history"]] == ["page_view"], "the update made no lead before this"


@pytest.mark.parametrize(
    ("body", "logged"),
    [
        ([], "telegram update ? of source {source} dropped: body: Input should be a valid dictionary"),
        (
            {"message": {"text": "hi"}},
            "telegram update ? of source {source} dropped: update_id: Field required",
        ),
        ({"update_id": 5, "message": "hi"}, "telegram update 5 of source {source} dropped: message: Input"),
    ],
    ids=["not-an-object", "no-update-id", "message-not-an-object"],
)
async def test_a_body_that_is_no_telegram_update_is_dropped_too(
    ingest: httpx.AsyncClient, body: object, logged: str
) -> None:
    """Behind the secret only Telegram posts, and it would send a refused body for ever."""
    source = await create_source(ingest, channel="chatbot")
    secret = await telegram_secret(ingest, source)
    with every_log_line() as written:
        answer = await ingest.post(f"/v1/chatbots/{source['id']}/telegram", json=body, headers=secret)
    assert (answer.status_code, answer.content) == (200, b""), answer.text
    assert logged.format(source=source["id"]) in written.getvalue()


async def test_a_reused_id_is_refused_naming_the_id_the_client_sent(ingest: httpx.AsyncClient) -> None:
    """A chat's `message_id` (or an activity's `event_id`) stands for an Idempotency-Key: used
    again for something else, the 422 names it, not a header the client never sent."""
    source = await create_source(ingest, channel="live_chat")
    headers = {"X-Source-Key": source["key"]}
    url, conversation = f"/v1/chatbots/{source['id']}/messages", uuid.uuid4().hex
    first = {"conversation_id": conversation, "message_id": "m1", "text": "Hello"}
    assert (await ingest.post(url, json=first, headers=headers)).status_code == 202
    reused = await ingest.post(url, json={**first, "text": "Something else"}, headers=headers)
    assert refused_fields(reused) == ["message_id"] and reused.json()["title"] == "message_id reused"

    activity = {"email": f"{conversation[:8]}@example.kz", "type": "page_view", "event_id": "e1"}
    assert (await ingest.post("/v1/activities", json=activity, headers=headers)).status_code == 202
    other = {**activity, "type": "download"}
    assert refused_fields(await ingest.post("/v1/activities", json=other, headers=headers)) == ["event_id"]
    keyed = {**headers, "Idempotency-Key": "e1"}
    assert (await ingest.post("/v1/activities", json=activity, headers=keyed)).status_code == 202
    refused = await ingest.post("/v1/activities", json=other, headers=keyed)
    assert refused_fields(refused) == ["Idempotency-Key"]


async def test_a_telegram_update_id_reused_for_another_update_is_dropped(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="chatbot")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    update_id = random.randint(10**6, 10**8)
    first = await ingest.post(url, json=telegram_update(update_id, 42, text="hi"), headers=secret)
    assert first.status_code == 202, first.text
    with every_log_line() as written:
        other = await ingest.post(url, json=telegram_update(update_id, 42, text="bye"), headers=secret)
    assert (other.status_code, other.content) == (200, b"")
    assert f"telegram update {update_id} of source {source['id']} dropped: update_id" in written.getvalue()


@pytest.mark.parametrize(
    ("region", "number"), [("KZ", "994501234567"), ("AZ", "77011234567"), ("KZ", "79161234567")]
)
async def test_a_telegram_contact_from_another_country_makes_its_lead(
    ingest: httpx.AsyncClient, region: str, number: str
) -> None:
    """Telegram sends the contact's number in full, its country code first, often without the
    "+": read in the source's region, an Azerbaijani number on a Kazakh bot's source was "not a
    valid phone number", answered 200 to Telegram, and the person never became a lead (found by a
    review)."""
    source = await create_source(ingest, channel="chatbot", default_region=region)
    url, secret = f"/v1/chatbots/{source['id']}/telegram", await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    phone = number[:-4] + f"{random.randint(0, 9999):04d}"
    card = {"phone_number": phone, "first_name": "Leyla", "user_id": chat_id}
    shared = await ingest.post(url, json=telegram_update(update_id, chat_id, contact=card), headers=secret)
    assert shared.status_code == 202 and shared.json()["lead_id"] is not None, shared.text
    lead = (await ingest.get(f"/v1/leads/{shared.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["phone"] == f"+{phone}"


async def test_in_a_telegram_group_each_person_is_a_conversation_of_their_own(
    ingest: httpx.AsyncClient,
) -> None:
    """A bot in a group: the conversation was the chat, so what Bolat wrote went on the lead of
    Aigul, who had shared her contact (his "100 штук срочно" could make her hot), and once he
    shared his, her messages went on his lead (found by a review)."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url, secret = f"/v1/chatbots/{source['id']}/telegram", await telegram_secret(ingest, source)
    group, update_id = -(10**12) - random.randint(1, 10**9), random.randint(10**6, 10**8)
    aigul, bolat = random.randint(10**8, 10**9), random.randint(10**8, 10**9)

    def said(update: int, sender: int, **message: object) -> dict[str, object]:
        body = telegram_update(update, sender, **message)
        body["message"]["chat"] = {"id": group, "type": "supergroup", "title": "Qazaq Trade"}  # type: ignore[index]
        return body

    card = {
        "phone_number": f"7701{random.randint(10**6, 10**7 - 1)}",
        "first_name": "Айгүл",
        "user_id": aigul,
    }
    hers = await ingest.post(url, json=said(update_id, aigul, contact=card), headers=secret)
    his = await ingest.post(
        url, json=said(update_id + 1, bolat, text="Мне нужно 100 штук срочно"), headers=secret
    )
    assert hers.json()["lead_id"] is not None and his.json()["lead_id"] is None, (hers.text, his.text)
    lead = (await ingest.get(f"/v1/leads/{hers.json()['lead_id']}", headers=ADMIN)).json()
    assert [h for h in lead["history"] if h["type"] == "chat_message"] == []


async def test_the_caption_of_a_photo_sent_to_the_bot_is_what_the_person_said(
    ingest: httpx.AsyncClient,
) -> None:
    """A photo of the item with "Сколько стоит? Перезвоните" under it was dropped whole: only
    `text` was read, and a photo's words are its `caption` (found by a review)."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url, secret = f"/v1/chatbots/{source['id']}/telegram", await telegram_secret(ingest, source)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    card = {
        "phone_number": f"7701{random.randint(10**6, 10**7 - 1)}",
        "first_name": "Айгүл",
        "user_id": chat_id,
    }
    shared = await ingest.post(url, json=telegram_update(update_id, chat_id, contact=card), headers=secret)
    photo = [{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90, "height": 67, "file_size": 1263}]
    sent = telegram_update(update_id + 1, chat_id, photo=photo, caption="Сколько стоит? Перезвоните")
    answered = await ingest.post(url, json=sent, headers=secret)
    assert answered.json()["lead_id"] == shared.json()["lead_id"], answered.text
    lead = (await ingest.get(f"/v1/leads/{shared.json()['lead_id']}", headers=ADMIN)).json()
    assert [h["properties"]["text"] for h in lead["history"] if h["type"] == "chat_message"] == [
        "Сколько стоит? Перезвоните"
    ]
