# ruff: noqa: RUF001  (Cyrillic in patterns is the point here)

"""A timeframe given as an amount of time: a number (digits or a word) and a unit ("2 мес",
"3w", "через две недели", "2 аптадан кейін", "2 həftə sonra"), an ISO 8601 duration ("P2M"),
or a bare number of days. Pure."""

import itertools
import math
import re

from services.scoring.timeframe_lexicon import Lexicon

_ISO_DURATION = re.compile(r"^p(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?$")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|\w+")
_FILLERS = frozenset({"of", "-"})
FAR = 10**9  # days: a number past any float ("1" * 320 + " days") is a far horizon, not a failure


# Kazakh and Azerbaijani put case endings on the unit: "екі айдан кейін", "айға жуық", "3 айда";
# "2 aydan sonra", "1 aya", "2 ildən" (as folded: the Kazakh and Azerbaijani letters made plain).
_CASE_ENDINGS: dict[str, frozenset[str]] = {
    "kk": frozenset(
        {"дан", "ден", "тан", "тен", "нан", "нен", "га", "ге", "ка", "ке", "да", "де", "та", "те"}
    ),
    "az": frozenset({"dan", "den", "nan", "nen", "da", "de", "ta", "te", "a", "e", "ya", "ye", "adek"}),
}


def amount(folded: str, languages: tuple[str, ...], vocabulary: Lexicon) -> tuple[int, str] | None:
    """The days the amount in `folded` comes to, and the words that said it; None if none."""
    compact = folded.replace(" ", "")
    if (iso := _ISO_DURATION.match(compact)) and any(iso.groups()):
        years, months, weeks, days = (int(g or 0) for g in iso.groups())
        return years * 365 + months * 30 + weeks * 7 + days, folded
    if folded.isdecimal():  # not isdigit: "²" and Rumi numerals are digits int() refuses
        return int(folded), folded
    spaced = re.sub(r"(\d)([^\d\s.,])", r"\1 \2", folded)  # "2mes" -> "2 mes", "3w" -> "3 w"
    words = [w for w in _TOKEN.findall(spaced) if w not in _FILLERS]
    for lang in languages:
        units, numbers = vocabulary.units.get(lang, ()), vocabulary.numbers.get(lang, {})
        said_in_two = [(f"{a} {b}", unit) for a, b, unit in zip(words, words[1:], words[2:], strict=False)]
        in_two = [(number, unit) for number, unit in said_in_two if number in numbers]  # "bir neçə gün"
        for number, word in [*in_two, *itertools.pairwise(words)]:
            value = _number(number, numbers)
            unit = next((days for stem, days in units if _is_unit(word, stem, lang)), None)
            if value is None or unit is None or _calendar_year(number, unit):
                continue
            span = value * unit
            return (round(span) if math.isfinite(span) else FAR), f"{number} {word}"
    return None


def _calendar_year(number: str, unit: int) -> bool:
    """ "2026 года", "2026 жылғы", "2026 il": a year of the calendar, in a date, not an amount."""
    return unit == 365 and len(number) == 4 and number.isdecimal()


def _is_unit(word: str, stem: str, language: str) -> bool:
    """A stem of one or two letters ("d", "мес" is three) must be the whole word, or, in Kazakh
    and Azerbaijani, the word with a case ending ("ай" in "айдан", "ay" in "aydan")."""
    if len(stem) > 2:
        return word.startswith(stem)
    return word == stem or (word.startswith(stem) and word[len(stem) :] in _CASE_ENDINGS.get(language, ()))


def _number(text: str, words: dict[str, float]) -> float | None:
    if text[0].isdecimal():
        return float(text.replace(",", "."))
    return words.get(text)
