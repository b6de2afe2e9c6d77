"""Classification rules: pure functions, no I/O (DOMAIN.md "Classification", seed 003:57-61)."""

import re
from dataclasses import dataclass

from shared.events import RuleHit, Temperature

RULES_VERSION = 1

# Words that mean "now": immediate need, or an explicit ask for a call, demo, price or order.
_IMMEDIATE = {
    "now",
    "immediately",
    "immediate",
    "asap",
    "today",
    "urgent",
    "right away",
    "callback",
    "call back",
    "demo",
    "price",
    "order",
    "this week",
}
_NONE = {"", "none", "no", "unknown", "not sure", "no timeframe", "later", "someday", "n/a"}
_UNIT_DAYS = {"d": 1, "day": 1, "w": 7, "week": 7, "m": 30, "month": 30, "y": 365, "year": 365}
_AMOUNT = re.compile(r"^(?:p)?(\d+(?:\.\d+)?)\s*_?([a-z]+?)s?$")
_WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "six": 6,
    "couple of": 2,
}


@dataclass(frozen=True)
class Windows:
    """Temperature windows in days (configuration)."""

    hot_within_days: int = 14
    warm_within_days: int = 90


@dataclass(frozen=True)
class Classification:
    temperature: Temperature
    stage: str
    score: int
    breakdown: list[RuleHit]


def timeframe_days(timeframe: str | None) -> int | None:
    """Days until the stated purchase, 0 for "now", None when no timeframe was given.

    Accepts words ("immediately", "asap"), amounts ("2 months", "3w", "about two months",
    "P2M", "2_months") and plain day counts ("45").
    """
    text = (timeframe or "").strip().lower().replace("about ", "").replace("within ", "")
    if text in _NONE:
        return None
    if text in _IMMEDIATE:
        return 0
    for word, number in _WORD_NUMBERS.items():
        if text.startswith(word + " "):
            text = f"{number} {text[len(word) + 1 :]}"
            break
    if text.isdigit():
        return int(text)
    match = _AMOUNT.match(text.replace(" ", ""))
    if match and match.group(2) in _UNIT_DAYS:
        return round(float(match.group(1)) * _UNIT_DAYS[match.group(2)])
    return None


def temperature_for(days: int | None, windows: Windows) -> Temperature:
    if days is None:
        return "cold"
    if days <= windows.hot_within_days:
        return "hot"
    if days <= windows.warm_within_days:
        return "warm"
    return "cold"


_POINTS: dict[Temperature, int] = {"hot": 60, "warm": 30, "cold": 0}


def classify(timeframe: str | None, windows: Windows) -> Classification:
    """Temperature from the stated timeframe; the thin first model (issue 4 adds fit and engagement)."""
    days = timeframe_days(timeframe)
    temperature = temperature_for(days, windows)
    if days is None:
        reason = "no purchase timeframe given"
    else:
        reason = f"buying within {days} days" if days else "wants it now"
    hit = RuleHit(rule=f"intent.timeframe.{temperature}", points=_POINTS[temperature], reason=reason)
    return Classification(temperature=temperature, stage="lead", score=hit.points, breakdown=[hit])
