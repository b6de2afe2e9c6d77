"""Telegram's webhook: the Bot API's Update read into the generic shape of a chat message
(`services.ingest.chatbots`), with the sender's own contact card, or a contact they wrote in
their own words, and their language."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError

from services.ingest.chatbots import ChatContact, ChatMessage, written_contact
from services.ingest.history import refuse_future
from services.ingest.models import Source
from shared.http import InvalidInput, field_name
from shared.inputs import StorableInput
from shared.languages import Language, choose, language_code
from shared.times import in_utc

TELEGRAM_BEGAN = datetime(2013, 8, 14, tzinfo=UTC)
"""Telegram dates every message itself: one dated before Telegram existed is corrupt or forged."""

# --- Telegram Bot API (the fields we read; everything else in an Update is ignored) ---


class TelegramUser(StorableInput):
    id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class TelegramContact(StorableInput):
    phone_number: str
    first_name: str = ""
    last_name: str | None = None
    user_id: int | None = None


class TelegramChat(StorableInput):
    id: int
    type: str = "private"


class TelegramMessage(StorableInput):
    message_id: int
    date: int
    chat: TelegramChat
    from_: TelegramUser | None = Field(None, alias="from")
    text: str | None = None
    caption: str | None = None  # a photo's, a document's or a voice message's words
    contact: TelegramContact | None = None
    # A forwarded message's origin: `forward_origin` since Bot API 7.0, the others before it.
    forward_origin: Any = None
    forward_from: Any = None
    forward_from_chat: Any = None
    forward_sender_name: Any = None
    forward_date: Any = None

    @property
    def words(self) -> str | None:
        return self.text or self.caption

    @property
    def forwarded(self) -> bool:
        """Whether the message is someone else's, forwarded: its words are not the sender's."""
        origins = (self.forward_origin, self.forward_from, self.forward_from_chat, self.forward_sender_name)
        return any(origin is not None for origin in (*origins, self.forward_date))


class TelegramUpdate(StorableInput):
    update_id: int
    message: TelegramMessage | None = None


# --- the generic chatbot shape ---


# Where the generic shape's fields come from in a Telegram Update, to name them in a refusal.
TELEGRAM_FIELDS = {
    "phone": "message.contact.phone_number",
    "first_name": "message.contact.first_name",
    "last_name": "message.contact.last_name",
    "occurred_at": "message.date",
}


def read_update(body: Any) -> TelegramUpdate:
    """The Update in a webhook's JSON body. Raises InvalidInput naming its fields for one that
    is none or cannot be stored: a `date` that is no integer (1e308, NaN), a U+0000 in any text."""
    try:
        return TelegramUpdate.model_validate(body)
    except ValidationError as error:  # its text quotes the input: only the fields go on
        raise InvalidInput([(field_name(tuple(e["loc"])), e["msg"]) for e in error.errors()]) from None


def update_id_of(body: Any) -> int | str:
    """The `update_id` of a webhook's body, to name it in a log line; "?" when it has none."""
    update_id = body.get("update_id") if isinstance(body, dict) else None
    return update_id if type(update_id) is int else "?"  # not a bool, nor text the sender wrote


def from_telegram(update: TelegramUpdate, now: datetime) -> ChatMessage | None:
    """The generic shape of a Telegram update, or None for updates that are not messages.
    Raises InvalidInput naming the Update's fields (`message.date`, `message.contact.*`) for
    one ingest cannot take: a date before Telegram began or a day ahead of `now`, a name too long."""
    message = update.message
    if message is None or (not _own(message) and not message.words):
        return None  # not a message, or only someone else's card: nothing to record
    sent_at = _sent_at(message.date, now)
    try:
        contact = None
        if message.contact is not None and _own(message):
            contact = ChatContact(
                phone=_international(message.contact.phone_number),
                first_name=message.contact.first_name.strip() or None,
                last_name=(message.contact.last_name or "").strip() or None,
                language=_language_of(message),
            )
        return ChatMessage(
            conversation_id=_conversation_of(message),
            message_id=str(message.message_id),
            contact=contact,
            text=message.words[:5000] if message.words else None,
            occurred_at=sent_at,
        )
    except ValidationError as error:  # its text quotes the input: only the fields go on
        raise InvalidInput(
            [(telegram_field(field_name(tuple(e["loc"]))), e["msg"]) for e in error.errors()]
        ) from None


def telegram_field(name: str) -> str:
    """The Telegram Update's name for a field of the generic shape (or of the lead it makes)."""
    return TELEGRAM_FIELDS.get(name.removeprefix("contact."), name)


def _sent_at(date: int, now: datetime) -> datetime:
    try:
        sent_at = in_utc(datetime.fromtimestamp(date, UTC))
    except (ValueError, OverflowError, OSError):
        raise InvalidInput([("message.date", "is not a Unix time in years 1 to 9998")]) from None
    if sent_at < TELEGRAM_BEGAN:
        raise InvalidInput([("message.date", f"is before Telegram began ({TELEGRAM_BEGAN:%Y-%m-%d})")])
    refuse_future(sent_at, now, "message.date")
    return sent_at


def _conversation_of(message: TelegramMessage) -> str:
    """The chat, or in a group the chat and its sender: each person there is a conversation of
    their own (one's words went on the lead of another, who had shared a contact)."""
    if message.chat.type == "private" or message.from_ is None:
        return str(message.chat.id)
    return f"{message.chat.id}.{message.from_.id}"


def _international(number: str) -> str:
    """Telegram gives a contact's number in full, its country code first, often without the "+"
    ("994501234567"): read in the source's region, one from another country was refused."""
    written = number.strip()
    return written if written.startswith("+") or not written[:1].isdigit() else f"+{written}"


def _language_of(message: TelegramMessage) -> str | None:
    """The sender's Telegram language ("az", "en-US") when it is one Leadflow speaks, else None:
    the lead then keeps its source's default, as before."""
    return language_code(message.from_.language_code) if message.from_ is not None else None


def _own(message: TelegramMessage) -> bool:
    """Whether a shared contact card is the sender's own: Telegram lets anyone share anyone's
    card, and a card that is not theirs must not make or change a lead."""
    return (
        message.from_ is not None
        and message.contact is not None
        and message.contact.user_id is not None
        and message.contact.user_id == message.from_.id
    )


def written_in_telegram(update: TelegramUpdate, region: str) -> ChatContact | None:
    """The contact the sender wrote in their own words (not in a forwarded message), with
    their Telegram names, as a card of their own would give them; None when they wrote none."""
    message = update.message
    if message is None or message.forwarded or message.contact is not None:
        return None
    sender = message.from_
    names = {"first_name": sender.first_name, "last_name": sender.last_name} if sender else {}
    return written_contact(message.words, region, {**names, "language": _language_of(message)})


@dataclass(frozen=True)
class BotChat:
    """A private chat the source's bot answers in, in the sender's language."""

    chat_id: int
    language: Language


def bot_chat(update: TelegramUpdate, source: Source) -> BotChat | None:
    """The chat the source's bot answers this update in: a private one (a group cannot be asked
    for a contact with a button), when the source has a bot token; else None, silent as before."""
    message = update.message
    if source.telegram_bot_token is None or message is None or message.chat.type != "private":
        return None
    return BotChat(message.chat.id, choose(_language_of(message), source.default_language))
