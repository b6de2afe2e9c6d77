# ruff: noqa: RUF001  (Cyrillic in patterns is the point here)

"""The stated purchase horizon, as people write it, in Kazakh, Russian, Azerbaijani and
English. Pure: the text, the day it was said, the lead's language and the rules' vocabulary
in; the days until the purchase out, or "not understood".

In order: a canonical value a form's select sends (`now`, `this_week`...); a phrase meaning
no timeframe; the vocabulary's words and phrases ("срочно", "бүгін", "dərhal", "до конца
месяца"); an amount ("2 мес", "3w", "P2M", "через две недели", "2 həftə sonra"); a date
("2027-02-01", "15.03"); and last the dateparser library (CLDR data: "завтра", "ертең",
"sabah", "gələn ay", "1 февраля"), in the lead's language first, then the others written
in the same script."""

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import dateparser

from services.scoring.wording import find_phrase, fold

CANONICAL: dict[str, int | None] = {
    "now": 0,
    "this_week": 7,
    "this_month": 30,
    "within_3_months": 90,
    "later": 365,
    "unknown": None,
}
LANGUAGES = ("kk", "ru", "az", "en")
ANCHORS = ("end_of_week", "end_of_month", "end_of_quarter", "end_of_year")
# What dateparser is given: a few words in Cyrillic or Latin letters, digits and date
# punctuation. Anything longer or stranger is a message, not a horizon (and costs it most).
_DATE_LIKE = re.compile(r"^[0-9a-zа-яё\s.,/:'-]{1,40}$")
_DATE_LIKE_WORDS = 5
# dateparser reads these languages; Kazakh in Latin letters it does not.
_DATEPARSER_SCRIPTS = {"cyrillic": ("ru", "kk"), "latin": ("en", "az")}


@dataclass(frozen=True)
class Horizon:
    days: int | None  # until the purchase; None: no timeframe (given as such, or not at all)
    understood: bool
    phrase: str | None = None  # the words that said it, as folded


@dataclass(frozen=True)
class Lexicon:
    """The vocabulary of the rules, folded and ordered for matching."""

    words: dict[str, dict[str, int | str]]  # language -> folded phrase -> days or anchor
    units: dict[str, tuple[tuple[str, int], ...]]  # language -> (stem, days), longest first
    numbers: dict[str, dict[str, float]]  # language -> number word -> value
    months: dict[str, tuple[tuple[str, ...], ...]]  # language -> the forms of each month, January first
    unknown: dict[str, tuple[str, ...]]  # language -> phrases meaning "no timeframe"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def lexicon(
    words: dict[str, dict[str, int | str]],
    units: dict[str, dict[str, int]],
    numbers: dict[str, dict[str, float]],
    months: dict[str, list[str]],
    unknown: dict[str, list[str]],
) -> Lexicon:
    def longest_first(pairs: dict[str, int]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(((fold(k), v) for k, v in pairs.items()), key=lambda p: -len(p[0])))

    return Lexicon(
        words={lang: {fold(k): v for k, v in entries.items()} for lang, entries in words.items()},
        units={lang: longest_first(entries) for lang, entries in units.items()},
        numbers={lang: {fold(k): v for k, v in entries.items()} for lang, entries in numbers.items()},
        months={lang: tuple(tuple(m.split("|")) for m in names) for lang, names in months.items()},
        unknown={lang: tuple(fold(p) for p in phrases) for lang, phrases in unknown.items()},
    )


def understand(text: str | None, said_on: date, language: str | None, vocabulary: Lexicon) -> Horizon:
    """What horizon `text`, said on `said_on`, states."""
    if text is None or not str(text).strip():
        return Horizon(None, True)
    return _understand(str(text), said_on, language if language in LANGUAGES else None, vocabulary)


@lru_cache(maxsize=4096)
def _understand(text: str, said_on: date, language: str | None, vocabulary: Lexicon) -> Horizon:
    raw = text.strip()
    if raw.lower() in CANONICAL:
        return Horizon(CANONICAL[raw.lower()], True, raw.lower())
    folded = fold(raw)
    languages = _in_order(language)
    for lang in languages:
        if (phrase := find_phrase(folded, vocabulary.unknown.get(lang, ()))) is not None:
            return Horizon(None, True, phrase)
    if (amount := _amount(folded, languages, vocabulary)) is not None:
        return amount
    for lang in languages:
        words = vocabulary.words.get(lang, {})
        if (phrase := find_phrase(folded, tuple(words))) is not None:
            return Horizon(_days(words[phrase], said_on), True, phrase)
    if (on := _date(folded, said_on)) is not None:
        return on
    for lang in languages:
        if (on := _month(folded, said_on, vocabulary.months.get(lang, ()))) is not None:
            return on
    if _DATE_LIKE.match(folded) and len(folded.split()) <= _DATE_LIKE_WORDS:
        return _dateparser(raw, said_on, languages)
    return Horizon(None, False)


def _in_order(language: str | None) -> tuple[str, ...]:
    first = (language,) if language else ()
    return first + tuple(lang for lang in LANGUAGES if lang != language)


def _days(value: int | str, said_on: date) -> int:
    if isinstance(value, int):
        return value
    if value == "end_of_week":
        return 6 - said_on.weekday()
    if value == "end_of_month":
        following = (said_on.replace(day=28) + timedelta(days=4)).replace(day=1)
        return (following - said_on).days - 1
    if value == "end_of_quarter":
        quarter_end_month = (said_on.month - 1) // 3 * 3 + 3
        following = date(said_on.year + quarter_end_month // 12, quarter_end_month % 12 + 1, 1)
        return (following - said_on).days - 1
    return (date(said_on.year, 12, 31) - said_on).days  # end_of_year


_ISO_DURATION = re.compile(r"^p(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?$")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|\w+")
_FILLERS = frozenset({"of", "-"})


# Kazakh and Azerbaijani put case endings on the unit: "екі айдан кейін", "айға жуық", "3 айда";
# "2 aydan sonra", "1 aya", "2 ildən" (as folded: the Kazakh and Azerbaijani letters made plain).
_CASE_ENDINGS: dict[str, frozenset[str]] = {
    "kk": frozenset(
        {"дан", "ден", "тан", "тен", "нан", "нен", "га", "ге", "ка", "ке", "да", "де", "та", "те"}
    ),
    "az": frozenset({"dan", "den", "nan", "nen", "da", "de", "ta", "te", "a", "e", "ya", "ye", "adek"}),
}


def _is_unit(word: str, stem: str, language: str) -> bool:
    """A stem of one or two letters ("d", "мес" is three) must be the whole word, or, in Kazakh
    and Azerbaijani, the word with a case ending ("ай" in "айдан", "ay" in "aydan")."""
    if len(stem) > 2:
        return word.startswith(stem)
    return word == stem or (word.startswith(stem) and word[len(stem) :] in _CASE_ENDINGS.get(language, ()))


def _amount(folded: str, languages: tuple[str, ...], vocabulary: Lexicon) -> Horizon | None:
    """A number (digits or a word) and a unit: "2 мес", "3w", "через две недели",
    "2 аптадан кейін", "2 həftə sonra", "P2M"; a bare number is days."""
    compact = folded.replace(" ", "")
    if (iso := _ISO_DURATION.match(compact)) and any(iso.groups()):
        years, months, weeks, days = (int(g or 0) for g in iso.groups())
        return Horizon(years * 365 + months * 30 + weeks * 7 + days, True, folded)
    if folded.isdecimal():  # not isdigit: "²" and Rumi numerals are digits int() refuses
        return Horizon(int(folded), True, folded)
    spaced = re.sub(r"(\d)([^\d\s.,])", r"\1 \2", folded)  # "2mes" -> "2 mes", "3w" -> "3 w"
    words = [w for w in _TOKEN.findall(spaced) if w not in _FILLERS]
    for lang in languages:
        units, numbers = vocabulary.units.get(lang, ()), vocabulary.numbers.get(lang, {})
        for number, word in itertools.pairwise(words):
            value = _number(number, numbers)
            unit = next((days for stem, days in units if _is_unit(word, stem, lang)), None)
            if value is not None and unit is not None:
                return Horizon(round(value * unit), True, f"{number} {word}")
    return None


def _number(text: str, words: dict[str, float]) -> float | None:
    if text[0].isdecimal():
        return float(text.replace(",", "."))
    return words.get(text)


_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})[./](\d{1,2})(?:[./](\d{2}|\d{4}))?(?!\d)")


def _date(folded: str, said_on: date) -> Horizon | None:
    """2027-02-01, 15.03, 15/03/2027: the next such day from `said_on`."""
    try:
        if match := _ISO_DATE.search(folded):
            year, month, day = (int(g) for g in match.groups())
            return _until(date(year, month, day), said_on, match.group())
        if match := _DAY_MONTH.search(folded):
            day, month = int(match.group(1)), int(match.group(2))
            year_text = match.group(3)
            if year_text is not None:
                year = int(year_text) + (2000 if len(year_text) == 2 else 0)
                return _until(date(year, month, day), said_on, match.group())
            on = date(said_on.year, month, day)
            if on < said_on:
                on = date(said_on.year + 1, month, day)
            return _until(on, said_on, match.group())
    except ValueError:
        return None  # no such day (31.02): not a date
    return None


_DAY_OF_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s*(?:-?го\s+)?числа")


def _month(folded: str, said_on: date, months: tuple[tuple[str, ...], ...]) -> Horizon | None:
    """ "в январе", "1 февраля", "5 января", "yanvarda", "наурыздан кейін": the next such month,
    on the day given, else its 15th; "до 10 числа": the next 10th."""
    if match := _DAY_OF_MONTH.search(folded):
        day = int(match.group(1))
        for ahead in range(0, 3):
            try:
                on = _add_months(said_on, ahead).replace(day=day)
            except ValueError:
                continue
            if on >= said_on:
                return _until(on, said_on, match.group())
    for index, forms in enumerate(months):
        if (phrase := find_phrase(folded, forms)) is None:
            continue
        day_before = re.search(rf"(?<!\d)(\d{{1,2}})\s*{re.escape(phrase)}", folded)
        day = int(day_before.group(1)) if day_before else 15
        try:
            on = date(said_on.year, index + 1, day)
            if on < said_on:
                on = date(said_on.year + 1, index + 1, day)
        except ValueError:
            return None
        return _until(on, said_on, day_before.group() if day_before else phrase)
    return None


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def _until(on: date, said_on: date, phrase: str) -> Horizon:
    return Horizon(max(0, (on - said_on).days), True, phrase)


def warm_up() -> None:
    """Load dateparser's data for our languages now (the first parse in each costs ~100 ms)."""
    samples = {"ru": "1 февраля", "kk": "2 аптадан кейін", "az": "gələn ay", "en": "in 2 weeks"}
    for language, sample in samples.items():
        dateparser.parse(sample, languages=[language], settings={"PREFER_DATES_FROM": "future"})
        dateparser.parse("x", languages=[language])


def _dateparser(raw: str, said_on: date, languages: tuple[str, ...]) -> Horizon:
    script = "cyrillic" if re.search(r"[\u0400-\u04ff]", raw) else "latin"
    readable = [lang for lang in languages if lang in _DATEPARSER_SCRIPTS[script]]
    base = datetime(said_on.year, said_on.month, said_on.day, 12)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False}
    for lang in readable:
        try:
            found = dateparser.parse(raw, languages=[lang], settings=settings)
        except (ValueError, OverflowError, RecursionError):
            found = None
        if found is not None:
            return Horizon(max(0, (found.date() - said_on).days), True, fold(raw))
    return Horizon(None, False)
