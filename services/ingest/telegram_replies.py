"""What the company's Telegram bot says back to a person who writes to it: while no phone or
email is known for the chat, it asks for one (at most once a day) with a button that shares
the person's own contact; once one arrives, it thanks them. Pure, no I/O."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.ingest.models import Conversation
from shared.languages import Language, say

ASK_AGAIN_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Reply:
    """A sendMessage to one chat: its body as the Bot API takes it."""

    chat_id: int
    body: dict[str, Any]


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
    return Reply(chat_id, body)
