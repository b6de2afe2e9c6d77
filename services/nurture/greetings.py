"""Birthday and holiday greetings: a periodic pass, `greet_occasions(db, book, now)`, queues a
touch for each customer whose occasion (the playbooks' `occasions`: their birthday, New Year...)
falls today in their time zone, due at the occasion's hour. The touch then goes the way every
touch goes (sender.py): consent, unsubscribe, the preferred channel, quiet hours and the weekly
cap are judged when it is sent; a lead without consent for the channel, or unsubscribed, is
not queued one at all. A row per lead, occasion and year (`occasion_greetings`) makes the pass
idempotent: run it every few minutes, from every replica; a customer is greeted once a year
on each. Erasure deletes those rows with the lead.

The pass reads only customers whose birthday is near today (an index on its month and day),
and on the days a holiday is near, the customers not yet greeted on it (an index of the
subscribed customers, and the greetings' own key): a pass every 15 minutes over a holiday's
three days reads each customer about once, not 288 times. A day the service is down all
along is not made up for."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Select, and_, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.consent import may_market
from services.nurture.followup import LEADS, TOUCHES, PlaybookBook, touch_event
from services.nurture.models import OccasionGreeting, Touch
from services.nurture.occasions import (
    BIRTHDAY,
    CUSTOMER_STAGES,
    PLAYBOOK,
    Greeting,
    birthdays_on,
    days_near,
    greetings_due,
    holidays_near,
)
from services.nurture.playbooks import Playbooks
from services.nurture.subscriptions import emit
from services.nurture.touch_channels import preferred_channel
from shared.db import Database, defer_insert
from shared.events import TOUCH_SCHEDULED

GREETINGS = OccasionGreeting.__table__  # type: ignore[attr-defined]


async def greet_occasions(db: Database, book: PlaybookBook, now: datetime, limit: int = 500) -> int:
    """Queue the greetings due at `now` (the app passes the wall clock's); returns how many."""
    queued, after = 0, None
    while True:
        async with db.transaction() as session:
            active = await book.active(session)
            leads = await _candidates(session, active.value, now, after, limit)
            greeted = await _greeted(session, [lead_id for lead_id, _ in leads], now)
            for lead_id, context in leads:
                for greeting in greetings_due(active.value, context, now):
                    if (lead_id, greeting.occasion.name, greeting.day.year) not in greeted:
                        queued += await _queue(session, lead_id, context, greeting, active.version, now)
        if len(leads) < limit:
            return queued
        after = leads[-1][0]


async def _candidates(
    session: AsyncSession, playbooks: Playbooks, now: datetime, after: UUID | None, limit: int
) -> list[tuple[UUID, dict[str, Any]]]:
    """Subscribed customers who may have an occasion near `now` not yet greeted, a page by
    lead id."""
    query = candidates_query(playbooks, now, after, limit)
    if query is None:
        return []
    return [(row.lead_id, row.context) for row in await session.execute(query)]


# Migration 0015's partial index holds these leads. Its stages literal, not bound: a prepared
# statement's generic plan cannot prove that parameters imply an index's condition.
CUSTOMERS_TO_GREET = text(
    "followed_leads.unsubscribed IS false AND (followed_leads.context->>'stage') IN ("
    + ", ".join(f"'{stage}'" for stage in sorted(CUSTOMER_STAGES))
    + ")"
)


def candidates_query(
    playbooks: Playbooks, now: datetime, after: UUID | None, limit: int
) -> Select[Any] | None:
    """The query of `_candidates`, or None when no occasion is near."""
    near: list[Any] = []
    if holidays := [(o.name, day.year) for o, day in holidays_near(playbooks, now)]:
        near.append(or_(*(_not_greeted(name, year) for name, year in holidays)))
    if birthdays := [o.name for o in playbooks.occasions if o.day == BIRTHDAY]:
        near.append(_birthdays_waiting(birthdays, now))
    if not near:
        return None
    wanted: list[Any] = [or_(*near), CUSTOMERS_TO_GREET]
    if after is not None:
        wanted.append(LEADS.c.lead_id > after)
    return select(LEADS.c.lead_id, LEADS.c.context).where(*wanted).order_by(LEADS.c.lead_id).limit(limit)


def _birthdays_waiting(occasions: list[str], now: datetime) -> Any:
    """Customers whose birthday falls on a date near `now`, not greeted on it that year."""
    birthday = LEADS.c.context["birthday"].astext
    on_days = [
        and_(
            func.right(birthday, 5).in_(birthdays_on(day)),
            or_(*(_not_greeted(name, day.year) for name in occasions)),
        )
        for day in days_near(now)
    ]
    return and_(birthday.is_not(None), or_(*on_days))


def _not_greeted(occasion: str, year: int) -> Any:
    return ~exists().where(
        GREETINGS.c.lead_id == LEADS.c.lead_id, GREETINGS.c.occasion == occasion, GREETINGS.c.year == year
    )


async def _greeted(session: AsyncSession, lead_ids: list[UUID], now: datetime) -> set[tuple[UUID, str, int]]:
    """The greetings these leads had near `now`: read once a page, not tried again a lead at a
    time every pass of a holiday's days."""
    if not lead_ids:
        return set()
    years = {day.year for day in days_near(now)}
    query = select(GREETINGS.c.lead_id, GREETINGS.c.occasion, GREETINGS.c.year).where(
        GREETINGS.c.lead_id.in_(lead_ids), GREETINGS.c.year.in_(sorted(years))
    )
    return {(row.lead_id, row.occasion, row.year) for row in await session.execute(query)}


async def _queue(
    session: AsyncSession,
    lead_id: UUID,
    context: dict[str, Any],
    greeting: Greeting,
    version: int,
    now: datetime,
) -> int:
    """Queue the greeting's touch unless this lead had it this year or may not be written to."""
    occasion = greeting.occasion
    if not may_market(preferred_channel(occasion.channel, context), context):
        return 0
    # Held (a key share: the sender's updates go on) until the greeting is queued: an erasure
    # under way is waited for, and one that came first leaves no lead to greet; an erasure
    # that comes next waits, then deletes the greeting too (followup.erase: the lead first).
    held = select(LEADS.c.lead_id).where(LEADS.c.lead_id == lead_id).with_for_update(key_share=True)
    if (await session.execute(held)).first() is None:
        return 0
    touch_id = uuid4()
    mark = {"lead_id": lead_id, "occasion": occasion.name, "year": greeting.day.year}
    first = await session.execute(
        insert(GREETINGS)
        .values(**mark, touch_id=touch_id, queued_at=now)
        .on_conflict_do_nothing()
        .returning(GREETINGS.c.touch_id)
    )
    if first.first() is None:
        return 0
    touch: dict[str, Any] = {
        "id": touch_id,
        "lead_id": lead_id,
        "correlation_id": uuid4(),
        "playbook": PLAYBOOK,
        "playbook_version": version,
        "step": greeting.step,
        "channel": occasion.channel,
        "template": occasion.template,
        "due_at": greeting.due_at,
        "status": "scheduled",
        "attempts": 0,
    }
    defer_insert(session, TOUCHES, touch)
    await emit(session, touch_event(TOUCH_SCHEDULED, Touch.model_construct(**touch)))
    return 1
