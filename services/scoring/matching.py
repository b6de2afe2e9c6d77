"""How the rules meet a lead's words and numbers: whole phrases, numbers in text, derivations kept."""

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

T = TypeVar("T")

_DERIVED: dict[tuple[int, int], tuple[Any, Any]] = {}
_DERIVED_KEPT = 4096


def derived(source: Any, make: Callable[[Any], T]) -> T:
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


def lowered(values: list[str]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


@lru_cache(maxsize=512)
def keyword_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words or phrases, any case: "vp" matches "VP Sales", not "mvp"."""
    alternatives = "|".join(re.escape(p.lower()) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


_FIRST_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# Thousands grouped by one separator, then perhaps a fraction after the other: "1,000",
# "1.000.000", "1,000.50", "1.000,50".
_GROUPED = re.compile(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*(?:(?!\1)[.,]\d+)?(?![.,]?\d)")


def number_in(value: Any) -> float | None:
    """A number from a field that may be text: "11-50" → 11, "250+" → 250, "1,000+" → 1000,
    "1,5" → 1.5."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    return _number_in_text(value)


@lru_cache(maxsize=1024)
def _number_in_text(value: str) -> float | None:
    """Remembered: a lead's company size and budget are read again with each of its events."""
    text = value.replace(" ", "")
    if (match := _FIRST_NUMBER.search(text)) is None:
        return None
    if grouped := _GROUPED.match(text, match.start()):
        whole, _, fraction = grouped.group().replace(grouped.group(1), "").replace(",", ".").partition(".")
        return float(f"{whole}.{fraction or 0}")
    return float(match.group().replace(",", "."))
