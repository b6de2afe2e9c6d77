"""Nurture's handling of classifications: a lead that turns hot, or reaches SQL, goes to one
rep at once, with an SLA to acknowledge it. Handlers take a session and never commit."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture import consent, followup
from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.hand_offs import OVER_STAGES, follow_classification, is_newer, is_over
from services.nurture.models import Assignment, Rep, WebhookDelivery
from services.nurture.routing import choose
from services.nurture.subscriptions import announce, classification_types, emit, origin_of
from services.nurture.webhooks import claim_at_birth
from shared import topics
from shared.consumer import Handler, Lane
from shared.db import defer_insert, defer_update
from shared.events import (
    CONSENT_CHANGED,
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CLASSIFIED,
    LEAD_ERASED,
    OUTCOME_RECORDED,
    Envelope,
    LeadAcknowledged,
    LeadAssigned,
    LeadClassified,
    OutcomeRecorded,
    for_a_rep,
    utcnow,
)
from shared.languages import language_of, say
from shared.observability import correlated
from shared.sealing import SecretBox

log = logging.getLogger(__name__)
REPS = Rep.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]


async def active_reps(session: AsyncSession, role: str = "rep") -> list[Rep]:
    """Active reps (or managers), locked for this transaction (their counters change as leads
    are given). Detached: `hand_over` writes their counters with the transaction's other rows."""
    statement = select(Rep).where(col(Rep.active), Rep.role == role).order_by(col(Rep.created_at))
    reps = list((await session.exec(statement.with_for_update())).all())
    for rep in reps:
        session.expunge(rep)
    return reps


async def held_hand_offs(session: AsyncSession, leads: set[UUID], lock: bool) -> dict[UUID, dict[str, Any]]:
    statement = select(ASSIGNMENTS).where(ASSIGNMENTS.c.lead_id.in_(leads))
    rows = await session.execute(statement.with_for_update() if lock else statement)
    return {row.lead_id: dict(row._mapping) for row in rows}


def wants_a_rep(classified: LeadClassified) -> bool:
    return for_a_rep(classified.temperature, classified.stage)


async def assign_leads(
    session: AsyncSession,
    events: list[Envelope],
    settings: NurtureSettings,
    now: datetime,
    look_first: bool = True,
) -> None:
    """Give each lead that turned hot or SQL to one matching rep at `now`, its SLA running
    from then, and queue the signed webhook that tells them. A lead already with a rep stays
    with them, its later classifications kept on the hand-off; new interest after a hand-off
    ended (lost, parked) hands it off again (see `hand_offs`). `look_first`:
    see whether they all have one before locking the reps (the main consumer, which the
    hand-off lane has usually been ahead of)."""
    given = [(event, LeadClassified.model_validate(event.data)) for event in events]
    reps, held = await _lock_for(session, given, look_first)
    fresh: set[UUID] = set()  # handed off here for the first time: their rows are inserted
    for event, classified in given:
        hand_off = held.get(event.lead_id)
        if hand_off is not None and not is_newer(event.occurred_at, hand_off):
            continue  # applied already (by the other consumer), or older than what was
        if hand_off is not None and not is_over(hand_off):
            follow_classification(hand_off, classified, event.occurred_at)
            if event.lead_id not in fresh:
                defer_update(session, ASSIGNMENTS, "lead_id", hand_off)
        elif reps is not None and wants_a_rep(classified):  # a new lead, or new interest after one ended
            if hand_off is None:
                fresh.add(event.lead_id)
            if (
                given_now := await _hand_off(session, event, classified, reps, settings, now, hand_off)
            ) is not None:
                held[event.lead_id] = given_now


async def stop_the_clocks(session: AsyncSession, events: list[Envelope]) -> None:
    """A sales outcome (accepted, meeting, proposal, won, lost...) recorded after a hand-off
        and before the rep pressed acknowledge means sales reached the lead: its SLA is met, even
        when scoring says nothing (an SQL lead accepted stays SQL), and the outcome stands for the
        acknowledgement (`lead.acknowledged` with `outcome`), so that metrics' SLA compliance
        counts it met too. The outcome's own date is when sales reached the lead (a CRM may record a
    call later); one dated before the hand-off (a lost lead since revived) does not count."""
    latest: dict[UUID, tuple[datetime, Envelope]] = {}
    for event in events:
        reached_at = OutcomeRecorded.model_validate(event.data).occurred_at  # as sales dated it
        if event.lead_id not in latest or reached_at > latest[event.lead_id][0]:
            latest[event.lead_id] = (reached_at, event)
    columns = ASSIGNMENTS.c
    for lead_id, (reached_at, outcome) in latest.items():
        reached = await session.execute(
            update(ASSIGNMENTS)
            .where(
                columns.lead_id == lead_id,
                columns.sla_due_at.is_not(None),
                columns.acknowledged_at.is_(None),
                columns.assigned_at < reached_at,
            )
            .values(sla_due_at=None, acknowledged_at=reached_at)
            .returning(columns.rep_id, columns.assigned_at, columns.correlation_id)
        )
        for rep_id, assigned_at, correlation_id in reached:
            acknowledged = LeadAcknowledged(
                rep_id=rep_id,
                acknowledged_at=reached_at,
                seconds_to_acknowledge=(reached_at - assigned_at).total_seconds(),
                outcome=outcome.data.get("outcome"),
            )
            event = Envelope.of(
                LEAD_ACKNOWLEDGED, lead_id, correlation_id, "nurture", acknowledged, outcome.id
            )
            await emit(session, event)


async def _lock_for(
    session: AsyncSession, given: list[tuple[Envelope, LeadClassified]], look_first: bool
) -> tuple[list[Rep] | None, dict[UUID, dict[str, Any]]]:
    """The active reps, locked, when a lead may need one (else None); and the leads' hand-offs,
    locked after them, now that no other hand-off can run."""
    leads = {event.lead_id for event, _ in given}
    if not look_first:
        return await active_reps(session), await held_hand_offs(session, leads, lock=True)
    held = await held_hand_offs(session, leads, lock=False)
    ending = {event.lead_id for event, c in given if c.stage in OVER_STAGES}  # maybe revived after
    if any(
        wants_a_rep(c) and (e.lead_id not in held or e.lead_id in ending or is_over(held[e.lead_id]))
        for e, c in given
    ):
        return await active_reps(session), await held_hand_offs(session, leads, lock=True)
    if not held:  # nobody holds these leads and none is for a rep: nothing is locked
        return None, {}
    return None, await held_hand_offs(session, leads, lock=True)


async def _hand_off(
    session: AsyncSession,
    event: Envelope,
    classified: LeadClassified,
    reps: list[Rep],
    settings: NurtureSettings,
    now: datetime,
    ended: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Hand the lead to a rep, for the first time or again after its last hand-off `ended`
    (then to the same rep while they are active)."""
    rep = next((r for r in reps if ended and r.id == ended["rep_id"]), None) or choose(reps, classified.lead)
    if rep is None:
        with correlated(event.correlation_id):
            log.warning("lead %s has no matching active rep to go to", event.lead_id)
        return None
    assert isinstance(rep, Rep)
    assignment: dict[str, Any] = {
        "lead_id": event.lead_id,
        "rep_id": rep.id,
        "correlation_id": event.correlation_id,
        "assigned_at": now,
        "sla_due_at": now + timedelta(seconds=settings.sla_seconds),
        "acknowledged_at": None,
        "escalations": 0,
        "tried_reps": [str(rep.id)],
        "lead": classified.model_dump(mode="json"),
        "classified_at": event.occurred_at,
    }
    if ended is None:
        defer_insert(session, ASSIGNMENTS, assignment)
    else:
        assignment = ended | assignment
        defer_update(session, ASSIGNMENTS, "lead_id", assignment)
    await hand_over(session, event, assignment["lead"], rep, assignment, settings, revived=ended is not None)
    return assignment


async def hand_over(
    session: AsyncSession,
    cause: Envelope,
    classified: dict[str, Any],
    rep: Rep,
    assignment: dict[str, Any],
    settings: NurtureSettings,
    escalated_from: UUID | None = None,
    revived: bool = False,
) -> None:
    """Count the lead against the rep, queue the webhook to the rep, publish `lead.assigned`."""
    now = assignment["assigned_at"]
    rep.last_assigned_at = now
    rep.assigned_total += 1
    counters = {"id": rep.id, "assigned_total": rep.assigned_total, "last_assigned_at": now}
    defer_update(session, REPS, "id", counters)
    lead_id = cause.lead_id
    acknowledge = f"{settings.public_url}/v1/leads/{lead_id}/acknowledge"
    person = classified.get("lead") or {}
    language = language_of(person)
    notice = say("rep_escalated" if escalated_from else "rep_new_hot_lead", language, **person)
    body = {
        "type": "lead.hot",
        "timestamp": now.isoformat(),
        "data": {
            **classified,
            "message": " ".join(notice.split()),  # for the rep, in the lead's language
            "language": language,
            "lead_id": str(lead_id),
            "correlation_id": str(cause.correlation_id),
            "rep_id": str(rep.id),
            "sla_due_at": assignment["sla_due_at"].isoformat(),
            "escalated_from": str(escalated_from) if escalated_from else None,
            "acknowledge": {
                "url": acknowledge,
                "body": {"rep_id": str(rep.id), "token": acknowledge_token(rep, lead_id, settings.box)},
            },
        },
    }
    queue_webhook(session, rep, lead_id, "lead.hot", body, now)
    assigned = LeadAssigned(
        rep_id=rep.id,
        temperature=classified["temperature"],
        stage=classified.get("stage"),
        assigned_at=now,
        sla_due_at=assignment["sla_due_at"],
        escalated_from=escalated_from,
        revived=revived or None,
    )
    await emit(session, cause.follow_up(LEAD_ASSIGNED, "nurture", assigned))
    with correlated(cause.correlation_id):
        log.info("lead %s assigned to rep %s", lead_id, rep.id)


def queue_webhook(
    session: AsyncSession, rep: Rep, lead_id: UUID, event_type: str, body: dict[str, Any], now: datetime
) -> None:
    delivery = {
        "id": uuid4(),
        "rep_id": rep.id,
        "lead_id": lead_id,
        "event_type": event_type,
        "url": rep.webhook_url,
        "origin": origin_of(rep.webhook_url),
        "endpoint_id": None,
        "body": json.dumps(body),
        "status": "pending",
        "attempts": 0,
        "lease_until": None,
        "next_attempt_at": now,
        "created_at": now,
    }
    claim_at_birth(session, delivery, rep.webhook_secret)
    defer_insert(session, WebhookDelivery.__table__, delivery)  # type: ignore[attr-defined]


async def tell_of_erasure(session: AsyncSession, events: list[Envelope], now: datetime) -> None:
    """Whoever was given the person must delete them too: every rep and manager a webhook
    about them was queued for (the hand-off, each escalation, the managers' breach notice),
    and the subscribers of `lead.erased` (queued after the deletions, which spare them). The
    hand-offs go first: an escalation committing meanwhile is waited for (it holds the row),
    and the webhook it queued is among those read next."""
    leads = {event.lead_id: event for event in events}
    assignments = Assignment.__table__  # type: ignore[attr-defined]
    given = await session.execute(
        delete(assignments)
        .where(assignments.c.lead_id.in_(leads))
        .returning(assignments.c.lead_id, assignments.c.lead)
    )
    languages = {lead_id: language_of((classified or {}).get("lead") or {}) for lead_id, classified in given}
    sent = await session.execute(
        select(WebhookDelivery.lead_id, WebhookDelivery.rep_id)
        .where(col(WebhookDelivery.lead_id).in_(leads), col(WebhookDelivery.rep_id).is_not(None))
        .distinct()
    )
    told = sorted(sent.all(), key=str)
    found = await session.exec(select(Rep).where(col(Rep.id).in_({rep_id for _, rep_id in told})))
    reps = {rep.id: rep for rep in found}
    for lead_id, rep_id in told:
        if rep_id not in reps:
            continue  # a rep deleted since
        language = languages.get(lead_id, language_of({}))
        data = {
            "lead_id": str(lead_id),
            "erased_at": leads[lead_id].data.get("erased_at"),
            "message": say("rep_erased", language, lead_id=lead_id),
            "language": language,
        }
        body = {"type": LEAD_ERASED, "timestamp": now.isoformat(), "data": data}
        queue_webhook(session, reps[rep_id], lead_id, LEAD_ERASED, body, now)
    for event in events:
        await announce(session, LEAD_ERASED, event, now)


def acknowledge_token(rep: Rep, lead_id: UUID, box: SecretBox) -> str:
    """Proof, for the acknowledge call, that the caller received this rep's webhook: an HMAC
    of the lead and rep under the rep's signing secret."""
    message = f"acknowledge.{lead_id}.{rep.id}".encode()
    digest = hmac.new(box.open(rep.webhook_secret).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hand_off_lane(settings: NurtureSettings) -> Lane:
    """A lead that turns hot or SQL goes to its rep from a consumer of its own, never behind the
    announcements and follow-up of cold leads (the main consumer assigns it again: a no-op)."""

    async def hand_off(session: AsyncSession, events: list[Envelope]) -> None:
        await assign_leads(session, events, settings, utcnow(), look_first=False)

    def wants(event: Envelope) -> bool:  # temperature and stage travel unsealed
        return for_a_rep(event.data.get("temperature"), event.data.get("stage"))

    return Lane([topics.LEAD_CLASSIFICATIONS], {LEAD_CLASSIFIED: hand_off}, wants, bell=topics.HOT_LEADS_BELL)


def event_handlers(settings: NurtureSettings, book: PlaybookBook) -> dict[str, Handler]:
    """Classifications: announce, hand hot and SQL leads to reps, keep follow-up in step.
    From ingest: a sales outcome meets the SLA; a withdrawn consent or an erasure stops
    everything at once."""

    async def on_classified(session: AsyncSession, events: list[Envelope]) -> None:
        for event in events:
            for event_type in classification_types(event.data):
                await announce(session, event_type, event)
        await followup.follow(session, events, book)
        # Last, so the reps stay locked only for the commit: the hand-off lane normally did
        # this already, and waits for no one.
        await assign_leads(session, events, settings, utcnow())

    async def on_consent(session: AsyncSession, events: list[Envelope]) -> None:
        for event in events:
            if consent.withdrawn_everywhere(event.data):
                await followup.unsubscribe(session, event.lead_id, "consent withdrawn")
            else:
                await followup.record_consent(session, event.lead_id, event.data)

    async def on_erased(session: AsyncSession, events: list[Envelope]) -> None:
        await tell_of_erasure(session, events, utcnow())
        await followup.erase(session, {event.lead_id for event in events})

    return {
        LEAD_CLASSIFIED: on_classified,
        OUTCOME_RECORDED: stop_the_clocks,
        CONSENT_CHANGED: on_consent,
        LEAD_ERASED: on_erased,
    }
