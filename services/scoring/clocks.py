"""The clocks of a lead's temperature: a signal's temperature, and since when; a stated horizon
counting down to its day, then cooling as an ask does. Pure, no I/O."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from services.scoring.rules import Rules, Temperature, temperature_for

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Clock:
    """A temperature a signal gave, and since when there has been no newer sign of interest.
    A stated horizon's is `due` on its day: until then it warms as the day nears, from then
    it cools as an ask does (counted from that day, or a sign of interest after it)."""

    given: Temperature
    since: datetime | None
    due: datetime | None = None
    said_at: datetime | None = None

    def days_left(self, now: datetime) -> int | None:
        """Whole days (rounded up) until the horizon's day; 0 once it has come."""
        if self.due is None:
            return None
        return max(0, -((now - self.due) // DAY))

    def temperature_at(self, now: datetime, rules: Rules) -> Temperature:
        left = self.days_left(now)
        if left:
            return temperature_for(left, rules.temperature)
        since = latest(self.due, self.since) if left == 0 else self.since
        given: Temperature = "hot" if left == 0 else self.given
        if given == "cold" or since is None:
            return given
        age = (now - since).total_seconds() / 86400
        cool = rules.temperature.cool_after_days
        if age > cool["warm"]:
            return "cold"
        if given == "hot" and age > cool["hot"]:
            return "warm"
        return given

    def next_change(self, now: datetime, rules: Rules) -> datetime | None:
        moments: list[datetime | None] = []
        if self.due is not None and now < self.due:  # counting down: each window it enters
            windows = (rules.temperature.warm_within_days, rules.temperature.hot_within_days)
            moments += [later(self.due, -window) for window in windows]
        given = "hot" if self.due is not None else self.given
        since = latest(self.due, self.since)
        if given != "cold" and since is not None:
            cool = rules.temperature.cool_after_days
            steps = [cool["hot"], cool["warm"]] if given == "hot" else [cool["warm"]]
            moments += [later(since, step, seconds=1) for step in steps]
        return earliest([m for m in moments if m is not None and m > now])


def later(moment: datetime, days: float, seconds: int = 0) -> datetime | None:
    """`moment` + `days` (earlier, when negative), or None past the calendar's ends: a lead
    dated near them (dates run to 9998) never reaches a moment that far, and a horizon read
    from "1000000000" days is no moment at all."""
    try:
        return moment + span(days, seconds)
    except OverflowError:
        return None


@lru_cache(maxsize=1024)
def span(days: float, seconds: int) -> timedelta:
    """A span the rules or a horizon name: the same few again and again, each built once (a
    timedelta from days costs more than the sum it is for)."""
    return timedelta(days=days, seconds=seconds)


def latest(*moments: datetime | None) -> datetime | None:
    latest = None
    for moment in moments:  # not max() over a generator: called a few times for each event
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def earliest(moments: list[datetime | None]) -> datetime | None:
    earliest = None
    for moment in moments:
        if moment is not None and (earliest is None or moment < earliest):
            earliest = moment
    return earliest


def next_review(rules: Rules, now: datetime, clocks: list[Clock], engagement: int) -> datetime | None:
    """The next moment time alone may change the evaluation: a cooling step, or decay."""
    moments = [clock.next_change(now, rules) for clock in clocks]
    if engagement > 0:
        moments.append(later(now, rules.engagement.review_every_hours / 24))
    return earliest(moments)
