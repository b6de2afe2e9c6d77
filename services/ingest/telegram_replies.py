"""What the company's Telegram bot says back to a person who writes to it: while no phone or
email is known for the chat, it asks for one (at most once a day) with a button that shares
the person's own contact; once one arrives, it thanks them. And when a reply the Bot API did
not take is tried again (`next_try`). Pure, no I/O."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.ingest.models import Conversation
from shared.languages import Language, say

ASK_AGAIN_AFTER = timedelta(days=1)
RETRY_SCHEDULE = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 3 * 3600.0, 6 * 3600.0)
"""Seconds before each try again of a reply that failed (±10 % jitter): at most 9 tries in all."""
GIVE_UP_AFTER = ASK_AGAIN_AFTER
"""A reply this old is not sent: the person wrote a day ago, and is asked again when they next do."""


@dataclass(frozen=True)
class Reply:
    """A sendMessage to one chat: its body as the Bot API takes it."""

    chat_id: int
    body: dict[str, Any]
    thanks: bool = False  # the thanks for a contact: the chat's asks still waiting are moot


def reply_due(
    conversation: Conversation, had_lead: bool, chat_id: int, language: Language, now: datetime
) -> Reply | None:
    """The reply to a message just applied to `conversation` (which `had_lead` before it): the
    thanks when it brought the chat its lead; the ask for a contact when the chat has none and
    was not asked within `ASK_AGAIN_AFTER` (noted on the conversation); else none."""
    if conversation.lead_id is not None:
        return thanks(chat_id, language) if not had_lead else None
    asked_at = conversation.asked_contact_at
    if asked_at is not None and now - asked_at < ASK_AGAIN_AFTER:
        return None
    conversation.asked_contact_at = now
    return ask_for_contact(chat_id, language)


def ask_for_contact(chat_id: int, language: Language) -> Reply:
    button = {"text": say("telegram_share_contact", language), "request_contact": True}
    keyboard = {"keyboard": [[button]], "resize_keyboard": True, "one_time_keyboard": True}
    return Reply(
        chat_id, {"chat_id": chat_id, "text": say("telegram_ask_contact", language), "reply_markup": keyboard}
    )


def thanks(chat_id: int, language: Language) -> Reply:
    body = {
        "chat_id": chat_id,
        "text": say("telegram_thanks", language),
        "reply_markup": {"remove_keyboard": True},
    }
    return Reply(chat_id, body, thanks=True)


def next_try(
    attempts: int,
    created_at: datetime,
    now: datetime,
    retry_after: float | None,
    rng: random.Random,
) -> datetime | None:
    """When to send again a reply whose `attempts`-th try just failed with an answer worth
    another (none, a 5xx, a 429): on `RETRY_SCHEDULE`, or later when the Bot API asked for a
    `retry_after` (seconds); None to give up, the schedule spent or the try past `GIVE_UP_AFTER`."""
    if attempts < 1 or attempts > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempts - 1] * rng.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    at = now + timedelta(seconds=delay)
    return at if at - created_at < GIVE_UP_AFTER else None


def worth_retrying(status: int | None) -> bool:
    """Whether a failed send may succeed if tried again: no answer (a timeout, a refused
    connection), a 5xx or Telegram's 429; not another 4xx (403: the person blocked the bot;
    401: the token is wrong; 400: the chat is gone), which would be refused again."""
    return status is None or status >= 500 or status == 429
