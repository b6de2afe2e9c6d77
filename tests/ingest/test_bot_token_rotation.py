"""Changing LEADFLOW_SECRET_KEY keeps every source's Telegram bot speaking: with the old key in
LEADFLOW_SECRET_KEY_PREVIOUS, ingest seals the bot tokens again with the new key as it starts,
after which the old key can go (as nurture does with its signing secrets)."""

import random
from typing import Any

from sqlalchemy import text

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.db import Database
from shared.sealing import SecretBox
from tests.conftest import Servers, eventually, running
from tests.ingest.test_telegram_replies import NOW, bot_source, new_chat, sent_to, write
from tests.receiver import webhook_receiver

OLD, NEW = "o" * 32, "n" * 32


def ingest_with(servers: Servers, api_url: str, **keys: Any) -> Any:
    settings = servers.settings(IngestSettings, rate_limit_per_ip="", telegram_api_url=api_url, **keys)
    return create_app(settings, clock=lambda: NOW)


async def opens_with_the_new_key(db: Database, source_id: str) -> bool:
    async with db.transaction() as session:
        query = text("SELECT telegram_bot_token FROM sources WHERE id = :id")
        stored: str = (await session.execute(query, {"id": source_id})).scalar_one()
    try:
        SecretBox(NEW).open(stored)
    except ValueError:
        return False
    return True


async def test_a_changed_sealing_key_keeps_the_bot_speaking_and_lets_the_old_key_go(servers: Servers) -> None:
    with webhook_receiver() as bot_api:
        async with running(ingest_with(servers, bot_api.url, secret_key=OLD)) as before:
            source = await bot_source(before)
        changed = ingest_with(servers, bot_api.url, secret_key=NEW, secret_key_previous=OLD)
        async with running(changed):
            db = changed.state.runtime.db
            await eventually(lambda: opens_with_the_new_key(db, source["id"]), timeout=20)
        async with running(ingest_with(servers, bot_api.url, secret_key=NEW)) as after:  # the old key gone
            chat_id = new_chat()
            answered = await write(after, source, chat_id, text=f"Сәлем! {random.randint(1, 99)}")
            assert answered.status_code == 202
            [ask] = await eventually(lambda: sent_to(bot_api, source, chat_id), timeout=20)
    assert ask["reply_markup"]["keyboard"][0][0]["request_contact"] is True
