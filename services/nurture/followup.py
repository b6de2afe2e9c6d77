"""Follow-up: leads enrolled in playbooks, their touches scheduled, and stopped at once by a
stage or temperature change (the new playbook starts), an unsubscribe or an erasure.
The caller owns the transaction."""

import logging
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture import said_already, suppression
from services.nurture.consent import HEARD, OPTED_IN_AGAIN, as_heard, with_consent
from services.nurture.models import (
    Assignment,
    FollowedLead,
    OccasionGreeting,
    PlaybookVersion,
    Touch,
    WebhookDelivery,
)
from services.nurture.playbooks import (
    TEMPLATES,
    Playbook,
    Playbooks,
    Templates,
    default_playbooks_text,
    plan,
)
from services.nurture.subscriptions import emit
from services.nurture.timing import CALL_TASK
from shared.db import among, defer_insert, driver_connection, upsert, write_deferred
from shared.documents import VersionedDocuments
from shared.events import (
    TOUCH_CANCELLED,
    TOUCH_SCHEDULED,
    Envelope,
    LeadClassified,
    TouchChanged,
    utcnow,
)
from shared.languages import Language, choose, language_of
from shared.paging import keyset

log = logging.getLogger(__name__)
LEADS = FollowedLead.__table__  # type: ignore[attr-defined]
TOUCHES = Touch.__table__  # type: ignore[attr-defined]
VERSIONS = PlaybookVersion.__table__  # type: ignore[attr-defined]


class PlaybookBook(VersionedDocuments[Playbooks]):
    """The versioned playbooks; the newest is active."""

    def __init__(self, initial_source: str | None = None) -> None:
        super().__init__(VERSIONS, "document", Playbooks, initial_source or default_playbooks_text())
        self._templates: dict[int, dict[str, Templates]] = {}  # a version never changes

    async def templates(self, session: AsyncSession, versions: set[int]) -> dict[int, dict[str, Templates]]:
        """The templates of these versions, each read once: a touch is sent with the texts of the
        version it was scheduled under. A version not stored, or whose templates do not read, is
        left out."""
        if missing := versions - set(self._templates):
            query = select(VERSIONS.c.version, VERSIONS.c.document["templates"]).where(
                VERSIONS.c.version.in_(missing)
            )
            for version, templates in await session.execute(query):
                try:
                    self._templates[version] = TEMPLATES.validate_python(templates)
                except ValidationError:
                    log.error("the templates of playbooks version %d do not read", version)
        return {version: self._templates[version] for version in versions if version in self._templates}


async def follow(session: AsyncSession, events: list[Envelope], book: PlaybookBook) -> None:
    """Keep each classified lead in the playbook that fits it now: a handful of statements
    for the whole run, whatever its size (a lead classified twice in it: the last one counts)."""
    active = await book.active(session)
    now = utcnow()
    newest = {event.lead_id: event for event in events}
    held = await _lock(session, list(newest))
    stayed: list[dict[str, Any]] = []
    moved: dict[str | None, list[dict[str, Any]]] = {}  # by the playbook they move to
    chosen: dict[str | None, Playbook | None] = {None: None}
    for lead_id, event in newest.items():
        classified = LeadClassified.model_validate(event.data)
        current, unsubscribed, heard, opted_in_again = held.get(lead_id, Held(None, False, None, False))
        copied = {**classified.lead, "temperature": classified.temperature, "stage": classified.stage}
        context = as_heard(copied, heard)
        if opted_in_again and not unsubscribed:  # their addresses, told now: written to again
            await suppression.forget(session, context)
        elif unsubscribed:  # an unsubscribe heard before these addresses outlives an erasure too
            await suppression.remember_addresses(session, context)
        playbook = active.value.select(classified.temperature, classified.stage, context.get("channel"))
        name = playbook.name if playbook else None
        row: dict[str, Any] = {"lead_id": lead_id, "context": context, "updated_at": now}
        if name == current or unsubscribed:
            stayed.append(row)
            continue
        chosen[name] = playbook
        enrolled = {"playbook": name, "playbook_version": active.version, "enrolled_at": now}
        moved.setdefault(name, []).append(row | enrolled)
    for name, rows in moved.items():
        await _cancel_all(
            session,
            [row["lead_id"] for row in rows],
            f"moved to playbook {name}" if name else "no playbook fits",
        )
    starting = [row["lead_id"] for name, rows in moved.items() if name for row in rows]
    sent = await said_already.templates_sent(session, starting)  # before the move: not again
    for name, rows in moved.items():
        if (playbook := chosen[name]) is not None:
            for row in rows:
                said = sent.get(row["lead_id"], set())
                await _schedule(session, newest[row["lead_id"]], playbook, active.version, now, said)
    await upsert(session, LEADS, ["lead_id"], stayed)
    await upsert(session, LEADS, ["lead_id"], [row for rows in moved.values() for row in rows])
    await write_deferred(session)  # the touches exist before any later handler of this run looks


EXPIRED = "no longer true when the lead's hours or weekly cap would let it go (the step's `within`)"
# A call task is "call now": not for what happened long before it was recorded (`for_a_rep`)
HISTORY = "history: what made the lead so happened long before it was recorded; no request to call now"


async def _schedule(
    session: AsyncSession,
    cause: Envelope,
    playbook: Playbook,
    version: int,
    now: datetime,
    said: Collection[str] = (),
) -> None:
    """Queue the playbook's touches for the lead, each announced as scheduled. A step true only
    for a while (`within`) counts from when scoring classified the lead, not from when this
    consumer heard of it: after a backlog, "our manager will call you within 15 minutes" an
    hour after the person asked is no longer true, and is cancelled as it is scheduled. So is a
    message the lead was already sent (`said`: `said_already`), and a call task of history."""
    classified_at, history = min(now, cause.occurred_at), bool(cause.data.get("history"))
    for index, step, due in plan(playbook, now):
        expires_at = classified_at + step.delay + step.expiry if step.expiry is not None else None
        expired = expires_at is not None and expires_at <= due
        if history and step.channel == CALL_TASK:
            dropped: str | None = HISTORY
        else:
            dropped = EXPIRED if expired else said_already.repeated(step, said)
        touch: dict[str, Any] = {
            "id": uuid4(),
            "lead_id": cause.lead_id,
            "correlation_id": cause.correlation_id,
            "playbook": playbook.name,
            "playbook_version": version,
            "step": index,
            "channel": step.channel,
            "template": step.template,
            "due_at": due,
            "expires_at": expires_at,
            "status": "cancelled" if dropped else "scheduled",
            "detail": dropped,
            "attempts": 0,
        }
        defer_insert(session, TOUCHES, touch)
        await emit(session, touch_event(TOUCH_SCHEDULED, Touch.model_construct(**touch)))
        if dropped:
            await emit(session, touch_event(TOUCH_CANCELLED, Touch.model_construct(**touch), dropped))


class Held(NamedTuple):
    playbook: str | None
    unsubscribed: bool
    heard: dict[str, bool] | None
    opted_in_again: bool


# A row for each lead not followed yet, so that every lead is locked: one a consent or an
# unsubscribe is inserting meanwhile is waited for, then read as it committed, not overwritten.
_FOLLOW_NEW = (
    "INSERT INTO followed_leads (lead_id) SELECT unnest($1::uuid[]) ORDER BY 1 ON CONFLICT DO NOTHING"
)


async def _lock(session: AsyncSession, lead_ids: list[UUID]) -> dict[UUID, Held]:
    """The leads' playbook, unsubscription and consent heard (with whether the person opted in
    again before nurture knew their addresses), locked for this transaction."""
    await (await driver_connection(session)).execute(_FOLLOW_NEW, lead_ids)
    rows = await session.execute(
        select(
            LEADS.c.lead_id,
            LEADS.c.playbook,
            LEADS.c.unsubscribed,
            LEADS.c.context[HEARD],
            LEADS.c.context[OPTED_IN_AGAIN],
        )
        .where(among(LEADS.c.lead_id, lead_ids))
        .order_by(LEADS.c.lead_id)
        .with_for_update()
    )
    return {row[0]: Held(row[1], row[2], row[3], row[4] is True) for row in rows}


def touch_event(
    kind: str, touch: Touch, reason: str | None = None, correlation: UUID | None = None
) -> Envelope:
    payload = TouchChanged(
        touch_id=touch.id,
        playbook=touch.playbook,
        step=touch.step,
        channel=touch.channel_used or touch.channel,
        step_channel=touch.channel,
        template=touch.template,
        due_at=touch.due_at,
        sent_at=touch.sent_at,
        reason=reason,
    )
    return Envelope.of(kind, touch.lead_id, correlation or touch.correlation_id, "nurture", payload)


async def cancel(session: AsyncSession, lead_id: UUID, reason: str) -> int:
    """Cancel everything still to be sent to the lead; returns how many. A touch being sent
    right now finishes (it has left); one whose sender died is cancelled when next claimed."""
    return await _cancel_all(session, [lead_id], reason)


async def _cancel_all(session: AsyncSession, lead_ids: list[UUID], reason: str) -> int:
    statement = (
        update(TOUCHES)
        .where(among(TOUCHES.c.lead_id, lead_ids), TOUCHES.c.status == "scheduled")
        .values(status="cancelled", detail=reason, lease_until=None)
        .returning(*TOUCHES.c)
    )
    rows = list(await session.execute(statement))
    for row in rows:
        await emit(session, touch_event(TOUCH_CANCELLED, Touch.model_construct(**row._mapping), reason))
    return len(rows)


async def unsubscribe(session: AsyncSession, lead_id: UUID, reason: str) -> int:
    """Stop everything to this person, now and later."""
    await session.execute(
        insert(LEADS)
        .values(lead_id=lead_id, unsubscribed=True, context={})
        .on_conflict_do_update(
            index_elements=["lead_id"], set_={"unsubscribed": True, "updated_at": func.now()}
        )
    )
    await suppression.remember(session, lead_id)  # and after an erasure, by their addresses
    return await cancel(session, lead_id, reason)


async def erase(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Erasure: nothing more is sent, and what nurture holds about the person goes."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    assignments = Assignment.__table__  # type: ignore[attr-defined]
    # The lead first: a greeting pass holding it is waited for, so that what it queued is seen
    # and deleted below.
    await session.execute(delete(LEADS).where(LEADS.c.lead_id.in_(lead_ids)))
    await session.execute(delete(TOUCHES).where(TOUCHES.c.lead_id.in_(lead_ids)))
    await session.execute(delete(assignments).where(assignments.c.lead_id.in_(lead_ids)))
    await session.execute(delete(deliveries).where(deliveries.c.lead_id.in_(lead_ids)))
    greetings = OccasionGreeting.__table__  # type: ignore[attr-defined]
    await session.execute(delete(greetings).where(greetings.c.lead_id.in_(lead_ids)))


async def record_consent(
    session: AsyncSession, lead_id: UUID, change: dict[str, Any], opted_in_again: bool = False
) -> None:
    """Keep a consent given or withdrawn for a channel on the lead, also one nurture does not
    follow yet (its first classification may come after this), apart from what a
    classification copies (`consent.HEARD`). `opted_in_again`: see `consent.OPTED_IN_AGAIN`."""
    marker = {OPTED_IN_AGAIN: True} if opted_in_again else {}
    kept = await session.execute(
        insert(LEADS)
        .values(lead_id=lead_id, context=with_consent({}, change) | marker)
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(LEADS.c.lead_id)
    )
    if kept.first() is None:  # followed already
        lead = await session.get(FollowedLead, lead_id, with_for_update=True)
        assert lead is not None
        lead.context = with_consent(lead.context, change) | marker
        session.add(lead)


async def resubscribe(session: AsyncSession, event: Envelope, book: PlaybookBook) -> None:
    """A consent given again for marketing (`POST /v1/consent`: the person's own new opt-in)
    undoes an unsubscribe: the playbook that fits the lead's last classification starts over.
    A capture's or a CRM's `consent` field does not: a sync sending its stored flag again
    would undo every unsubscribe. (It stayed unsubscribed for good, whatever they said.) So
    does it for an address unsubscribed before an erasure (`suppression`). Given through a
    web page's key (`capture`) it does not: anyone may send that key with anyone's address;
    the operator's own system records the person's wish with a `history` key."""
    lead = await session.get(FollowedLead, event.lead_id, with_for_update=True)
    held = {event.lead_id: lead} if lead is not None else {}
    vouched = event.data.get("key_scope") != "capture"
    unknown = lead is None or not suppression.addresses(lead.context)  # not classified yet
    if lead is None or not (lead.unsubscribed or await suppression.suppressed(session, held)):
        await record_consent(session, event.lead_id, event.data, opted_in_again=vouched and unknown)
        return
    if not vouched:
        log.warning("lead %s: a consent given by a web page's key does not undo an unsubscribe", lead.lead_id)
        return
    context = with_consent(lead.context, event.data) | ({OPTED_IN_AGAIN: True} if unknown else {})
    await suppression.forget(session, context)  # an address someone unsubscribed, erased since
    active = await book.active(session)
    playbook = active.value.select(context.get("temperature"), context.get("stage"), context.get("channel"))
    lead.context, lead.unsubscribed, lead.updated_at = context, False, utcnow()
    if playbook is not None and context.get("stage") is not None:
        lead.playbook, lead.playbook_version, lead.enrolled_at = playbook.name, active.version, utcnow()
        await _schedule(session, event, playbook, active.version, utcnow())
    session.add(lead)
    await write_deferred(session)


async def language_for(session: AsyncSession, lead_id: UUID, otherwise: Sequence[str] = ()) -> Language:
    """The language to write to the lead in; for a lead nurture does not know (erased, or never
    followed), the first of `otherwise` we write (a browser's), else English."""
    lead = await session.get(FollowedLead, lead_id)
    return language_of(lead.context) if lead is not None else choose(*otherwise)


TIMELINE_ORDER = (TOUCHES.c.due_at, TOUCHES.c.step, TOUCHES.c.id)  # a page's order: unique


async def timeline(session: AsyncSession, lead_id: UUID, cursor: str | None, limit: int) -> list[Touch]:
    """A page of the lead's touches, by when each is due (`shared.paging`)."""
    query = keyset(select(Touch).where(TOUCHES.c.lead_id == lead_id), TIMELINE_ORDER, cursor, limit)
    return list((await session.execute(query)).scalars())
