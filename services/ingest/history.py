"""What happens to a lead after its capture: activities, sales outcomes, consent, erasure."""

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import delete, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import consent_proofs, erased_contacts
from services.ingest.capture import Submission, capture
from services.ingest.history_schemas import MARKETING, ActivityIn, ConsentIn, LeadRef, OutcomeIn
from services.ingest.journal import know_key, record_activity, record_history, stage_event
from services.ingest.lead_lookup import find_matches
from services.ingest.models import ErasedLead, Lead, LeadHistory, Source
from services.ingest.normalize import normalize_contact
from services.ingest.telegram_bot import forget_replies
from shared.db import Database, defer_insert
from shared.events import (
    CONSENT_CHANGED,
    LEAD_ERASED,
    OUTCOME_RECORDED,
    ConsentChanged,
    LeadErased,
    OutcomeRecorded,
    utcnow,
)
from shared.http import InvalidInput
from shared.tombstones import forget_messages

LEADS = Lead.__table__  # type: ignore[attr-defined]
AHEAD = timedelta(hours=24)
"""How far in the future a date sent may be: clocks differ, but a date beyond it would keep a
lead hot for as long as it is ahead (scoring counts days since it)."""
TOO_FAR_AHEAD = "is more than 24 hours in the future"


def refuse_future(occurred_at: datetime | None, now: datetime, field: str = "occurred_at") -> None:
    """Raise InvalidInput naming `field` when `occurred_at` is more than AHEAD past `now`."""
    if occurred_at is not None and occurred_at > now + AHEAD:
        raise InvalidInput([(field, TOO_FAR_AHEAD)])


class NotInScope(Exception):
    """The source's key may not do this (its scope is `capture`)."""


class LeadNotFound(Exception):
    """No lead by this id (or, for `lead_id` None, by this email or phone), or it was erased."""

    def __init__(self, lead_id: UUID | None, erased: bool) -> None:
        super().__init__(f"lead {lead_id or 'of this contact'} {'was erased' if erased else 'not found'}")
        self.lead_id, self.erased = lead_id, erased


def contact_of(ref: LeadRef, region: str, source: Source) -> Submission | None:
    """The normalised contact points of a reference by email or phone (None for a lead id)."""
    if ref.lead_id is not None:
        return None
    email, phone, _ = normalize_contact(ref.email, ref.phone, region)
    return Submission(email, phone, {}, activity=None, vouched=source.scope == "history")


async def resolve_lead(
    session: AsyncSession, source: Source, ref: LeadRef, contact: Submission | None
) -> tuple[UUID, bool]:
    """The lead a reference names (by email or phone, created if nobody matches), and whether
    this key may act on it (`may_act_on`)."""
    if contact is not None:
        lead_id = (await capture(session, source, contact)).lead_id
    else:
        assert ref.lead_id is not None
        await require_lead(session, ref.lead_id)
        lead_id = ref.lead_id
    return lead_id, await may_act_on(session, source, lead_id)


async def may_act_on(session: AsyncSession, source: Source, lead_id: UUID) -> bool:
    """A key with the `capture` scope sits in a web page: it acts only on leads its own
    source brought in. For another's lead it is answered as for its own, and nothing is
    recorded, so that it cannot tell who is known (or make a stranger's lead hot)."""
    if source.scope == "history":
        return True
    owner = await session.scalar(select(LEADS.c.source_id).where(LEADS.c.id == lead_id))
    return owner is None or owner == source.id


async def require_lead(session: AsyncSession, lead_id: UUID) -> None:
    """The lead must exist; held (FOR SHARE) until the transaction ends, so an erasure under
    way commits first (then the lead is gone: 410), or waits and erases what this writes."""
    held = select(LEADS.c.seal_key).where(LEADS.c.id == lead_id).with_for_update(read=True)
    key = await session.scalar(held)
    if key is None:
        erased = await session.get(ErasedLead, lead_id) is not None
        raise LeadNotFound(lead_id, erased)
    know_key(session, lead_id, key)


async def record_activity_in(
    session: AsyncSession, source: Source, data: ActivityIn, contact: Submission | None
) -> tuple[UUID, UUID]:
    lead_id, allowed = await resolve_lead(session, source, data, contact)
    if not allowed:
        return uuid4(), lead_id  # answered alike, not recorded (`may_act_on`)
    entry = await record_activity(
        session, lead_id, uuid4(), data.type, source, data.properties, data.occurred_at
    )
    return entry, lead_id


async def record_outcome(session: AsyncSession, source: Source, data: OutcomeIn) -> tuple[UUID, UUID]:
    if source.scope != "history":
        raise NotInScope("sales outcomes need a key with the `history` scope")
    await require_lead(session, data.lead_id)
    details = data.model_dump(
        mode="json", include={"amount", "currency", "reason", "rep_id"}, exclude_none=True
    )
    entry, occurred_at = record_history(
        session,
        data.lead_id,
        kind="outcome",
        type=data.type,
        source=source,
        properties=details,
        occurred_at=data.occurred_at,
    )
    payload = OutcomeRecorded(outcome_id=entry, outcome=data.type, occurred_at=occurred_at, **details)
    await stage_event(session, OUTCOME_RECORDED, data.lead_id, uuid4(), payload)
    return entry, data.lead_id


async def record_consent(
    session: AsyncSession,
    source: Source,
    data: ConsentIn,
    contact: Submission | None,
    through: Source | None = None,
) -> tuple[UUID, UUID]:
    """Consent given or withdrawn; withdrawn for marketing on every channel is an unsubscribe.
    A withdrawal by an email or phone nobody has captures nobody: a person who said "stop" was
    made a lead for saying it, and counted in the funnel. A server's key is told (404); a web
    page's is answered alike and nothing is recorded (`may_act_on`).
    Its history entry keeps the proof (`consent_proofs.shown`): the source it was given
    `through` (`source_id`; else the key's), and the wording, the request's `text` or, for a
    grant, that source's `consent_text`."""
    if (
        not data.granted
        and contact is not None
        and not await find_matches(session, contact.email, contact.phone)
    ):
        if source.scope == "history":
            raise LeadNotFound(None, erased=False)
        return uuid4(), uuid4()
    lead_id, allowed = await resolve_lead(session, source, data, contact)
    if not allowed:
        return uuid4(), lead_id  # answered alike, not recorded (`may_act_on`)
    details = data.model_dump(include={"granted", "purpose", "channel"}, exclude_none=True)
    given = through or source
    wording = data.text if data.text is not None else (given.consent_text if data.granted else None)
    properties = {**details, **consent_proofs.shown(given, wording)}
    if given.id != source.id:  # the entry's own source is `given`: the key's is said apart
        properties.update(source_id=str(given.id), recorded_by_source_id=str(source.id))
    entry, occurred_at = record_history(
        session,
        lead_id,
        kind="consent",
        type="granted" if data.granted else "withdrawn",
        source=given,
        properties=properties,
    )
    if data.purpose in MARKETING and data.channel is None:
        await session.execute(
            update(LEADS)
            .where(LEADS.c.id == lead_id)
            .values(attributes=LEADS.c.attributes.op("||")({"consent": data.granted}), updated_at=utcnow())
        )
    payload = ConsentChanged(occurred_at=occurred_at, key_scope=source.scope, **details)
    await stage_event(session, CONSENT_CHANGED, lead_id, uuid4(), payload)
    return entry, lead_id


_FORGET_CONVERSATIONS = text(
    "DELETE FROM conversations WHERE lead_id = :id RETURNING source_id, conversation_id"
)


async def erase_lead(session: AsyncSession, lead_id: UUID) -> bool:
    """Delete the person's data here and tell every service to do the same: the lead, its
    history (and its email or phone in another lead's, `_FORGET_CONTACT_POINTS`), chatbot
    conversations and the Telegram bot's replies to them still waiting, spam posts carrying its
    email or phone, the digests of the requests whose saved answers name it or that other lead
    (the answers stay, `_FORGET_REQUESTS`), and the messages about it still held to publish.
    Erasing twice is harmless; False when no such lead ever existed.
    Its conversations go first, then the lead: a chat message holds its conversation, then
    the lead (as an activity holds the lead, `require_lead`), so each waits for the other in
    the same order, and what it wrote is deleted after it."""
    chats = (await session.execute(_FORGET_CONVERSATIONS, {"id": lead_id})).all()
    await forget_replies(session, [(chat.source_id, chat.conversation_id) for chat in chats])
    deleted = (
        await session.execute(
            delete(LEADS).where(LEADS.c.id == lead_id).returning(LEADS.c.email, LEADS.c.phone)
        )
    ).first()
    if deleted is None:
        return await session.get(ErasedLead, lead_id) is not None
    email, phone = deleted
    history = LeadHistory.__table__  # type: ignore[attr-defined]
    await session.execute(delete(history).where(history.c.lead_id == lead_id))
    contact = {"lead_id": str(lead_id), "email": email, "phone": phone}
    holding = set((await session.execute(_FORGET_CONTACT_POINTS, contact)).scalars())
    await session.execute(_FORGET_SPAM, {"email": email or "", "phone": (phone or "").lstrip("+")})
    patterns = [f"%{each}%" for each in {lead_id, *holding}]
    await session.execute(_FORGET_REQUESTS, {"patterns": patterns})
    await forget_messages(session, {lead_id})
    erased_at = utcnow()
    await erased_contacts.remember(session, email, phone, erased_at)  # an import running takes them not
    defer_insert(session, ErasedLead.__table__, {"lead_id": lead_id, "erased_at": erased_at})  # type: ignore[attr-defined]
    await stage_event(session, LEAD_ERASED, lead_id, uuid4(), LeadErased(erased_at=erased_at))
    return True


# A spam post keeps its email and phone normalised (`forms.spam_contact`); one kept before
# that has them only as typed: the email in any case, the phone in any format.
_FORGET_SPAM = text(
    "DELETE FROM spam_submissions WHERE (:email <> '' AND email = :email)"
    " OR (:phone <> '' AND phone = '+' || :phone)"
    " OR (:email <> '' AND lower(btrim(fields ->> 'email')) = :email)"
    " OR (:phone <> '' AND regexp_replace(coalesce(fields ->> 'phone', ''), '[^0-9]', '', 'g') = :phone)"
)
# Another lead's history keeps the email or phone of this person that a submission merged into
# it sent and it did not take (`capture._contact_points`): sent with its phone or email before
# this person was a lead, or this person's phone with its email (the conflict naming this lead,
# `capture._matched_lead`). They go, the phone's extension and the conflict; the leads that held
# them are returned.
_FORGET_CONTACT_POINTS = text(
    "UPDATE lead_history SET properties = properties - array_remove(ARRAY["
    " CASE WHEN (properties ->> 'email') = :email THEN 'email' END,"
    " CASE WHEN (properties ->> 'phone') = :phone"
    "  OR (properties -> 'conflicts' ->> 'phone') = :lead_id THEN 'phone' END,"
    " CASE WHEN (properties ->> 'phone') = :phone"
    "  OR (properties -> 'conflicts' ->> 'phone') = :lead_id THEN 'phone_extension' END,"
    " CASE WHEN (properties -> 'conflicts' ->> 'phone') = :lead_id THEN 'conflicts' END], NULL)"
    " WHERE (properties ->> 'email') = :email OR (properties ->> 'phone') = :phone"
    " OR (properties -> 'conflicts' ->> 'phone') = :lead_id"
    " RETURNING lead_id"
)
# A saved answer naming the person (a batch's names up to 500) is kept: deleted, a retry sent
# before the erasure ran again and made them a lead again, and merged the batch's others again.
# The digest of its request goes: it is made of what was sent, the person's email among it; so
# do those of a lead whose history held their email or phone (one of its requests sent it).
_FORGET_REQUESTS = text(
    "UPDATE idempotency_keys SET fingerprint = NULL"
    " WHERE fingerprint IS NOT NULL AND body::text LIKE ANY(CAST(:patterns AS text[]))"
)


async def lead_with_history(session: AsyncSession, lead_id: UUID) -> tuple[Lead, list[LeadHistory]] | None:
    lead = await session.get(Lead, lead_id)
    if lead is None:
        return None
    history = LeadHistory.__table__  # type: ignore[attr-defined]
    rows = await session.execute(
        select(history).where(history.c.lead_id == lead_id).order_by(history.c.occurred_at).limit(500)
    )
    return lead, [LeadHistory(**row._mapping) for row in rows]


async def seal_keys(db: Database, lead_ids: list[UUID]) -> dict[UUID, bytes]:
    """The keys the leads' personal data in events is sealed with (none for erased leads).
    Asked for with each batch of scoring, the hand-off lane and follow-up: a plain read."""
    rows = await db.read(_SEAL_KEYS, lead_ids)
    return {row["id"]: row["seal_key"] for row in rows}


_SEAL_KEYS = "SELECT id, seal_key FROM leads WHERE id = ANY($1::uuid[])"
