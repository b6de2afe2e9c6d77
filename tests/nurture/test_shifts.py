"""Working hours are pure: when a rep is next on duty, and when an SLA that runs only in their
hours runs out (across a shift's end, a weekend, a night shift, a change of clocks)."""

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.nurture.routing import choose_reachable
from services.nurture.shifts import Hours, due, on_duty_from
from tests.nurture.test_routing import Rep

ALMATY = ZoneInfo("Asia/Almaty")
OFFICE = Hours.of(
    {"timezone": "Asia/Almaty", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
)
MINUTES_15 = timedelta(minutes=15)


def almaty(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Almaty in the week of Monday 2026-11-30 (day 0) and after."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=ALMATY) + timedelta(days=day)


def test_an_sla_runs_in_working_hours_only() -> None:
    assert due(OFFICE, almaty(1, 10), MINUTES_15) == almaty(1, 10, 15)  # Tuesday, on duty
    assert due(OFFICE, almaty(0, 17, 55), MINUTES_15) == almaty(1, 9, 10)  # 5 minutes, then 10
    assert due(OFFICE, almaty(4, 17, 55), MINUTES_15) == almaty(7, 9, 10)  # Friday: on Monday
    assert due(OFFICE, almaty(5, 12), MINUTES_15) == almaty(7, 9, 15)  # given on Saturday
    assert due(OFFICE, almaty(1, 3), MINUTES_15) == almaty(1, 9, 15)  # given in the night
    assert due(OFFICE, almaty(1, 18), MINUTES_15) == almaty(2, 9, 15)  # just after the shift
    assert due(OFFICE, almaty(1, 10), timedelta(hours=20)) == almaty(3, 12)  # over two shifts


def test_round_the_clock_without_hours() -> None:
    at = almaty(5, 3)
    assert due(None, at, MINUTES_15) == at + MINUTES_15
    assert on_duty_from(None, at) == at


def test_when_a_rep_is_next_on_duty() -> None:
    assert on_duty_from(OFFICE, almaty(1, 10)) == almaty(1, 10)
    assert on_duty_from(OFFICE, almaty(1, 9)) == almaty(1, 9)  # a shift starts on time
    assert on_duty_from(OFFICE, almaty(1, 18)) == almaty(2, 9)  # and ends on time
    assert on_duty_from(OFFICE, almaty(4, 20)) == almaty(7, 9)  # Friday evening: Monday


def test_a_night_shift_runs_past_midnight() -> None:
    """22:00-06:00 starting on Mondays and Tuesdays: Monday's shift covers Tuesday 05:50."""
    nights = Hours.of({"timezone": "Asia/Almaty", "days": ["mon", "tue"], "start": "22:00", "end": "06:00"})
    assert on_duty_from(nights, almaty(1, 5, 50)) == almaty(1, 5, 50)
    assert due(nights, almaty(1, 5, 50), MINUTES_15) == almaty(1, 22, 5)  # 10 before 06:00, 5 after 22:00
    assert on_duty_from(nights, almaty(2, 6)) == almaty(7, 22)  # Wednesday morning: next Monday night


def test_working_hours_keep_to_the_local_clock_when_it_changes() -> None:
    """Berlin goes to summer time on Sunday 2026-03-29: Saturday's 17:50 with 20 minutes runs
    out at 09:10 on Sunday, summer time (07:10 UTC, not 08:10)."""
    berlin = Hours.of({"timezone": "Europe/Berlin", "days": ["sat", "sun"], "start": "09:00", "end": "18:00"})
    given = datetime(2026, 3, 28, 16, 50, tzinfo=UTC)  # 17:50 CET
    assert due(berlin, given, timedelta(minutes=20)) == datetime(2026, 3, 29, 7, 10, tzinfo=UTC)


def test_a_lead_goes_to_a_rep_on_duty_and_the_one_off_duty_passes_their_turn() -> None:
    reps = [Rep("aigerim"), Rep("dauren", assigned_total=1)]  # Aigerim's turn
    back = datetime(2026, 12, 1, 4, tzinfo=UTC)
    rep, passed = choose_reachable(reps, {}, set(), off_duty={reps[0].id: back})
    assert rep is reps[1] and passed == [reps[0]]


def test_with_everyone_off_duty_the_lead_goes_to_the_rep_back_first() -> None:
    reps = [Rep("aigerim"), Rep("dauren", assigned_total=1), Rep("erlan", assigned_total=2)]
    morning, noon = datetime(2026, 12, 1, 4, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC)
    off = {reps[0].id: noon, reps[1].id: morning, reps[2].id: morning}
    rep, passed = choose_reachable(reps, {}, set(), off_duty=off)
    assert rep is reps[1] and passed == []  # Dauren and Erlan are back first; Dauren's turn
    # a rep on duty whose receiver is paused comes before those off duty
    rep, _ = choose_reachable(reps, {}, {reps[2].id}, off_duty={reps[0].id: noon, reps[1].id: morning})
    assert rep is reps[2]
    assert choose_reachable(reps, {}, set(), exclude={r.id for r in reps}, off_duty=off) == (None, [])


def test_an_unknown_rep_id_is_never_off_duty() -> None:
    reps = [Rep("aigerim")]
    rep, _ = choose_reachable(reps, {}, set(), off_duty={uuid.uuid4(): datetime(2026, 12, 1, tzinfo=UTC)})
    assert rep is reps[0]
