"""Claiming due touches under a lease, and judging on their leads as they are now which of
them go: cancelled (erased, unsubscribed, no consent, no text in the playbooks version it was
scheduled under, a call promised that nobody would make: `call_promises`), moved (quiet
hours, weekly cap, a lead held elsewhere), failed in doubt (an email that may have left), or
sent."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture import suppression
from services.nurture.call_promises import broken_promise, promises_a_call, reps_back
from services.nurture.consent import may_market
from services.nurture.followup import EXPIRED, TOUCHES, PlaybookBook
from services.nurture.models import FollowedLead, Touch
from services.nurture.occasions import PLAYBOOK as OCCASIONS
from services.nurture.occasions import missed_its_day
from services.nurture.playbooks import Playbooks, Template, Templates, text_in
from services.nurture.timing import CALL_TASK, WEEK, earliest_send
from services.nurture.touch_channels import preferred_channel
from shared.db import among
from shared.events import utcnow
from shared.languages import language_of

log = logging.getLogger(__name__)
BATCH = 200

IN_DOUBT = (
    "in doubt: the sender stopped between sending this email and recording it; not sent again,"
    " so that nobody gets it twice"
)
NO_TEMPLATE = "no template {template!r} in playbooks version {version}, which it was scheduled under"
NO_CONSENT = "no consent to {channel} marketing, and the lead's source states no legal basis for it"
BUSY = "waiting for its lead, which another transaction holds"
LATE = timedelta(hours=1)  # a sequence resumed later than this keeps its spacing (`_spaced`)
SPACED = "after the step before it, which went {late} late: the sequence keeps its spacing"
_SHIFT = """
UPDATE touches t SET due_at = t.due_at + s.late
FROM unnest(
    CAST(:leads AS uuid[]), CAST(:playbooks AS text[]), CAST(:steps AS int[]), CAST(:late AS interval[])
) AS s(lead_id, playbook, step, late)
WHERE t.lead_id = s.lead_id AND t.playbook = s.playbook AND t.step > s.step AND t.status = 'scheduled'
"""
BUSY_SECONDS = 1.0

# Due touches and touches whose lease lapsed, each read from an index of its own: one OR
# over both made PostgreSQL walk every scheduled touch, future steps of every lead included,
# once a second (131 ms at 200,000 of them).
_CLAIM = """
WITH scheduled AS (
    SELECT id, status, due_at FROM touches
    WHERE status = 'scheduled' AND due_at <= :now
    ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED
), lapsed AS (
    SELECT id, status, due_at FROM touches
    WHERE status = 'sending' AND lease_until < :now
    ORDER BY lease_until LIMIT :limit FOR UPDATE SKIP LOCKED
)
UPDATE touches t SET status = 'sending', lease_until = :lease, attempts = t.attempts + 1
FROM (
    SELECT id, status FROM (SELECT * FROM scheduled UNION ALL SELECT * FROM lapsed) both_kinds
    ORDER BY due_at LIMIT :limit
) due
WHERE t.id = due.id
RETURNING t.*, due.status = 'sending' AS lapsed
"""


@dataclass
class Claimed:
    touch: Touch
    lapsed: bool  # taken again after its worker's lease ran out: it may have left


@dataclass
class Going:
    """A claimed touch to send now, and its lead's fields as they are now (plain data: a record
    retried in another transaction uses it)."""

    claim: Claimed
    fields: dict[str, Any]
    channel: str  # what it goes by: the lead's preferred channel, else the step's
    template: Template  # in the lead's language, of the playbooks version it was scheduled under


@dataclass
class Decided:
    """A claimed touch that does not go now: `status` and `detail` (and, moved to `due_at`,
    'scheduled')."""

    claim: Claimed
    status: str
    detail: str
    due_at: datetime | None = None


async def claim_due(session: AsyncSession, now: datetime, lease_seconds: float) -> list[Claimed]:
    lease = now + timedelta(seconds=lease_seconds)
    rows = list(await session.execute(text(_CLAIM), {"now": now, "lease": lease, "limit": BATCH}))
    return [Claimed(Touch.model_validate(row._mapping), row.lapsed) for row in rows]


async def gate(
    session: AsyncSession, claimed: list[Claimed], playbooks: Playbooks, book: PlaybookBook
) -> tuple[list[Decided], list[Going]]:
    """Which claimed touches go now, judged on their leads as they are now, held (for no key
    update) until what was sent is recorded: an erasure, unsubscribe or consent withdrawn
    that committed after the claim is seen here, one arriving later waits for the record,
    and two senders never count one lead's weekly cap at once. A lead another transaction
    holds is not waited for (nothing is held by a sender while it waits, and nobody waits
    long for a sender): its touches are put back for a second later."""
    # The touches first, waited for: only an erasure deleting them, or another sender's
    # claim that met them as this one committed, holds them, and briefly; skipped, a
    # touch of this claim would be left 'sending' (an email then fails as in doubt).
    # Then the leads, not waited for: nothing that holds a lead waits for a touch.
    current = await touches_held(session, [item.touch.id for item in claimed])
    leads, seen = await _leads_held(session, claimed)
    now = utcnow()  # once held: what another sender recorded before counts against the cap
    sent = await _recent_sends(session, set(leads), now)
    texts = await book.templates(session, {item.touch.playbook_version for item in claimed})
    unsubscribed_before = await suppression.suppressed(session, leads)
    promising = {c.touch.lead_id for c in claimed if _promises(texts, c.touch)}
    held_by_a_rep = await reps_back(session, promising, now)
    decided, going = [], []
    resumed: dict[tuple[UUID, str], Resumed] = {}  # each sequence's first step claimed, by lead and playbook
    for item in sorted(claimed, key=lambda claim: claim.touch.step):  # a sequence's earlier steps first
        touch, lead = current.get(item.touch.id), leads.get(item.touch.lead_id)
        if touch is None or touch.status != "sending" or touch.attempts != item.touch.attempts:
            continue  # erased or cancelled meanwhile, or no longer this claim
        context = lead.context if lead is not None else seen.get(touch.lead_id)
        templates = texts.get(touch.playbook_version, {})
        verdict = _judge(item, touch, lead, context, now, playbooks, templates, sent.get(touch.lead_id, []))
        if isinstance(verdict, Going) and touch.lead_id in unsubscribed_before:
            verdict = Decided(item, "cancelled", suppression.SUPPRESSED)
        if isinstance(verdict, Going) and (broken := _broken_promise(verdict, held_by_a_rep, playbooks, now)):
            verdict = Decided(item, "cancelled", broken)
        verdict = _spaced(verdict, touch, resumed, now)
        if isinstance(verdict, Decided):
            decided.append(verdict)
            continue
        going.append(verdict)
        if verdict.channel != CALL_TASK:  # a message counts against the cap at once
            sent.setdefault(touch.lead_id, []).append(now)
    await _keep_spacing(session, resumed)
    return decided, going


def _promises(texts: dict[int, dict[str, Templates]], touch: Touch) -> bool:
    return promises_a_call(texts.get(touch.playbook_version, {}).get(touch.template))


def _broken_promise(
    going: Going, held: dict[UUID, datetime], playbooks: Playbooks, now: datetime
) -> str | None:
    if not going.template.promises_a_call:
        return None
    return broken_promise(going.fields, held.get(going.claim.touch.lead_id), playbooks, now)


@dataclass
class Resumed:
    """A sequence's first step in a claim: when it was due, and how late it goes (or is moved to)."""

    step: int
    due_at: datetime
    late: timedelta


def _spaced(
    verdict: Decided | Going, touch: Touch, resumed: dict[tuple[UUID, str], Resumed], now: datetime
) -> Decided | Going:
    """A later step of a sequence whose first step in this claim goes (or is moved) more than
    `LATE` after it was due waits as long: after a pause the steps keep their spacing, not all
    in the same second. Greetings keep their own day."""
    if touch.playbook == OCCASIONS:
        return verdict
    moment = now if isinstance(verdict, Going) else verdict.due_at  # None: cancelled or failed
    first = resumed.get((touch.lead_id, touch.playbook))
    if first is None:
        if moment is not None:
            resumed[(touch.lead_id, touch.playbook)] = Resumed(
                touch.step, touch.due_at, moment - touch.due_at
            )
        return verdict
    if moment is None or first.late <= LATE or touch.due_at <= first.due_at:
        return verdict
    waited = SPACED.format(late=_days(first.late))
    return Decided(verdict.claim, "scheduled", waited, max(moment, touch.due_at + first.late))


async def _keep_spacing(session: AsyncSession, resumed: dict[tuple[UUID, str], Resumed]) -> None:
    """The steps still to come of each sequence resumed late move as late."""
    late = [(lead, playbook, first) for (lead, playbook), first in resumed.items() if first.late > LATE]
    if late:
        await session.execute(
            text(_SHIFT),
            {
                "leads": [lead for lead, _, _ in late],
                "playbooks": [playbook for _, playbook, _ in late],
                "steps": [first.step for _, _, first in late],
                "late": [first.late for _, _, first in late],
            },
        )


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:.0f} days" if days >= 1.5 else f"{span / timedelta(hours=1):.0f} hours"


def _judge(
    item: Claimed,
    touch: Touch,
    lead: FollowedLead | None,
    context: dict[str, Any] | None,
    now: datetime,
    playbooks: Playbooks,
    templates: dict[str, Templates],
    recent: list[datetime],
) -> Decided | Going:
    """Whether one claimed touch goes now, on its lead (None: held elsewhere or gone) and the
    lead's `context` as last committed."""
    if item.lapsed and context is not None and preferred_channel(touch.channel, context) == "email":
        log.warning("touch %s: %s", touch.id, IN_DOUBT)  # whatever the lead is doing now
        return Decided(item, "failed", IN_DOUBT)
    if lead is None and context is not None:  # another transaction holds the lead
        return Decided(item, "scheduled", BUSY, now + timedelta(seconds=BUSY_SECONDS))
    if lead is None or lead.unsubscribed:
        return Decided(item, "cancelled", "unsubscribed or unknown lead")
    template = text_in(templates, touch.template, language_of(lead.context))
    if template is None:  # its version's texts do not read, or it names none stored
        return Decided(
            item, "cancelled", NO_TEMPLATE.format(template=touch.template, version=touch.playbook_version)
        )
    channel = preferred_channel(touch.channel, lead.context)
    if not may_market(channel, lead.context):
        return Decided(item, "cancelled", NO_CONSENT.format(channel=channel))
    allowed = earliest_send(now, channel, lead.context, playbooks, recent)  # that channel's hours
    if touch.playbook == OCCASIONS and missed_its_day(touch.due_at, allowed, lead.context, playbooks):
        return Decided(item, "cancelled", "a greeting that missed its day (the lead's hours or weekly cap)")
    if touch.expires_at is not None and allowed > touch.expires_at:
        return Decided(item, "cancelled", EXPIRED)
    if allowed > now:
        return Decided(item, "scheduled", "waiting for the lead's hours or weekly cap", allowed)
    return Going(item, dict(lead.context), channel, template)


async def _leads_held(
    session: AsyncSession, claimed: list[Claimed]
) -> tuple[dict[UUID, FollowedLead], dict[UUID, dict[str, Any]]]:
    """The claimed touches' leads that no other transaction holds, held here (in id order); and
    every one's context as last committed, held or not."""
    lead_ids = sorted({item.touch.lead_id for item in claimed})
    followed = select(FollowedLead).where(among(col(FollowedLead.lead_id), lead_ids))
    held = followed.order_by(col(FollowedLead.lead_id)).with_for_update(key_share=True, skip_locked=True)
    leads = {lead.lead_id: lead for lead in (await session.execute(held)).scalars()}
    everyone = select(col(FollowedLead.lead_id), col(FollowedLead.context)).where(
        among(col(FollowedLead.lead_id), lead_ids)
    )
    seen = {lead_id: context for lead_id, context in await session.execute(everyone)}
    return leads, seen


async def _recent_sends(
    session: AsyncSession, lead_ids: set[UUID], now: datetime
) -> dict[UUID, list[datetime]]:
    if not lead_ids:
        return {}
    query = select(TOUCHES.c.lead_id, TOUCHES.c.sent_at).where(
        among(TOUCHES.c.lead_id, lead_ids),
        TOUCHES.c.status == "sent",
        TOUCHES.c.sent_at > now - WEEK,
        func.coalesce(TOUCHES.c.channel_used, TOUCHES.c.channel) != CALL_TASK,  # the cap counts messages
    )
    found: dict[UUID, list[datetime]] = {}
    for row in await session.execute(query):
        found.setdefault(row.lead_id, []).append(row.sent_at)
    return found


async def touches_held(session: AsyncSession, ids: list[UUID]) -> dict[UUID, Touch]:
    """The touches as they are now, locked in one statement (in id order: two batches never
    wait for each other in a circle), not one round trip each."""
    query = select(Touch).where(among(col(Touch.id), sorted(ids))).order_by(col(Touch.id)).with_for_update()
    return {touch.id: touch for touch in (await session.execute(query)).scalars()}
