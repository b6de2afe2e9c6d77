"""Respect for the person's time (004:202-208): quiet hours, call window, weekly cap, all in
the lead's own time zone. Pure."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.nurture.country_zones import zone_of_country
from services.nurture.playbooks import default_playbooks_text, parse_playbooks
from services.nurture.timing import earliest_send

RULES = parse_playbooks(default_playbooks_text())  # quiet 21:00-09:00, calls 10:00-18:00, cap 3
ALMATY = {"timezone": "Asia/Almaty"}  # UTC+5


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """A moment given as Almaty wall-clock time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=5)


@pytest.mark.parametrize(
    ("channel", "due", "lead", "expected"),
    [
        ("email", at(23), ALMATY, at(23)),  # email waits for nobody
        ("sms", at(23), ALMATY, at(9, day=3)),  # quiet hours: the next morning
        ("sms", at(3), ALMATY, at(9)),
        ("sms", at(12), ALMATY, at(12)),
        ("messenger", at(8, 59), ALMATY, at(9)),
        ("call_task", at(9, 30), ALMATY, at(10)),  # the default call window
        ("call_task", at(19), ALMATY, at(10, day=3)),
        ("call_task", at(9, 30), {**ALMATY, "call_window": "10:00-14:00"}, at(10)),  # their own window
        ("call_task", at(15), {**ALMATY, "call_window": "10:00-14:00"}, at(10, day=3)),
        (
            "call_task",
            at(15),
            {"timezone": "Asia/Baku", "call_window": "10:00-14:00"},
            at(11, day=3),
        ),  # UTC+4
    ],
)
def test_touches_wait_for_the_leads_hours(
    channel: str, due: datetime, lead: dict[str, str], expected: datetime
) -> None:
    assert earliest_send(due, channel, lead, RULES, []) == expected


@pytest.mark.parametrize("window", ["21:30-22:30", "10:00-10:00", "25:00-26:00", "06:00-08:59"])
def test_a_call_window_with_no_callable_moment_is_the_playbooks_one(window: str) -> None:
    """Inside quiet hours, empty, or no time at all: the call task was put off about 19 days
    (found by an outside review); the playbooks' window (10:00-18:00) is used instead."""
    lead = {**ALMATY, "call_window": window}
    assert earliest_send(at(9, 30), "call_task", lead, RULES, []) == at(10)
    assert earliest_send(at(19), "call_task", lead, RULES, []) == at(10, day=3)


def test_weekly_cap_moves_a_touch_until_the_oldest_leaves_the_week() -> None:
    sent = [at(12, day=1), at(12, day=3), at(12, day=4)]
    assert earliest_send(at(12, day=5), "email", ALMATY, RULES, sent) == at(12, day=8) + timedelta(seconds=1)
    assert earliest_send(at(12, day=5), "email", ALMATY, RULES, sent[1:]) == at(12, day=5)


def test_a_call_task_keeps_to_the_call_window_not_the_weekly_cap() -> None:
    """The cap is for messages: a lead who asked for a call the day after their third email
    had the rep's call task put off for a week (found by a review)."""
    sent = [at(12, day=1), at(12, day=3), at(12, day=4)]
    assert earliest_send(at(12, day=5), "call_task", ALMATY, RULES, sent) == at(12, day=5)
    assert earliest_send(at(19, day=5), "call_task", ALMATY, RULES, sent) == at(10, day=6)
    assert earliest_send(at(12, day=5), "sms", ALMATY, RULES, sent) == at(12, day=8) + timedelta(seconds=1)


def test_an_unknown_time_zone_falls_back_to_the_default() -> None:
    assert earliest_send(at(23), "sms", {"timezone": "Mars/Olympus"}, RULES, []) == at(9, day=3)


BAKU_PHONE = {"phone": "+994501234567", "city": "Bakı"}  # UTC+4: 09:00 in Almaty is 08:00 there


@pytest.mark.parametrize(
    ("channel", "due", "lead", "expected"),
    [
        ("sms", at(9), BAKU_PHONE, at(10)),  # 09:00 Baku, not 08:00
        ("sms", at(9), {"phone": "+77172123456"}, at(9)),  # an Astana number: Almaty's hours
        ("sms", at(9), {}, at(9)),  # no number: the playbooks' zone
        ("call_task", at(10), BAKU_PHONE, at(11)),  # 10:00 Baku, not 09:00
        ("sms", at(9), {"phone": "+74951234567"}, at(11)),  # a Moscow landline: 09:00 Moscow
        ("sms", at(9), {**BAKU_PHONE, "timezone": "Asia/Almaty"}, at(9)),  # a stated zone wins
        ("sms", at(9), {"phone": "+79161234567"}, at(9)),  # a Russian mobile: eleven zones, none
        ("sms", at(9), {"phone": "+77011234567"}, at(9)),  # a Kazakh mobile: filed under all of +7's
        ("sms", at(9), {"phone": "not a number"}, at(9)),
    ],
)
def test_a_lead_stating_no_time_zone_has_its_phones_when_it_tells_one(
    channel: str, due: datetime, lead: dict[str, str], expected: datetime
) -> None:
    """Everyone was assumed to live in Almaty (found by a review from the side of the people
    written to): a Baku number got SMS from 08:00 and calls from 09:00 its own time."""
    assert earliest_send(due, channel, lead, RULES, []) == expected


MOSCOW_RULES = RULES.model_copy(update={"timezone": "Europe/Moscow"})  # UTC+3: a company in Moscow


@pytest.mark.parametrize(
    ("rules", "lead", "expected"),
    [
        (RULES, {"country": "Кыргызстан"}, at(8)),  # UTC+6: 09:00 in Bishkek is 08:00 in Almaty
        (RULES, {"country": "Georgia", "city": "Tbilisi"}, at(10)),  # UTC+4
        (RULES, {"country": "Türkiye"}, at(11)),  # UTC+3
        (RULES, {"country": "KZ"}, at(9)),  # seven zones, one clock: the playbooks' Almaty
        (RULES, {"country": "Россия"}, at(9)),  # eleven clocks: none, the playbooks' zone
        (RULES, {"country": "Narnia"}, at(9)),
        (RULES, {"country": "Грузия", "phone": "+77172123456"}, at(9)),  # an Astana number tells more
        (RULES, {"country": "Грузия", "timezone": "Asia/Almaty"}, at(9)),  # a stated zone wins
        (MOSCOW_RULES, {"phone": "+77011234567"}, at(9)),  # a Kazakh mobile: Kazakhstan's clock
        (MOSCOW_RULES, {"phone": "+79161234567"}, at(11)),  # a Russian mobile: the playbooks' Moscow
    ],
)
def test_a_lead_with_no_zone_of_its_own_has_its_countrys_when_the_country_keeps_one_clock(
    rules: Any, lead: dict[str, str], expected: datetime
) -> None:
    """A lead from Bishkek got texts from 10:00 its time and calls at 19:00 (the playbooks'
    Almaty hours); a Kazakh mobile at a Moscow company's, at 11:00 its time."""
    assert earliest_send(at(3), "sms", lead, rules, []) == expected


def test_a_country_keeps_one_clock_only_when_all_its_zones_do() -> None:
    assert zone_of_country("KZ", "Asia/Almaty", 2026) == "Asia/Almaty"
    assert zone_of_country("kz", None, 2026) == "Asia/Aqtau"  # the first of its seven
    assert zone_of_country("AZ", "Asia/Almaty", 2026) == "Asia/Baku"
    assert zone_of_country("DE", None, 2026) == "Europe/Berlin"
    assert zone_of_country("UZ", None, 2026) in ("Asia/Samarkand", "Asia/Tashkent")
    assert zone_of_country("KZ", None, 2023) is None  # before March 2024 it kept two clocks
    for several in ("RU", "US", "UA"):  # Simferopol keeps Moscow's clock, Kyiv its own
        assert zone_of_country(several, None, 2026) is None
    assert zone_of_country("XX", None, 2026) is None and zone_of_country(None) is None
