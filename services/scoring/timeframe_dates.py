# ruff: noqa: RUF001  (Cyrillic in patterns is the point here)

"""A timeframe given as a day: a date ("2027-02-01", "15.03"), a month by its name ("в январе",
"1 февраля", "yanvarda") or a day of the month ("до 10 числа"), and last the dateparser library
(CLDR data: "завтра", "ертең", "sabah", "gələn ay"), for short texts in the languages it reads.
Each answers the days from the day it was said (below zero for a day gone by: `timeframes`
judges those), and the words that said it."""

import re
from datetime import date, datetime

import dateparser

from services.scoring.wording import find_phrase

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})[./](\d{1,2})(?:[./](\d{2}|\d{4}))?(?!\d)")
_YEAR = re.compile(r"(?<![\d.,/-])(?:19|20|21)\d\d(?![\d.,/-])")
_DAY_OF_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s*(?:-?го\s+)?числа")
# What dateparser is given: a few words in Cyrillic or Latin letters, digits and date
# punctuation. Anything longer or stranger is a message, not a horizon (and costs it most).
_DATE_LIKE = re.compile(r"^[0-9a-zа-яё\s.,/:'-]{1,40}$")
_DATE_LIKE_WORDS = 5
# dateparser reads these languages; Kazakh in Latin letters it does not.
_DATEPARSER_SCRIPTS = {"cyrillic": ("ru", "kk"), "latin": ("en", "az")}


def date_in(folded: str, said_on: date) -> tuple[int, str] | None:
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


def month_in(folded: str, said_on: date, months: tuple[tuple[str, ...], ...]) -> tuple[int, str] | None:
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
        named = re.escape(phrase)
        after = rf"{named}\s*(\d{{1,2}})(?![\d.:/])"  # "December 10", "March 1"
        day_given = re.search(rf"(?<!\d)(\d{{1,2}})\s*{named}", folded) or re.search(after, folded)
        day = int(day_given.group(1)) if day_given else 15
        year = _year_in(folded)
        try:
            on = date(year or said_on.year, index + 1, day)
            if on < said_on and year is None:
                on = date(said_on.year + 1, index + 1, day)
        except ValueError:
            return None
        return _until(on, said_on, day_given.group() if day_given else phrase)
    return None


def _year_in(folded: str) -> int | None:
    """The year a month's date gives ("5 января 2028", "2026 жылғы 10 желтоқсан"), if any."""
    match = _YEAR.search(folded)
    return int(match.group()) if match else None


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def _until(on: date, said_on: date, phrase: str) -> tuple[int, str]:
    """The days until `on` (below zero for a day gone by), and the words that said it."""
    return (on - said_on).days, phrase


def date_like(folded: str) -> bool:
    """Whether the text is short and plain enough to be given to dateparser."""
    return bool(_DATE_LIKE.match(folded)) and len(folded.split()) <= _DATE_LIKE_WORDS


def warm_up() -> None:
    """Load dateparser's data for our languages now (the first parse in each costs ~100 ms)."""
    samples = {"ru": "1 февраля", "kk": "2 аптадан кейін", "az": "gələn ay", "en": "in 2 weeks"}
    for language, sample in samples.items():
        dateparser.parse(sample, languages=[language], settings={"PREFER_DATES_FROM": "future"})
        dateparser.parse("x", languages=[language])


def by_dateparser(raw: str, said_on: date, languages: tuple[str, ...]) -> int | None:
    """The days until the day dateparser reads in `raw`, in the first of `languages` written in
    its script that reads one; None if none does."""
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
            return (found.date() - said_on).days  # below zero for a day gone by ("вчера")
    return None
