"""When a touch may go out: respect for the person's time (DOMAIN.md "Follow-up", 004:202-208).
Pure, no I/O.

- Emails go any time; SMS and messenger messages not in the lead's quiet hours; calls only
  in the lead's call window (their own, e.g. 10:00-14:00, or the playbooks' default), never
  in quiet hours. Hours are the lead's own, in their time zone: the one it states, else its
  phone number's when that tells one alone (`phone_zones`), else its country's when the
  country keeps one clock (`country_zones`: the country it states, else its phone's), else
  the playbooks' `timezone`.
- At most `weekly_cap` messages (email, SMS, messenger) to one lead in any 7 days. A call
  task is a rep's, who decides (as with consent, `consent.may_market`): it keeps to the call
  window, not the cap; a lead who asked for a call the day after their third email waited a
  week for it.
A touch that may not go now is moved to the first moment it may.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.nurture.countries import country_of
from services.nurture.country_zones import zone_of_country
from services.nurture.phone_zones import phone_country, zone_of_phone
from services.nurture.playbooks import Playbooks, Window

WEEK = timedelta(days=7)
CALL_TASK = "call_task"


def zone_of(lead: dict[str, Any], rules: Playbooks) -> ZoneInfo:
    for name in _zone_names(lead, rules):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _zone_names(lead: dict[str, Any], rules: Playbooks) -> Iterator[str | None]:
    """The zones the lead may be in, the surest first (each worked out only when needed)."""
    yield lead.get("timezone")
    yield zone_of_phone(lead.get("phone"))
    yield zone_of_country(country_of(lead.get("country")), rules.timezone)
    yield zone_of_country(phone_country(lead.get("phone")), rules.timezone)
    yield rules.timezone


def call_window_of(lead: dict[str, Any], rules: Playbooks) -> Window:
    """The lead's own call window, or the playbooks' when the lead's cannot be read or holds no
    moment outside quiet hours (21:30-22:30, 10:00-10:00): a hot lead's call task was put off
    about 19 days, again and again, looking for one."""
    given = lead.get("call_window") or (lead.get("custom") or {}).get("call_window")
    if isinstance(given, str):
        try:
            window = Window.parse(given)
        except ValueError:
            return rules.call_window
        if window.leaves_a_moment_outside(rules.quiet_hours):
            return window
    return rules.call_window


def earliest_send(
    due: datetime, channel: str, lead: dict[str, Any], rules: Playbooks, sent: Sequence[datetime]
) -> datetime:
    """The first moment at or after `due` this touch may go out."""
    zone = zone_of(lead, rules)
    windows = _windows(channel, lead, rules)
    moment = due
    for _ in range(20):  # each pass moves forward; a few suffice
        moved = moment if channel == CALL_TASK else _after_cap(moment, sent, rules.weekly_cap)
        moved = _inside(moved, windows, zone)
        if moved == moment:
            return moment
        moment = moved
    return moment


def _windows(channel: str, lead: dict[str, Any], rules: Playbooks) -> list[tuple[Window, bool]]:
    """(window, inside?) pairs a moment must satisfy: inside the call window, outside quiet hours."""
    if channel == "email":
        return []
    windows = [(rules.quiet_hours, False)]
    if channel == CALL_TASK:
        windows.append((call_window_of(lead, rules), True))
    return windows


def _after_cap(moment: datetime, sent: Sequence[datetime], cap: int) -> datetime:
    recent = sorted(t for t in sent if moment - WEEK < t <= moment)
    if len(recent) < cap:
        return moment
    return recent[len(recent) - cap] + WEEK + timedelta(seconds=1)


def _inside(moment: datetime, windows: list[tuple[Window, bool]], zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    for window, inside in windows:
        if window.contains(local.time()) != inside:
            local = _next_boundary(local, window.start if inside else window.end)
    return local.astimezone(moment.tzinfo)


def _next_boundary(local: datetime, at: Any) -> datetime:
    candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)
