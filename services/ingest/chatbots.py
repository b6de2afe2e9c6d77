"""Chatbots: a conversation becomes a lead when the person shares a contact, or writes a phone
number or an email address in their own words; what they write becomes activities on it (held
back, bounded, until the contact arrives)."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field, StringConstraints, ValidationError, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.capture import Submission, capture
from services.ingest.history import may_act_on
from services.ingest.history_schemas import ActivityType
from services.ingest.journal import record_activity
from services.ingest.models import Conversation, Source
from services.ingest.schemas import Key, LeadIn, Long, Short
from services.ingest.written_contacts import contact_written_in
from shared.events import utcnow
from shared.inputs import StorableInput
from shared.times import Instant

MAX_WAITING = 50
INTENTS = frozenset(ActivityType.__args__)  # type: ignore[attr-defined]


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
    conversation: Conversation | None = None,
) -> UUID | None:
    """Apply one chat message; returns the conversation's lead, if it has one yet. A contact
    the person `written` in the message counts as a shared one while the conversation has no
    lead: after that, a number they write may be anyone's, and stays in the text.
    `conversation`: the message's, when the caller opened it already (`open_conversation`)."""
    if conversation is None:
        conversation = await open_conversation(session, source.id, message.conversation_id)
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


async def open_conversation(session: AsyncSession, source_id: UUID, conversation_id: str) -> Conversation:
    """The conversation, created if new, locked for this transaction."""
    table = Conversation.__table__  # type: ignore[attr-defined]
    await session.execute(
        insert(table).values(source_id=source_id, conversation_id=conversation_id).on_conflict_do_nothing()
    )
    found = await session.get(Conversation, (source_id, conversation_id), with_for_update=True)
    assert found is not None
    return found
