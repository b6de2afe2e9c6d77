"""The scoring model: a profile and the rules in, a score with its reasons out. Pure, no I/O.

score = fit + engagement + intent + negative, kept within 0..100; the breakdown lists every
rule that gave or took points, and always sums to the score (a cap or floor is a line too).
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from services.scoring.profile import Profile
from services.scoring.rules import (
    KeywordRule,
    Rules,
    Temperature,
    Threshold,
    every_phrase,
    temperature_for,
)
from services.scoring.timeframes import Horizon, understand
from services.scoring.wording import find_phrase, fold
from shared.events import RuleHit

T = TypeVar("T")
HOTTER: dict[Temperature, int] = {"cold": 0, "warm": 1, "hot": 2}


@dataclass(frozen=True)
class Bant:
    """Qualification signals (002:32-54): need, desire, budget, decision authority."""

    need: bool
    desire: bool
    budget: bool
    authority: bool

    @property
    def count(self) -> int:
        return sum((self.need, self.desire, self.budget, self.authority))

    def as_dict(self) -> dict[str, bool]:
        return {"need": self.need, "desire": self.desire, "budget": self.budget, "authority": self.authority}


@dataclass(frozen=True)
class Evaluation:
    score: int
    fit: int
    engagement: int
    intent: int
    negative: int
    breakdown: list[RuleHit]
    temperature: Temperature
    bant: Bant
    interested: bool  # beyond looking around: a suspect is not
    direct_request: str | None  # an ask that goes straight to sales
    disqualified_by: str | None  # the rule that rules the lead out
    review_at: datetime | None  # when time alone may change this evaluation


def evaluate(profile: Profile, rules: Rules, now: datetime) -> Evaluation:
    fit, authority_title = _fit(profile, rules)
    engagement = _engagement(profile, rules, now)
    asked = _requests(profile, rules, now)
    temperature, clocks, intent = _intent(profile, rules, now, asked)
    text = "\n".join(profile.texts())  # where red flags and hesitation show
    negative, disqualified_by = _negative(profile, rules, text)
    hits = [*intent, *fit, *engagement, *negative]
    parts = {name: sum(h.points for h in group) for name, group in _groups(fit, engagement, intent, negative)}
    raw = sum(parts.values())
    if raw > 100:
        hits.append(RuleHit(rule="score.cap", points=100 - raw, reason="score is at most 100"))
    elif raw < 0:
        hits.append(RuleHit(rule="score.floor", points=-raw, reason="score is at least 0"))
    bant = _bant(profile, rules, temperature, authority_title, text)
    return Evaluation(
        score=min(100, max(0, raw)),
        fit=parts["fit"],
        engagement=parts["engagement"],
        intent=parts["intent"],
        negative=parts["negative"],
        breakdown=hits,
        temperature=temperature,
        bant=bant,
        interested=_interested(profile, rules),
        direct_request=next(
            (r for r in rules.stages.sql.direct_requests if r in {a[0] for a in asked}), None
        ),
        disqualified_by=disqualified_by,
        review_at=_review_at(rules, now, clocks, parts["engagement"]),
    )


def _groups(*groups: list[RuleHit]) -> list[tuple[str, list[RuleHit]]]:
    return list(zip(("fit", "engagement", "intent", "negative"), groups, strict=True))


# --- fit ---------------------------------------------------------------------------------


def _fit(profile: Profile, rules: Rules) -> tuple[list[RuleHit], bool]:
    a, fit = profile.attributes, rules.fit
    hits: list[RuleHit] = []
    authority = False
    title_rule = _first_match(fit.job_title, a.get("job_title"))
    if title_rule is not None:
        rule = f"fit.job_title.{title_rule.name}"
        hits.append(RuleHit(rule=rule, points=title_rule.points, reason=title_rule.reason))
        authority = title_rule.authority
    if a.get("is_decision_maker") is True and fit.decision_maker:
        reason = "makes the decision"
        hits.append(RuleHit(rule="fit.decision_maker", points=fit.decision_maker, reason=reason))
    size = _number(a.get("company_size"))
    if (step := _threshold(fit.company_size, size)) is not None:
        hits.append(RuleHit(rule="fit.company_size", points=step.points, reason=step.reason))
    for field, values in (("industry", fit.industry), ("country", fit.country)):
        value = str(a.get(field) or "").strip().lower()
        if value and values.points and value in _derived(values.values, _lowered):
            hits.append(RuleHit(rule=f"fit.{field}", points=values.points, reason=values.reason))
    if (step := _threshold(fit.budget, _number(a.get("budget")))) is not None:
        hits.append(RuleHit(rule="fit.budget", points=step.points, reason=step.reason))
    return hits, authority


def _first_match(candidates: list[KeywordRule], text: Any) -> KeywordRule | None:
    if not isinstance(text, str) or not text:
        return None
    return next((rule for rule in candidates if _contains_any(text, _derived(rule.phrases, tuple))), None)


def _threshold(steps: list[Threshold], value: float | None) -> Threshold | None:
    if value is None:
        return None
    matching = [s for s in steps if value >= s.min]
    return max(matching, key=lambda s: s.min) if matching else None


_FIRST_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _number(value: Any) -> float | None:
    """A number from a field that may be text: "11-50" → 11, "250+" → 250."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and (match := _FIRST_NUMBER.search(value.replace(" ", ""))):
        return float(match.group().replace(",", "."))
    return None


# --- engagement --------------------------------------------------------------------------


def _engagement(profile: Profile, rules: Rules, now: datetime) -> list[RuleHit]:
    half_life = rules.engagement.half_life_days * 86400
    hits = []
    for kind in sorted(profile.activities):
        rule = rules.engagement.activities.get(kind)
        if rule is None or rule.points == 0:
            continue
        times = profile.activity_times(kind)
        weight = sum(0.5 ** (max(0.0, (now - t).total_seconds()) / half_life) for t in times)
        points = min(rule.cap, round(rule.points * weight))
        if points:
            count = profile.activities[kind].count
            reason = f"{count} x {kind.replace('_', ' ')}" + (" (capped)" if points == rule.cap else "")
            hits.append(RuleHit(rule=f"engagement.{kind}", points=points, reason=reason))
    return hits


# --- intent and temperature --------------------------------------------------------------


def stated_horizon(profile: Profile, rules: Rules, now: datetime) -> Horizon:
    """The horizon the lead's timeframe states, read as of the day it was said, in the lead's
    language first."""
    said_on = (profile.timeframe_at or profile.captured_at or now).date()
    language = profile.attributes.get("language")
    text = profile.attributes.get("timeframe")
    return understand(
        str(text) if isinstance(text, str | int) and not isinstance(text, bool) else None,
        said_on,
        str(language).lower()[:2] if language else None,
        rules.timeframes.lexicon,
    )


def _intent(
    profile: Profile, rules: Rules, now: datetime, asked: list[tuple[str, datetime, str | None]]
) -> tuple[Temperature, list["Clock"], list[RuleHit]]:
    """The temperature, the clocks that will cool it, and the intent points.

    A stated horizon gives hot / warm / cold (003:57-61); an explicit ask (callback, order,
    demo, price) makes the lead hot. With no new sign of interest since, a hot lead turns
    warm after `cool_after_days.hot`, and cold after `cool_after_days.warm`.
    """
    intent = rules.intent
    hits: list[RuleHit] = []
    last_interest = _last_interest(profile, rules)
    horizon = stated_horizon(profile, rules, now)
    days = horizon.days
    stated = temperature_for(days, rules.temperature)
    stated_clock = Clock(stated, _latest(profile.timeframe_at if days is not None else None, last_interest))
    asked_clock = Clock("hot" if asked else "cold", _latest(*(at for _, at, _ in asked), last_interest))
    from_timeframe = stated_clock.temperature_at(now, rules)
    temperature = max(from_timeframe, asked_clock.temperature_at(now, rules), key=HOTTER.__getitem__)
    if not horizon.understood:
        said = " ".join(str(profile.attributes.get("timeframe")).split())[:60]
        hits.append(
            RuleHit(
                rule="intent.timeframe.not_understood", points=0, reason=f"timeframe not understood: «{said}»"
            )
        )
    elif days is not None and intent.timeframe.get(from_timeframe):
        reason = "wants it now" if days == 0 else f"buying within {days} days"
        reason += f" («{horizon.phrase}»)" if horizon.phrase else ""
        if from_timeframe != stated:
            reason += f", said {_age_days(stated_clock.since, now)} days ago"
        points = intent.timeframe[from_timeframe]
        hits.append(RuleHit(rule=f"intent.timeframe.{from_timeframe}", points=points, reason=reason))
    for kind, at, phrase in asked:
        said = f" «{phrase}»" if phrase else ""
        reason = f"asked: {kind.replace('_', ' ')}{said} ({_age_days(at, now)} days ago)"
        hits.append(RuleHit(rule=f"intent.request.{kind}", points=intent.requests[kind], reason=reason))
    need = profile.attributes.get("need")
    if isinstance(need, str) and need.strip() and intent.need:
        hits.append(RuleHit(rule="intent.need", points=intent.need, reason="stated a need"))
    return temperature, [stated_clock, asked_clock], hits


@dataclass(frozen=True)
class Clock:
    """A temperature a signal gave, and since when there has been no newer sign of interest."""

    given: Temperature
    since: datetime | None

    def temperature_at(self, now: datetime, rules: Rules) -> Temperature:
        if self.given == "cold" or self.since is None:
            return self.given
        age = (now - self.since).total_seconds() / 86400
        cool = rules.temperature.cool_after_days
        if age > cool["warm"]:
            return "cold"
        if self.given == "hot" and age > cool["hot"]:
            return "warm"
        return self.given

    def next_change(self, now: datetime, rules: Rules) -> datetime | None:
        if self.given == "cold" or self.since is None:
            return None
        cool = rules.temperature.cool_after_days
        steps = [cool["hot"], cool["warm"]] if self.given == "hot" else [cool["warm"]]
        moments = [_later(self.since, timedelta(days=step, seconds=1)) for step in steps]
        return min((m for m in moments if m is not None and m > now), default=None)


def _later(moment: datetime, span: timedelta) -> datetime | None:
    """`moment` + `span`, or None past the last year a datetime holds: a lead dated near it
    (dates run to 9998) never reaches a moment that far."""
    try:
        return moment + span
    except OverflowError:
        return None


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def _requests(profile: Profile, rules: Rules, now: datetime) -> list[tuple[str, datetime, str | None]]:
    """Explicit asks still fresh (within the warm cooling period), newest of each kind, with
    the words that asked when they were written: an ask activity, a capture through a callback
    or one-click-order form, or the ask said in the message or need."""
    fresh_for = timedelta(days=rules.temperature.cool_after_days["warm"])
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
        folded = fold(text)
        if not folded:
            continue
        for kind, phrases in rules.intent.phrases.items():
            if (phrase := find_phrase(folded, _derived(phrases, every_phrase))) is not None:
                asks.append((kind, at or profile.captured_at, phrase))
    latest: dict[str, tuple[datetime, str | None]] = {}
    for kind, at, phrase in asks:
        if at is not None and now - at <= fresh_for and (kind not in latest or at > latest[kind][0]):
            latest[kind] = (at, phrase)
    return [(kind, at, phrase) for kind, (at, phrase) in sorted(latest.items())]


def _last_interest(profile: Profile, rules: Rules) -> datetime | None:
    """The latest sign of interest: the capture, or an activity that is more than looking around."""
    active = rules.engagement.activities
    times = [profile.captured_at] if profile.captured else []
    times += [
        profile.last_activity(kind)
        for kind in profile.activities
        if kind in active and not active[kind].passive
    ]
    return max((t for t in times if t is not None), default=None)


def _age_days(at: datetime | None, now: datetime) -> int:
    return int((now - at).total_seconds() // 86400) if at is not None else 0


def _review_at(rules: Rules, now: datetime, clocks: list[Clock], engagement: int) -> datetime | None:
    """The next moment time alone may change the evaluation: a cooling step, or decay."""
    moments = [clock.next_change(now, rules) for clock in clocks]
    if engagement > 0:
        moments.append(_later(now, timedelta(hours=rules.engagement.review_every_hours)))
    return min((m for m in moments if m is not None), default=None)


# --- negative ----------------------------------------------------------------------------


def _negative(profile: Profile, rules: Rules, text: str) -> tuple[list[RuleHit], str | None]:
    negative = rules.negative
    hits: list[RuleHit] = []
    disqualified_by = None
    domain = str(profile.attributes.get("email") or "").rpartition("@")[2].lower()
    domains = (
        ("disposable_domain", negative.disposable_domains),
        ("competitor", negative.competitor_domains),
    )
    for name, rule in domains:
        if domain and rule.points and domain in _derived(rule.domains, _lowered):
            hits.append(RuleHit(rule=f"negative.{name}", points=rule.points, reason=rule.reason))
            disqualified_by = disqualified_by or (f"negative.{name}" if rule.disqualify else None)
    folded = fold(text)
    for phrase_rule in negative.phrases:
        if folded and find_phrase(folded, _derived(phrase_rule.phrases, every_phrase)) is not None:
            name = f"negative.{phrase_rule.name}"
            hits.append(RuleHit(rule=name, points=phrase_rule.points, reason=phrase_rule.reason))
            disqualified_by = disqualified_by or (name if phrase_rule.disqualify else None)
    unreachable = negative.unreachable
    if unreachable.points and profile.unreachable_calls >= unreachable.after_attempts:
        reason = f"{unreachable.reason} ({profile.unreachable_calls} attempts)"
        hits.append(RuleHit(rule="negative.unreachable", points=unreachable.points, reason=reason))
    return hits, disqualified_by


# --- qualification -----------------------------------------------------------------------


def _bant(profile: Profile, rules: Rules, temperature: Temperature, authority_title: bool, text: str) -> Bant:
    a = profile.attributes
    need = any(isinstance(a.get(k), str) and a[k].strip() for k in ("need", "message"))
    budget = (_number(a.get("budget")) or 0) >= rules.stages.sql.budget_at_least
    hesitant = bool(text) and _contains_any(text, _derived(rules.stages.no_authority_phrases, tuple))
    authority = (a.get("is_decision_maker") is True or authority_title) and not hesitant
    return Bant(need=need, desire=temperature == "hot", budget=budget, authority=authority)


def _interested(profile: Profile, rules: Rules) -> bool:
    """More than looking around: a capture outside the suspect channels (a form, a call, a
    visit), a stated timeframe or need, or any activity that is not passive."""
    a = profile.attributes
    if profile.captured and profile.channel not in rules.stages.suspect_channels:
        return True
    if any(a.get(k) for k in ("timeframe", "need", "message")):
        return True
    active = rules.engagement.activities
    return any(kind in active and not active[kind].passive for kind in profile.activities)


_DERIVED: dict[tuple[int, int], tuple[Any, Any]] = {}
_DERIVED_KEPT = 4096


def _derived(source: Any, make: Callable[[Any], T]) -> T:
    """What `make` derives from a list or mapping of the rules, worked out once while that very
    object lives (the rules are frozen; a copy given new phrases derives again)."""
    key = (id(source), id(make))
    kept = _DERIVED.get(key)
    if kept is not None and kept[0] is source:
        return kept[1]
    if len(_DERIVED) >= _DERIVED_KEPT:
        _DERIVED.clear()
    value = make(source)
    _DERIVED[key] = (source, value)
    return value


def _lowered(values: list[str]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


@lru_cache(maxsize=512)
def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words or phrases, any case: "vp" matches "VP Sales", not "mvp"."""
    alternatives = "|".join(re.escape(p.lower()) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _contains_any(text: str, phrases: tuple[str, ...]) -> bool:
    return bool(phrases) and _pattern(phrases).search(text) is not None
