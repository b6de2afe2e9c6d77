"""Which greetings fall on a day for a customer: their birthday, the holidays of the
playbooks' `occasions`. Pure, no I/O; the pass that queues them is greetings.py.

A day is the lead's own, in their time zone (theirs, else the playbooks' default, as for any
touch). A Feb 29 (a birthday, or a holiday dated so) comes on Feb 28 in other years."""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.nurture.playbooks import Occasion, Playbooks
from services.nurture.timing import zone_of
from shared.languages import language_of

# Who is greeted: people who bought (DOMAIN.md "Follow-up", 004:414-416).
CUSTOMER_STAGES = frozenset({"customer", "regular_customer", "advocate"})
BIRTHDAY = "birthday"
PLAYBOOK = "occasions"  # what a greeting's touch names as its playbook


def missed_its_day(due: datetime, allowed: datetime, lead: dict[str, Any], rules: Playbooks) -> bool:
    """Whether a greeting due at `due` may go only on a later day in the lead's zone: put off by
    the weekly cap or quiet hours, or reached a day late (sending paused, nurture down, a
    provider's Retry-After): "happy birthday" days late is no greeting."""
    zone = zone_of(lead, rules)
    return allowed.astimezone(zone).date() > due.astimezone(zone).date()


_BIRTHDAY = re.compile(r"^(?:\d{4}|-)-(\d{2}-\d{2})$")
NEAR = timedelta(days=1)  # a lead's day is at most a day from the UTC one (UTC-12 to UTC+14)


@dataclass(frozen=True)
class Greeting:
    """An occasion to greet a lead on: its local `day` and when the touch is due."""

    occasion: Occasion
    step: int  # the occasion's place in the list (a touch's step)
    day: date
    due_at: datetime


def month_day(birthday: Any) -> str | None:
    """`MM-DD` of a birthday as ingest keeps it (`YYYY-MM-DD` or `--MM-DD`)."""
    match = _BIRTHDAY.match(birthday) if isinstance(birthday, str) else None
    return match.group(1) if match else None


def occurs(day: str, year: int) -> date:
    """The date a yearly `MM-DD` falls on in `year` (Feb 29: Feb 28 in other years)."""
    month, dom = int(day[:2]), int(day[3:])
    if (month, dom) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, dom)


def _day_of(occasion: Occasion, lead: dict[str, Any]) -> str | None:
    return month_day(lead.get(BIRTHDAY)) if occasion.day == BIRTHDAY else occasion.day


def greetings_due(playbooks: Playbooks, lead: dict[str, Any], now: datetime) -> list[Greeting]:
    """The occasions a customer is greeted on today in their time zone, each due at its
    `at` hour (or now, when that has passed)."""
    if lead.get("stage") not in CUSTOMER_STAGES:
        return []
    zone = zone_of(lead, playbooks)
    today = now.astimezone(zone).date()
    language = language_of(lead)
    due = []
    for step, occasion in enumerate(playbooks.occasions):
        day = _day_of(occasion, lead)
        if day is None or occurs(day, today.year) != today:
            continue
        if occasion.languages and language not in occasion.languages:
            continue
        at = datetime.combine(today, occasion.at, zone)
        due.append(Greeting(occasion, step, today, max(now, at)))
    return due


def days_near(now: datetime) -> list[date]:
    """The dates some lead may be living on at `now`."""
    utc = now.astimezone(UTC).date()
    return [utc - NEAR, utc, utc + NEAR]


def birthdays_on(day: date) -> list[str]:
    """The `MM-DD` of the birthdays that fall on `day` (Feb 29 on a Feb 28 of other years)."""
    leap_day = (day.month, day.day) == (2, 28) and not calendar.isleap(day.year)
    return [f"{day:%m-%d}", *(["02-29"] if leap_day else [])]


def holidays_near(playbooks: Playbooks, now: datetime) -> list[tuple[Occasion, date]]:
    """The holidays on a date some lead may be living on at `now`, each with that date."""
    near = days_near(now)
    return [
        (o, d) for o in playbooks.occasions if o.day != BIRTHDAY for d in near if occurs(o.day, d.year) == d
    ]
