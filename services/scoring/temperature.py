"""Intent and temperature: a stated horizon and explicit asks make a lead hot, time cools it."""

from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.scoring.clocks import Clock, later, latest, span
from services.scoring.matching import derived
from services.scoring.negation import said
from services.scoring.profile import Profile
from services.scoring.rules import (
    ActivityRule,
    IntentRules,
    Rules,
    Temperature,
    every_phrase,
    temperature_for,
)
from services.scoring.timeframes import Horizon, understand
from services.scoring.wording import as_written, fold, phrase_pattern
from shared.events import RuleHit

REPS_OWN = frozenset({"note"})  # what the rep writes on the lead: never the person's interest

HOTTER: dict[Temperature, int] = {"cold": 0, "warm": 1, "hot": 2}


def stated_horizon(profile: Profile, rules: Rules, now: datetime) -> Horizon:
    """The horizon the lead's latest timeframe states, read as of the day it was said where
    the lead is (their `timezone`, else UTC), in the lead's language first."""
    text, said_at = profile.timeframe()
    said_on = _local_date(said_at or profile.captured_at or now, zone_of(profile.attributes.get("timezone")))
    language = profile.attributes.get("language")
    return understand(
        str(text) if isinstance(text, str | int) and not isinstance(text, bool) else None,
        said_on,
        str(language).lower()[:2] if language else None,
        rules.timeframes.lexicon,
        rules.negations.negation,
    )


def zone_of(name: object) -> tzinfo:
    """The lead's time zone: "до конца месяца" said at 03:00 on 1 April in Almaty is a month
    off, not the last day of March's UTC; a name no zone has is UTC."""
    return _zone(name) if isinstance(name, str) and name else UTC


def _local_date(moment: datetime, zone: tzinfo) -> date:
    """The day `moment` is in `zone`; its UTC day at the calendar's ends (year 1 west of
    Greenwich is before the first day a date holds)."""
    try:
        return moment.astimezone(zone).date()
    except OverflowError:
        return moment.date()


@lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def temperature_and_intent(
    profile: Profile, rules: Rules, now: datetime, asked: list[tuple[str, datetime, str | None]]
) -> tuple[Temperature, list[Clock], list[RuleHit]]:
    """The temperature, the clocks that will change it, and the intent points.

    A stated horizon gives hot / warm / cold (003:57-61), counted down from the day it was said:
    "через 2 месяца" said 50 days ago is 10 days off now, hot. An explicit ask (callback, order,
    demo, price) makes the lead hot. With no new sign of interest since (since the horizon's
    day, for a stated one), a hot lead turns warm after `cool_after_days.hot`, and cold after
    `cool_after_days.warm`.
    """
    last_interest = _last_interest(profile, rules)
    horizon = stated_horizon(profile, rules, now)
    stated_clock = _stated_clock(horizon.days, profile.timeframe()[1], last_interest, rules)
    asked_clock = Clock("hot" if asked else "cold", latest(*(at for _, at, _ in asked), last_interest))
    from_timeframe = stated_clock.temperature_at(now, rules)
    temperature = max(from_timeframe, asked_clock.temperature_at(now, rules), key=HOTTER.__getitem__)
    hits = _timeframe_hits(profile, rules.intent, horizon, stated_clock, from_timeframe, now)
    for kind, at, phrase in asked:
        said = f" «{phrase}»" if phrase else ""
        reason = f"asked: {kind.replace('_', ' ')}{said} ({_days_ago(_age_days(at, now))})"
        hits.append(RuleHit(rule=f"intent.request.{kind}", points=rules.intent.requests[kind], reason=reason))
    need = profile.attributes.get("need")
    if isinstance(need, str) and need.strip() and rules.intent.need:
        hits.append(RuleHit(rule="intent.need", points=rules.intent.need, reason="stated a need"))
    return temperature, [stated_clock, asked_clock], hits


def _stated_clock(
    days: int | None, said_at: datetime | None, last_interest: datetime | None, rules: Rules
) -> Clock:
    """The clock of a stated horizon: due on its day (said when, plus its days; a timeframe
    kept without the moment it was said counts from the latest sign of interest)."""
    if days is None:
        return Clock("cold", None)
    said_at = said_at or last_interest
    due = later(said_at, days) if said_at is not None and days > 0 else None
    return Clock(temperature_for(days, rules.temperature), latest(said_at, last_interest), due, said_at)


def _timeframe_hits(
    profile: Profile,
    intent: IntentRules,
    horizon: Horizon,
    stated_clock: Clock,
    from_timeframe: Temperature,
    now: datetime,
) -> list[RuleHit]:
    """The timeframe's intent points, as stated, counted down or cooled since; a 0-point line
    when no one understood it."""
    days = horizon.days
    if not horizon.understood:
        said = " ".join(str(profile.timeframe()[0]).split())[:60]
        reason = f"timeframe not understood: «{said}»"
        return [RuleHit(rule="intent.timeframe.not_understood", points=0, reason=reason)]
    if days is None or not intent.timeframe.get(from_timeframe):
        return []
    left = stated_clock.days_left(now)
    if days == 0:
        reason = "wants it now"
    elif left == 0:
        reason = "buying by now"
    else:
        reason = f"buying within {days if left is None else left} days"
    reason += f" («{as_written(str(profile.timeframe()[0]), horizon.phrase)}»)" if horizon.phrase else ""
    said_days_ago = _age_days(stated_clock.said_at, now)
    if from_timeframe != stated_clock.given or (left is not None and said_days_ago):
        reason += f", said {_days_ago(said_days_ago)}"
    points = intent.timeframe[from_timeframe]
    return [RuleHit(rule=f"intent.timeframe.{from_timeframe}", points=points, reason=reason)]


def fresh_requests(profile: Profile, rules: Rules, now: datetime) -> list[tuple[str, datetime, str | None]]:
    """Explicit asks still fresh (within the warm cooling period), newest of each kind, with
    the words that asked when they were written: an ask activity, a capture through a callback
    or one-click-order form, or the ask said in the message or need."""
    fresh_for = span(rules.temperature.cool_after_days["warm"], 0)
    asks: list[tuple[str, datetime | None, str | None]] = [
        (kind, profile.last_activity(kind), None) for kind in rules.intent.requests
    ]
    if profile.channel in rules.intent.requests and profile.captured_at is not None:
        asks.append((profile.channel, profile.captured_at, None))
    written = [
        ("\n".join(str(profile.attributes.get(k) or "") for k in ("message", "need")), profile.said_at)
    ]
    written += [(line.text, line.at) for line in profile.chat]
    for text, at in written:
        if text.strip():  # blank folds to nothing: no ask in it
            asks += [
                (kind, at or profile.captured_at, as_written(text, phrase))
                for kind, phrase in _asks_in(text, rules)
            ]
    latest: dict[str, tuple[datetime, str | None]] = {}
    for kind, at, phrase in asks:
        if at is not None and now - at <= fresh_for and (kind not in latest or at > latest[kind][0]):
            latest[kind] = (at, phrase)
    return [(kind, at, phrase) for kind, (at, phrase) in sorted(latest.items())]


def _asks_in(text: str, rules: Rules) -> list[tuple[str, str]]:
    """The asks `text` says, each with the words that said it."""
    # "перезвоню", "will call back", "zəng edərəm": the person will call us (no authority,
    # 002:54); they asked for nothing, so those words are no callback request.
    promised = phrase_pattern(derived(rules.stages.no_authority_phrases, tuple))
    folded = promised.sub(" ", fold(text)).strip() if promised else fold(text)
    if not folded:
        return []
    negation = rules.negations.negation
    found = [
        (kind, said(folded, derived(phrases, every_phrase), negation))
        for kind, phrases in rules.intent.phrases.items()
    ]
    return [(kind, phrase) for kind, phrase in found if phrase is not None]


def interest_shown(profile: Profile, rules: Rules) -> list[str]:
    """The lead's activity types that are signs of the person's interest: more than looking
    around (not `passive` in the rules), and the person's own, not a rep's note (a call nobody
    answered is logged apart: `profile.UNANSWERED_CALL`)."""
    interesting = signs_of_interest(rules)
    return [k for k in profile.activities if k in interesting]


def signs_of_interest(rules: Rules) -> frozenset[str]:
    """The activity types that are signs of the person's interest (see `interest_shown`)."""
    return derived(rules.engagement.activities, _signs_of_interest)


def _signs_of_interest(activities: dict[str, ActivityRule]) -> frozenset[str]:
    return frozenset(k for k, rule in activities.items() if not rule.passive and k not in REPS_OWN)


def _last_interest(profile: Profile, rules: Rules) -> datetime | None:
    """The latest sign of interest: the capture, or an activity of `interest_shown`."""
    times = [profile.captured_at] if profile.captured else []
    times += [profile.last_activity(kind) for kind in interest_shown(profile, rules)]
    return latest(*times)


def _age_days(at: datetime | None, now: datetime) -> int:
    return int((now - at).total_seconds() // 86400) if at is not None else 0


def _days_ago(days: int) -> str:
    return "1 day ago" if days == 1 else f"{days} days ago"
