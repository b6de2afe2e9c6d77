"""Words that turn a phrase beside them around: "не сейчас", "not urgent", "don't call me",
"қазір емес", "indi yox", "қоңырау шалмаңыз". A horizon or an ask they negate was not said.
Pure; the texts are folded (`wording.fold`) and so are the rules' words.

Only words right beside the phrase, in its clause, count: "не очень срочно" negates (the rules
list "не очень"), "не позднее пятницы" does not negate "пятницы", and in "нет, нужно сейчас"
the comma ends the "нет"."""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from services.scoring.wording import fold, phrase_pattern

_CLAUSE_END = re.compile(r"[,.;:!?()\n]")


@dataclass(frozen=True)
class Negation:
    before: re.Pattern[str] | None  # a negation ending the clause before the phrase
    after: re.Pattern[str] | None  # a negation opening the clause after it
    endings: tuple[str, ...]  # a verb's negative ending right after a stem (kk -ма-, az -mə-)

    def __hash__(self) -> int:  # kept with the rules: `timeframes.understand` caches by it
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


NO_NEGATION = Negation(None, None, ())


def compiled(before: list[str], after: list[str], endings: list[str]) -> Negation:
    def alternatives(phrases: list[str]) -> str | None:
        pattern = phrase_pattern(tuple(phrases))
        return pattern.pattern.removeprefix(r"(?<!\w)").removesuffix(r"(?!\w)") if pattern else None

    first, last = alternatives(before), alternatives(after)
    return Negation(
        before=re.compile(rf"(?<!\w){first}\s*$") if first else None,
        after=re.compile(rf"^\s*{last}(?!\w)") if last else None,
        endings=tuple(sorted({fold(e) for e in endings if e.strip()}, key=len, reverse=True)),
    )


def negated(text: str, start: int, end: int, negation: Negation, rest_of_word: str = "") -> bool:
    """Whether text[start:end] stands negated in `text`; `rest_of_word`: what a stem matched
    past its stem ("маңыз" of "шалмаңыз")."""
    before = _CLAUSE_END.split(text[:start])[-1]
    after = _CLAUSE_END.split(text[end:], maxsplit=1)[0]
    return (
        (negation.before is not None and negation.before.search(before) is not None)
        or (negation.after is not None and negation.after.match(after) is not None)
        or (bool(negation.endings) and rest_of_word.startswith(negation.endings))
    )


def said(text: str, phrases: tuple[str, ...], negation: Negation) -> str | None:
    """The first of `phrases` found in `text` (folded) that no word beside it negates."""
    return next(iter(_unnegated(text, phrases, negation)), None)


def _unnegated(text: str, phrases: tuple[str, ...], negation: Negation) -> Iterator[str]:
    pattern = phrase_pattern(phrases)
    if pattern is None:
        return
    for match in pattern.finditer(text):
        found = match.group()
        if not negated(text, match.start(), match.end(), negation, _past_stem(found, phrases)):
            yield found


def _past_stem(found: str, phrases: tuple[str, ...]) -> str:
    """What a stem phrase (`перезвон*`) matched past its stem; "" for a whole phrase."""
    stems = (fold(p.strip().rstrip("*")) for p in phrases if p.strip().endswith("*"))
    return next((found[len(stem) :] for stem in stems if found.startswith(stem) and found != stem), "")
