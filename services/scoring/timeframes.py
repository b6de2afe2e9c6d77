"""The stated purchase horizon, as people write it, in Kazakh, Russian, Azerbaijani and
English. Pure: the text, the day it was said, the lead's language and the rules' vocabulary
in; the days until the purchase out, or "not understood".

In order: a canonical value a form's select sends (`now`, `this_week`...); a phrase meaning
no timeframe; an amount ("2 мес", "3w", "P2M", "через две недели", "2 həftə sonra":
`timeframe_amounts`); the vocabulary's words and phrases ("срочно", "бүгін", "dərhal", "до конца
месяца"); a date ("2027-02-01", "15.03") or a month ("1 февраля"); and last the dateparser
library (CLDR data: "завтра", "ертең", "sabah", "gələn ay"), in the lead's language first, then
the others written in the same script (`timeframe_dates`)."""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from services.scoring.negation import NO_NEGATION, Negation, negated
from services.scoring.timeframe_amounts import amount
from services.scoring.timeframe_dates import by_dateparser, date_in, date_like, month_in
from services.scoring.timeframe_lexicon import Lexicon
from services.scoring.wording import find_phrase, fold

# A select's values; this week and this month run to their end, as the same words typed do (a
# fixed 30 days kept "this month", chosen on the 25th, warm: no rep was handed the lead).
CANONICAL: dict[str, int | str | None] = {
    "now": 0,
    "this_week": "end_of_week",
    "this_month": "end_of_month",
    "within_3_months": 90,
    "later": None,  # no day named: no horizon to count down to (as the words "later", "потом")
    "unknown": None,
}
LANGUAGES = ("kk", "ru", "az", "en")
# A date that has passed is a horizon of now for this long ("it was needed already"; a form a
# day late, or a time zone, puts a today a day back); older, it is no horizon: "2020-01-01"
# made a lead hot ("wants it now") and sent it to a rep.
PAST_DATES_TAKEN = 7
_TURNS_READ = 3  # negated horizons taken out of one text before it counts as stating none
ANCHORS = ("end_of_week", "end_of_month", "end_of_quarter", "end_of_year")


@dataclass(frozen=True)
class Horizon:
    days: int | None  # until the purchase; None: no timeframe (given as such, or not at all)
    understood: bool
    phrase: str | None = None  # the words that said it, as folded


def understand(
    text: str | None,
    said_on: date,
    language: str | None,
    vocabulary: Lexicon,
    negation: Negation = NO_NEGATION,
) -> Horizon:
    """What horizon `text`, said on `said_on`, states. A horizon `negation` turns around ("не
    сейчас", "not urgent", "қазір емес") states none, unless the text goes on to give one ("не
    сейчас, через месяц"); words meaning "no timeframe" count only where no horizon is stated
    ("не знаю, наверное через месяц" is a month; "asap - today", today)."""
    if text is None or not str(text).strip():
        return Horizon(None, True)
    return _understand(str(text), said_on, language if language in LANGUAGES else None, vocabulary, negation)


@lru_cache(maxsize=4096)
def _understand(
    text: str, said_on: date, language: str | None, vocabulary: Lexicon, negation: Negation
) -> Horizon:
    raw = text.strip()
    if raw.lower() in CANONICAL:
        value = CANONICAL[raw.lower()]
        return Horizon(None if value is None else _days(value, said_on), True, raw.lower())
    folded = fold(raw)
    languages = _in_order(language)
    found, turned = _stated(folded, said_on, languages, vocabulary, negation)
    unknown = _unknown(folded, languages, vocabulary)
    if found is not None and (unknown is None or found[1] not in unknown):
        return _dated(*found)
    if unknown is not None:  # also one around the horizon it holds: "not anytime soon", "не скоро"
        return Horizon(None, True, unknown)
    if turned is not None:
        return Horizon(None, True, turned)
    if date_like(folded) and (days := by_dateparser(raw, said_on, languages)) is not None:
        return _dated(days, fold(raw))
    return Horizon(None, False)


def _dated(days: int, phrase: str) -> Horizon:
    """A horizon found; a date past for longer than `PAST_DATES_TAKEN` is none understood."""
    return Horizon(None, False) if days < -PAST_DATES_TAKEN else Horizon(max(0, days), True, phrase)


def _stated(
    folded: str, said_on: date, languages: tuple[str, ...], vocabulary: Lexicon, negation: Negation
) -> tuple[tuple[int, str] | None, str | None]:
    """The horizon the vocabulary finds and no word beside it negates, and the first one a
    negation turned around (taken out of the text, the rest is read again)."""
    turned = None
    for _ in range(_TURNS_READ):
        counted = amount(folded, languages, vocabulary)
        word = _word(folded, said_on, languages, vocabulary)
        if word is not None and counted is not None and counted[1] in word[1]:
            counted = None  # the vocabulary's phrase holds the amount: "half a year", not "a year"
        found = counted or word or date_in(folded, said_on) or _month(folded, said_on, languages, vocabulary)
        at = folded.find(found[1]) if found is not None else -1
        if found is None or at < 0 or not negated(folded, at, at + len(found[1]), negation):
            return found, turned
        turned = turned or found[1]
        folded = f"{folded[:at]} {folded[at + len(found[1]) :]}"
    return None, turned


def _unknown(folded: str, languages: tuple[str, ...], vocabulary: Lexicon) -> str | None:
    """The first phrase meaning "no timeframe" ("не знаю", "later", "кейін"), in the lead's
    language first."""
    for lang in languages:
        if (phrase := find_phrase(folded, vocabulary.unknown.get(lang, ()))) is not None:
            return phrase
    return None


def _in_order(language: str | None) -> tuple[str, ...]:
    first = (language,) if language else ()
    return first + tuple(lang for lang in LANGUAGES if lang != language)


def _word(
    folded: str, said_on: date, languages: tuple[str, ...], vocabulary: Lexicon
) -> tuple[int, str] | None:
    """The vocabulary's words and phrases: days, or an anchor (the end of the month...)."""
    for lang in languages:
        words = vocabulary.words.get(lang, {})
        if (phrase := find_phrase(folded, tuple(words))) is not None:
            return _days(words[phrase], said_on), phrase
    return None


def _month(
    folded: str, said_on: date, languages: tuple[str, ...], vocabulary: Lexicon
) -> tuple[int, str] | None:
    for lang in languages:
        if (on := month_in(folded, said_on, vocabulary.months.get(lang, ()))) is not None:
            return on
    return None


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
