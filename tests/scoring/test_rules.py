"""Temperature from the stated timeframe (DOMAIN.md: now → hot, about two months → warm, none → cold)."""

import pytest

from services.scoring.rules import Windows, classify, temperature_for, timeframe_days


@pytest.mark.parametrize(
    ("timeframe", "temperature"),
    [
        ("immediately", "hot"),
        ("now", "hot"),
        ("ASAP", "hot"),
        ("callback", "hot"),
        ("within 10 days", "hot"),
        ("2 weeks", "hot"),
        ("about two months", "warm"),
        ("2 months", "warm"),
        ("P2M", "warm"),
        ("45", "warm"),
        ("6 months", "cold"),
        ("none", "cold"),
        (None, "cold"),
        ("", "cold"),
        ("someday", "cold"),
    ],
)
def test_temperature_follows_the_stated_timeframe(timeframe: str | None, temperature: str) -> None:
    assert classify(timeframe, Windows()).temperature == temperature


def test_windows_are_configuration() -> None:
    assert temperature_for(30, Windows(hot_within_days=14)) == "warm"
    assert temperature_for(30, Windows(hot_within_days=30)) == "hot"
    assert temperature_for(91, Windows(warm_within_days=90)) == "cold"


def test_classification_explains_itself() -> None:
    result = classify("about two months", Windows())
    assert result.score == sum(hit.points for hit in result.breakdown)
    assert result.breakdown[0].reason == "buying within 60 days"


def test_unparseable_timeframe_counts_as_none() -> None:
    assert timeframe_days("whenever the stars align") is None
