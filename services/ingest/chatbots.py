"""Chatbots: a conversation becomes a lead when the person shares a contact, or writes a phone
number or an email address in their own words; what they write becomes activities on it (held
back, bounded, until the contact arrives)."""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field, StringConstraints, ValidationError, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.capture import Submission, capture
from services.ingest.history import may_act_on, refuse_future
from services.ingest.history_schemas import ActivityType
from services.ingest.journal import record_activity
from services.ingest.models import Conversation, Source
from services.ingest.schemas import Key, LeadIn, Long, Short
from services.ingest.written_contacts import contact_written_in
from shared.events import utcnow
from shared.http import InvalidInput, field_name
from shared.inputs import StorableInput
from shared.languages import language_code
from shared.times import Instant, in_utc

MAX_WAITING = 50
INTENTS = frozenset(ActivityType.__args__)  # type: ignore[attr-defined]
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


class ChatContact(StorableInput):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    first_name: Short | None = None
    last_name: Short | None = None
    language: Short | None = Field(
        None, description="The person's language (kk, ru, az or en): the lead's when it has none yet."
    )


# A platform's own ids as they come: WhatsApp's `77010000000@c.us`, a Viber id in base64
# (`01234567890A+/==`), `instagram:17841400000000000`; no spaces or other punctuation.
ChatId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-@:+/=]{1,128}$")]


class ChatMessage(StorableInput):
    """One message (or contact) from any chatbot platform."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: ChatId = Field(
        description="The platform's id of the conversation: letters, digits and _ . - @ : + / =, up to 128."
    )
    message_id: ChatId | None = Field(None, description="The platform's id; a retry is ignored.")
    contact: ChatContact | None = None
    text: Long | None = None
    intent: Key | None = Field(None, description="e.g. callback_request, price_request, demo_request")
    occurred_at: Instant | None = None

    @model_validator(mode="after")
    def _says_something(self) -> "ChatMessage":
        if self.contact is None and not self.text and not self.intent:
            raise ValueError("a message needs a contact, text or intent")
        return self


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


def written_contact(
    words: str | None, region: str, sender: dict[str, str | None] | None = None
) -> ChatContact | None:
    """The first phone number and email address in `words`, with what the platform tells of the
    `sender` (names, language) when it can be kept."""
    written = contact_written_in(words, region)
    if written is None:
        return None
    points = {"email": written.email, "phone": written.phone}
    kept = {k: v.strip() for k, v in (sender or {}).items() if v and v.strip()}
    try:
        return ChatContact.model_validate({**points, **kept})
    except ValidationError:  # something of the sender's it cannot keep: the contact points alone
        return ChatContact.model_validate(points)


def contact_lead(contact: ChatContact) -> LeadIn:
    return LeadIn(**contact.model_dump(exclude_none=True))


async def receive(
    session: AsyncSession,
    source: Source,
    message: ChatMessage,
    contact: Submission | None,
    written: Submission | None = None,
) -> UUID | None:
    """Apply one chat message; returns the conversation's lead, if it has one yet. A contact
    the person `written` in the message counts as a shared one while the conversation has no
    lead: after that, a number they write may be anyone's, and stays in the text."""
    conversation = await _conversation(session, source.id, message.conversation_id)
    if contact is None and conversation.lead_id is None:
        contact = written
    if contact is not None:
        captured = await capture(session, source, contact)
        if conversation.lead_id != captured.lead_id:
            conversation.lead_id = captured.lead_id
            for waiting in conversation.waiting:
                await _record(session, source, captured.lead_id, waiting)
            conversation.waiting = []
    said = _said(message)
    if said is not None:
        if conversation.lead_id is not None:
            await _record(session, source, conversation.lead_id, said)
        else:
            conversation.waiting = [*conversation.waiting, said][-MAX_WAITING:]
    conversation.updated_at = utcnow()  # the session tracks the loaded row; written at commit
    return conversation.lead_id


def _said(message: ChatMessage) -> dict[str, Any] | None:
    if not message.text and not message.intent:
        return None
    kind = message.intent if message.intent in INTENTS else "chat_message"
    properties: dict[str, Any] = {"conversation_id": message.conversation_id}
    if message.text:
        properties["text"] = message.text
    if message.intent:
        properties["intent"] = message.intent
    occurred_at = (message.occurred_at or utcnow()).isoformat()
    return {"type": kind, "properties": properties, "occurred_at": occurred_at}


async def _record(session: AsyncSession, source: Source, lead_id: UUID, said: dict[str, Any]) -> None:
    if not await may_act_on(session, source, lead_id):
        return  # another source's lead, to a `capture` key: answered alike, not recorded
    occurred_at = datetime.fromisoformat(said["occurred_at"])
    await record_activity(session, lead_id, uuid4(), said["type"], source, said["properties"], occurred_at)


async def _conversation(session: AsyncSession, source_id: UUID, conversation_id: str) -> Conversation:
    """The conversation, created if new, locked for this transaction."""
    table = Conversation.__table__  # type: ignore[attr-defined]
    await session.execute(
        insert(table).values(source_id=source_id, conversation_id=conversation_id).on_conflict_do_nothing()
    )
    found = await session.get(Conversation, (source_id, conversation_id), with_for_update=True)
    assert found is not None
    return found
