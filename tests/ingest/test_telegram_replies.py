"""Telegram: the source's bot answers a person who writes with no phone or email yet, asking for
their contact with a button, and thanks them when it comes (found by a marketers' review: the
bot never said a word, and most chats never became a lead). The Bot API is a real HTTP server
on localhost recording the sendMessage bodies."""

import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.embedded import free_port
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import create_source
from tests.ingest.conftest import ingest_db
from tests.ingest.test_chatbots import telegram_secret, telegram_update
from tests.receiver import Receiver, webhook_receiver

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the messages are dated 2026-11-18
REPLIES = "leadflow_ingest_telegram_replies_total"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def bot_api() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def ingest(servers: Servers, bot_api: Receiver, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        IngestSettings, rate_limit_per_ip="", telegram_api_url=bot_api.url, telegram_retry_poll_seconds=0.05
    )
    async with running(create_app(settings, clock=clock)) as client:
        yield client


def new_bot_token() -> str:
    return f"{random.randint(10**8, 10**10)}:AAH{''.join(random.choices('abcdefXYZ0123456789_-', k=32))}"


async def bot_source(ingest: httpx.AsyncClient, token: str | None = None, **fields: Any) -> dict[str, Any]:
    """A Telegram source, its webhook secret header under "secret" and its bot's token."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ", **fields)
    source["secret"] = await telegram_secret(ingest, source)
    source["token"] = token or new_bot_token()
    given = await ingest.put(
        f"/v1/sources/{source['id']}/telegram-bot-token",
        json={"telegram_bot_token": source["token"]},
        headers=ADMIN,
    )
    assert given.status_code == 200, given.text
    return source


async def write(
    ingest: httpx.AsyncClient, source: dict[str, Any], chat_id: int, **message: Any
) -> httpx.Response:
    language_code = message.pop("language_code", None)
    update = telegram_update(random.randint(10**6, 10**9), chat_id, **message)
    sender = update["message"]["from"]  # type: ignore[index]
    sender["language_code"] = language_code or sender["language_code"]
    answered = await ingest.post(
        f"/v1/chatbots/{source['id']}/telegram", json=update, headers=source["secret"]
    )
    assert answered.status_code in (200, 202), answered.text
    return answered


def sent_to(bot_api: Receiver, source: dict[str, Any], chat_id: int) -> list[dict[str, Any]]:
    """The sendMessage bodies the Bot API took from this source's bot for this chat."""
    path = f"/hook/bot{source['token']}/sendMessage"
    bodies = [json.loads(r.body) for r in bot_api.received() if r.path == path]
    return [body for body in bodies if body["chat_id"] == chat_id]


def asks(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bodies if "keyboard" in b.get("reply_markup", {})]


def new_chat() -> int:
    return random.randint(10**8, 10**9)


def own_card(chat_id: int) -> dict[str, Any]:
    return {
        "phone_number": f"7701{random.randint(10**6, 10**7 - 1)}",
        "first_name": "Айгүл",
        "user_id": chat_id,
    }


@pytest.mark.parametrize(
    ("language_code", "words", "button"),
    [
        ("az", "Təşəkkür edirik", "Telefon nömrəmi paylaşmaq"),
        ("kk", "рақмет", "Телефон нөміріммен бөлісу"),
        ("en-GB", "Thank you", "Share my phone number"),
        ("de", "Спасибо", "Поделиться номером телефона"),  # not ours: the source's language
    ],
)
async def test_a_first_message_is_answered_once_asking_for_the_contact_in_the_persons_language(
    ingest: httpx.AsyncClient, bot_api: Receiver, language_code: str, words: str, button: str
) -> None:
    source = await bot_source(ingest, default_language="ru")
    chat_id = new_chat()

    first = await write(
        ingest, source, chat_id, text="Здравствуйте, сколько стоит доставка?", language_code=language_code
    )
    assert first.json()["lead_id"] is None
    [ask] = await eventually(lambda: sent_to(bot_api, source, chat_id))
    assert words.lower() in ask["text"].lower()
    assert ask["reply_markup"]["keyboard"] == [[{"text": button, "request_contact": True}]]
    assert ask["reply_markup"]["one_time_keyboard"] is True

    await write(ingest, source, chat_id, text="Алло?", language_code=language_code)
    await write(ingest, source, chat_id, contact=own_card(chat_id), language_code=language_code)
    bodies = await eventually(
        lambda: [b for b in sent_to(bot_api, source, chat_id) if "remove_keyboard" in str(b)]
    )
    assert len(asks(sent_to(bot_api, source, chat_id))) == 1, (
        "the second message soon after is not asked again"
    )
    assert bodies, "the contact is thanked"


async def test_a_shared_own_contact_makes_the_lead_and_is_thanked(
    ingest: httpx.AsyncClient, bot_api: Receiver
) -> None:
    source = await bot_source(ingest)
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    await eventually(lambda: asks(sent_to(bot_api, source, chat_id)))

    shared = await write(ingest, source, chat_id, contact=own_card(chat_id))
    assert shared.json()["lead_id"] is not None
    thanks = await eventually(lambda: [b for b in sent_to(bot_api, source, chat_id) if b not in asks([b])])
    assert thanks == [
        {
            "chat_id": chat_id,
            "text": "Рақмет! Менеджер жақын арада Сізбен хабарласады.",
            "reply_markup": {"remove_keyboard": True},
        }
    ]


async def test_a_typed_phone_makes_the_lead_and_is_thanked(
    ingest: httpx.AsyncClient, bot_api: Receiver
) -> None:
    source = await bot_source(ingest)
    chat_id = new_chat()
    typed = await write(ingest, source, chat_id, text=f"Позвоните: +7 701 {random.randint(100, 999)} 45 67")
    assert typed.json()["lead_id"] is not None
    [thanks] = await eventually(lambda: sent_to(bot_api, source, chat_id))
    assert thanks["reply_markup"] == {"remove_keyboard": True}
    await write(ingest, source, chat_id, text="А когда перезвоните?")
    await write(ingest, source, chat_id, contact=own_card(chat_id))  # a lead already: nothing to say
    other = new_chat()
    await write(ingest, source, other, text="Сәлем!")  # sent after, so it tells that nothing more is coming
    await eventually(lambda: sent_to(bot_api, source, other))
    assert len(sent_to(bot_api, source, chat_id)) == 1


async def test_someone_elses_contact_makes_no_lead_and_no_thanks(
    ingest: httpx.AsyncClient, bot_api: Receiver
) -> None:
    source = await bot_source(ingest)
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    await eventually(lambda: asks(sent_to(bot_api, source, chat_id)))

    card = {**own_card(chat_id), "user_id": chat_id + 1, "first_name": "Марат"}
    forwarded = await write(ingest, source, chat_id, contact=card)
    assert forwarded.status_code == 200, "someone else's card is nothing to record"
    later = await write(ingest, source, chat_id, text="Это мой друг")
    assert later.json()["lead_id"] is None, "no lead made of another's card"
    other = new_chat()
    await write(ingest, source, other, text="Сәлем!")
    await eventually(lambda: sent_to(bot_api, source, other))
    assert len(sent_to(bot_api, source, chat_id)) == 1, "only the ask: no thanks for another's card"


async def test_a_chat_is_asked_again_a_day_later(
    ingest: httpx.AsyncClient, bot_api: Receiver, clock: Clock
) -> None:
    source = await bot_source(ingest)
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    await eventually(lambda: asks(sent_to(bot_api, source, chat_id)))
    clock.now = NOW + timedelta(days=1, minutes=1)
    try:
        await write(ingest, source, chat_id, text="Сәлем, тағы да!")
        await eventually(lambda: len(asks(sent_to(bot_api, source, chat_id))) == 2)
    finally:
        clock.now = NOW


async def test_without_a_bot_token_the_bot_stays_silent(ingest: httpx.AsyncClient, bot_api: Receiver) -> None:
    silent = await bot_source(ingest)
    chat_id = new_chat()
    cleared = await ingest.delete(f"/v1/sources/{silent['id']}/telegram-bot-token", headers=ADMIN)
    assert cleared.status_code == 200 and cleared.json()["telegram_bot_token_set"] is False
    await write(ingest, silent, chat_id, text="Сәлем!")
    await write(ingest, silent, chat_id, contact=own_card(chat_id))

    speaking = await bot_source(ingest)
    await write(
        ingest, speaking, chat_id, text="Сәлем!"
    )  # sent after, so it tells that nothing more is coming
    await eventually(lambda: sent_to(bot_api, speaking, chat_id))
    assert sent_to(bot_api, silent, chat_id) == []


async def test_the_bot_token_is_never_shown_nor_logged(
    ingest: httpx.AsyncClient, bot_api: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = new_bot_token()
    source = await bot_source(ingest, token=token)
    assert source["telegram_bot_token_set"] is False  # as created, before the token
    shown = [
        await ingest.get(f"/v1/sources/{source['id']}", headers=ADMIN),
        await ingest.get("/v1/sources", params={"limit": 500}, headers=ADMIN),
        await ingest.put(
            f"/v1/sources/{source['id']}/telegram-bot-token",
            json={"telegram_bot_token": token},
            headers=ADMIN,
        ),
    ]
    assert all(r.status_code == 200 and token not in r.text and token[:-4] not in r.text for r in shown)
    assert (shown[0].json()["telegram_bot_token_set"], shown[0].json()["telegram_bot_token_ends"]) == (
        True,
        token[-4:],
    )

    refused = await ingest.put(
        f"/v1/sources/{source['id']}/telegram-bot-token",
        json={"telegram_bot_token": token + "/../x"},
        headers=ADMIN,
    )
    assert refused.status_code == 422 and "telegram_bot_token" in refused.text and token not in refused.text

    async with ingest_db(ingest).transaction() as session:
        stored = (
            await session.execute(
                text("SELECT telegram_bot_token FROM sources WHERE id = :id"), {"id": source["id"]}
            )
        ).scalar_one()
    assert token not in stored, "sealed at rest"

    bot_api.failing_path = f"/hook/bot{token}/sendMessage"  # the Bot API refuses this bot's sends
    try:
        chat_id = new_chat()
        await write(ingest, source, chat_id, text="Сәлем!")
        await eventually(lambda: "could not answer" in caplog.text)
    finally:
        bot_api.failing_path = None
    assert token not in caplog.text and token[:-4] not in caplog.text


async def test_with_the_bot_api_down_the_webhook_is_answered_and_the_lead_made(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = servers.settings(IngestSettings, rate_limit_per_ip="", telegram_api_url=nowhere)
    app = create_app(settings, clock=lambda: NOW)
    async with running(app) as ingest:
        source = await bot_source(ingest)
        chat_id = new_chat()
        hello = await write(ingest, source, chat_id, text="Сәлем!")
        assert hello.status_code == 202 and hello.json()["lead_id"] is None
        shared = await write(ingest, source, chat_id, contact=own_card(chat_id))
        assert shared.status_code == 202 and shared.json()["lead_id"] is not None
        registry = app.state.runtime.telemetry.registry
        replies = "leadflow_ingest_telegram_replies_total"
        failed = {"outcome": "failed"}
        assert await eventually(lambda: (registry.get_sample_value(replies, failed) or 0) >= 2)
        lead = await ingest.get(f"/v1/leads/{shared.json()['lead_id']}", headers=ADMIN)
        assert (
            lead.status_code == 200 and [h["type"] for h in lead.json()["history"]].count("chat_message") == 1
        )
    assert source["token"] not in caplog.text


@pytest.mark.parametrize(("secret_key", "status"), [(None, 409), ("k" * 32, 200)])
async def test_an_ingest_others_reach_takes_a_bot_token_only_with_a_sealing_key_of_its_own(
    servers: Servers, secret_key: str | None, status: int
) -> None:
    behind_a_proxy = servers.settings(IngestSettings, trusted_proxies="10.0.0.1", secret_key=secret_key)
    async with running(create_app(behind_a_proxy)) as ingest:
        source = await create_source(ingest, channel="chatbot")
        given = await ingest.put(
            f"/v1/sources/{source['id']}/telegram-bot-token",
            json={"telegram_bot_token": new_bot_token()},
            headers=ADMIN,
        )
        assert given.status_code == status, given.text
        shown = await ingest.get(f"/v1/sources/{source['id']}", headers=ADMIN)
    assert shown.json()["telegram_bot_token_set"] is (status == 200)
    if status == 409:
        assert given.headers["content-type"] == "application/problem+json"
        assert "LEADFLOW_SECRET_KEY" in given.json()["title"]


# --- a reply the Bot API did not take is sent again (found by a review: a timeout, a 5xx or a
# 429 lost the ask for good, and the person was never asked) ---


@pytest.fixture
def later(clock: Clock) -> Iterator[Clock]:
    """The module's clock, to move forward in a test; back at NOW after it."""
    yield clock
    clock.now = NOW


def bot_path(source: dict[str, Any]) -> str:
    return f"/hook/bot{source['token']}/sendMessage"


def counted(ingest: httpx.AsyncClient, outcome: str) -> float:
    registry = ingest._transport.app.state.runtime.telemetry.registry  # type: ignore[attr-defined]
    return float(registry.get_sample_value(REPLIES, {"outcome": outcome}) or 0)


async def kept(ingest: httpx.AsyncClient, source: dict[str, Any]) -> list[Any]:
    """The source's replies still kept to be sent (attempts, next_attempt_at, lease_until)."""
    async with ingest_db(ingest).transaction() as session:
        query = text(
            "SELECT attempts, next_attempt_at, lease_until FROM telegram_replies WHERE source_id = :id"
        )
        return list((await session.execute(query, {"id": source["id"]})).all())


async def settled(ingest: httpx.AsyncClient, source: dict[str, Any], clock: Clock) -> list[Any]:
    """The source's kept replies once none is being sent nor due at the clock's time."""

    async def waiting() -> tuple[list[Any]] | None:
        rows = await kept(ingest, source)
        done = all(r.lease_until is None and r.next_attempt_at > clock.now for r in rows)
        return (rows,) if done else None

    (rows,) = await eventually(waiting)
    return rows


async def test_a_reply_the_bot_api_failed_is_sent_again_with_a_backoff_and_only_until_it_is_taken(
    ingest: httpx.AsyncClient, bot_api: Receiver, later: Clock
) -> None:
    source = await bot_source(ingest)
    bot_api.by_path[bot_path(source)] = [503, 502]  # the Bot API fails twice, then takes it
    chat_id = new_chat()
    answered = await write(ingest, source, chat_id, text="Сәлем!")
    assert answered.status_code == 202, "the webhook is answered whatever becomes of the reply"
    await eventually(lambda: sent_to(bot_api, source, chat_id))
    [waiting] = await settled(ingest, source, later)
    assert waiting.attempts == 1
    assert timedelta(seconds=4) < waiting.next_attempt_at - NOW < timedelta(seconds=6), "5 s, ±10 %"

    later.now = NOW + timedelta(seconds=3)  # not due yet: nothing is sent
    assert [r.attempts for r in await settled(ingest, source, later)] == [1]
    later.now = NOW + timedelta(seconds=6)
    [waiting] = await settled(ingest, source, later)
    assert waiting.attempts == 2
    assert timedelta(seconds=26) < waiting.next_attempt_at - later.now < timedelta(seconds=34), "then 30 s"
    later.now = NOW + timedelta(minutes=1)
    assert await settled(ingest, source, later) == [], "taken at the third try: kept no more"
    assert len(sent_to(bot_api, source, chat_id)) == 3
    assert sent_to(bot_api, source, chat_id)[0] == sent_to(bot_api, source, chat_id)[2], "the same ask"

    later.now = NOW + timedelta(hours=12)  # never twice once taken
    other = new_chat()
    await write(ingest, source, other, text="Сәлем!")  # sent after, so it tells that nothing more is coming
    await eventually(lambda: sent_to(bot_api, source, other))
    assert await settled(ingest, source, later) == []
    assert len(sent_to(bot_api, source, chat_id)) == 3


async def test_a_429_is_sent_again_after_its_retry_after_and_one_of_more_than_a_day_given_up(
    ingest: httpx.AsyncClient, bot_api: Receiver, later: Clock
) -> None:
    flood = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 600"}
    bot_api.bodies[429] = json.dumps({**flood, "parameters": {"retry_after": 600}}).encode()
    try:
        source = await bot_source(ingest)
        bot_api.by_path[bot_path(source)] = [429]
        chat_id = new_chat()
        await write(ingest, source, chat_id, text="Сәлем!")
        [waiting] = await settled(ingest, source, later)
        assert timedelta(seconds=599) < waiting.next_attempt_at - NOW < timedelta(seconds=601), "as asked"
        later.now = NOW + timedelta(seconds=300)
        assert len(await settled(ingest, source, later)) == 1
        assert len(sent_to(bot_api, source, chat_id)) == 1, "not before the time it asked for"
        later.now = NOW + timedelta(seconds=601)
        assert await settled(ingest, source, later) == []
        assert len(sent_to(bot_api, source, chat_id)) == 2

        bot_api.bodies[429] = json.dumps({**flood, "parameters": {"retry_after": 90_000}}).encode()
        late = await bot_source(ingest)
        bot_api.by_path[bot_path(late)] = [429]
        given_up = counted(ingest, "given_up")
        await write(ingest, late, chat_id, text="Сәлем!")
        assert await settled(ingest, late, later) == [], "a reply a day old is pointless"
        assert counted(ingest, "given_up") == given_up + 1
    finally:
        bot_api.bodies.pop(429, None)


@pytest.mark.parametrize("status", [403, 401, 400])
async def test_a_refusal_other_than_a_429_is_not_tried_again(
    ingest: httpx.AsyncClient, bot_api: Receiver, later: Clock, status: int
) -> None:
    source = await bot_source(ingest)
    bot_api.by_path[bot_path(source)] = [status]  # 403: the person blocked the bot; 401: a wrong token
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    assert await settled(ingest, source, later) == []
    later.now = NOW + timedelta(hours=1)
    other = new_chat()
    await write(ingest, source, other, text="Сәлем!")
    await eventually(lambda: sent_to(bot_api, source, other))
    assert len(sent_to(bot_api, source, chat_id)) == 1


async def test_a_reply_that_keeps_failing_is_given_up_after_a_bounded_number_of_tries(
    ingest: httpx.AsyncClient, bot_api: Receiver, later: Clock
) -> None:
    source = await bot_source(ingest)
    bot_api.by_path[bot_path(source)] = [503] * 100
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    for hour in range(1, 25):
        if not await settled(ingest, source, later):
            break
        later.now = NOW + timedelta(hours=hour)
    assert await settled(ingest, source, later) == [], "given up within the day"
    assert len(sent_to(bot_api, source, chat_id)) == 9, "the first try and eight more"
    assert later.now - NOW < timedelta(hours=24)


async def test_a_thanks_drops_the_ask_still_waiting_and_an_erasure_the_thanks(
    ingest: httpx.AsyncClient, bot_api: Receiver, later: Clock
) -> None:
    source = await bot_source(ingest)
    bot_api.by_path[bot_path(source)] = [503]
    chat_id = new_chat()
    await write(ingest, source, chat_id, text="Сәлем!")
    assert len(await settled(ingest, source, later)) == 1, "the ask, to be sent again"
    await write(ingest, source, chat_id, contact=own_card(chat_id))
    [_, thanks] = await eventually(
        lambda: len(sent_to(bot_api, source, chat_id)) == 2 and sent_to(bot_api, source, chat_id)
    )
    assert thanks["reply_markup"] == {"remove_keyboard": True}
    later.now = NOW + timedelta(hours=1)
    assert await settled(ingest, source, later) == [], "the contact came: no ask after the thanks"
    assert len(sent_to(bot_api, source, chat_id)) == 2

    erased = new_chat()
    bot_api.by_path[bot_path(source)] = [503]
    shared = await write(ingest, source, erased, contact=own_card(erased))  # the thanks fails
    assert len(await settled(ingest, source, later)) == 1
    gone = await ingest.delete(f"/v1/leads/{shared.json()['lead_id']}", headers=ADMIN)
    assert gone.status_code in (200, 202, 204), gone.text
    assert await kept(ingest, source) == [], "nothing is sent to a person erased"


async def test_a_reply_kept_by_an_ingest_that_could_not_send_it_is_sent_by_the_next(
    servers: Servers, bot_api: Receiver
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # the Bot API out of reach
    down = servers.settings(IngestSettings, rate_limit_per_ip="", telegram_api_url=nowhere)
    async with running(create_app(down, clock=lambda: NOW)) as ingest:
        source = await bot_source(ingest)
        chat_id = new_chat()
        await write(ingest, source, chat_id, text="Сәлем!")
        assert len(await settled(ingest, source, Clock())) == 1
    up = servers.settings(
        IngestSettings, rate_limit_per_ip="", telegram_api_url=bot_api.url, telegram_retry_poll_seconds=0.05
    )
    async with running(create_app(up, clock=lambda: NOW + timedelta(minutes=1))):
        [ask] = await eventually(lambda: sent_to(bot_api, source, chat_id))
    assert ask["reply_markup"]["keyboard"][0][0]["request_contact"] is True
